"""How often the spec accepts correct implementations: every registered implementation and
every independent one in tests/support/candidates.py, every property, both size tiers, under a
profile with many examples. A correct implementation must never be rejected, so the goal is
100%; anything less is a false rejection to fix in the spec or the tolerance policy.

    MIXOLOGY_DEVICE=cpu TRITON_INTERPRET=1 python tests/support/acceptance.py --profile dev \
        [--sizes small|kernel|all] [--op OP]

prints, per op, the implementations run, the cases drawn, the cases rejected and the rate,
then every rejection with its error and replay command.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("MIXOLOGY_POISON", "1")
warnings.filterwarnings("ignore", category=RuntimeWarning)  # the interpreter: inf - inf
warnings.filterwarnings("ignore", category=UserWarning)  # var_mean with one feature

from mixology import registry, spec  # noqa: E402
from mixology.verify import runner  # noqa: E402
from tests.support import candidates  # noqa: E402


def implementations(op: str, device: str):
    for name in registry.implementations(op, device):
        impl = registry.get(op, name)
        yield name, impl.fn, impl.cost
    for name in candidates.CORRECT.get(op, []):
        yield f"candidate:{name}", getattr(candidates, name), 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="dev", choices=("ci", "dev", "thorough"))
    ap.add_argument("--op", action="append")
    ap.add_argument("--device", default=os.environ.get("MIXOLOGY_DEVICE", "cpu"))
    ap.add_argument("--sizes", choices=("small", "kernel", "all"), default="all")
    ap.add_argument("--impl", action="append",
                    help="only these implementations (registered names or candidate:NAME)")
    ap.add_argument("--progress", action="store_true",
                    help="a line on stderr per implementation and property, with its time")
    args = ap.parse_args(argv)
    rejected = []
    print(f"{'op':22s} {'impls':>5s} {'cases':>7s} {'rejected':>8s} {'rate':>9s} {'time':>6s}",
          flush=True)
    for op in args.op or registry.ops():
        cases, bad, start, impls = 0, 0, time.perf_counter(), 0
        for name, fn, cost in implementations(op, args.device):
            if args.impl and name not in args.impl:
                continue
            impls += 1
            for p in spec.properties(op):
                count, t0 = [0], time.perf_counter()

                def counted(impl, case, _fn=p.fn, _count=count):
                    _count[0] += 1
                    return _fn(impl, case)

                out = runner.check(dataclasses.replace(p, fn=counted), fn, name,
                                   device=args.device, profile=args.profile, cost=cost,
                                   shrink=False, sizes=args.sizes)
                cases += count[0]
                if args.progress:
                    print(f"  {op}/{p.name} [{name}]: {count[0]} cases, "
                          f"{time.perf_counter() - t0:.1f}s{'' if out.ok else ', REJECTED'}",
                          file=sys.stderr, flush=True)
                if not out.ok:
                    bad += 1
                    rejected.append(out)
        rate = 100.0 * (cases - bad) / max(cases, 1)
        print(f"{op:22s} {impls:5d} {cases:7d} {bad:8d} {rate:8.2f}% "
              f"{time.perf_counter() - start:5.0f}s", flush=True)
    for o in rejected:
        print(f"\nREJECTED {o.op}/{o.prop} [{o.impl}] (sizes {o.sizes})")
        for f in o.failures:
            print(f"  {f.error[:600]}\n  {f.counterexample}")
    return 1 if rejected else 0


if __name__ == "__main__":
    sys.exit(main())
