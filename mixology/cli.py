"""``python -m mixology {verify,list,mutants,bench,history,gpu-check}``."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

PROFILES = ("ci", "dev", "thorough")


def _setup_device(device: str | None) -> str:
    """Pick the device; on CPU, run Triton kernels through Triton's interpreter."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda, but torch sees no CUDA device")
    # verify is a test run: kernel outputs start as NaN, so an unwritten tile cannot pass
    os.environ.setdefault("MIXOLOGY_POISON", "1")
    if device == "cpu":
        # Must happen before triton.jit runs, i.e. before any kernel module is imported.
        os.environ.setdefault("TRITON_INTERPRET", "1")
        # The interpreter runs kernels with numpy, which warns on inf - inf (expected: NaN).
        warnings.filterwarnings("ignore", category=RuntimeWarning,
                                module=r"triton\.runtime\.interpreter")
    return device


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--op", action="append", help="only this op (repeatable)")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda if available")
    p.add_argument("--profile", choices=PROFILES,
                   help="hypothesis profile (default: $MIXOLOGY_PROFILE or dev)")
    p.add_argument("--sizes", choices=("small", "kernel", "all"),
                   help="case sizes: small, kernel (around tile boundaries, long sequences, "
                        "large magnitudes) or all, small first (default: $MIXOLOGY_SIZES or all)")


def _table(outcomes, columns) -> str:
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for o in outcomes:
        rows.setdefault((o.op, o.prop), {})[o.impl] = "pass" if o.ok else "FAIL"
    w_op = max([len("op")] + [len(op) for op, _ in rows])
    w_p = max([len("property")] + [len(p) for _, p in rows])
    widths = [max(len(c), 4) for c in columns]
    head = f"{'op':<{w_op}}  {'property':<{w_p}}  " + "  ".join(
        f"{c:<{w}}" for c, w in zip(columns, widths, strict=True))
    lines = [head, "-" * len(head)]
    for (op, prop), cells in rows.items():
        lines.append(f"{op:<{w_op}}  {prop:<{w_p}}  " + "  ".join(
            f"{cells.get(c, '-'):<{w}}" for c, w in zip(columns, widths, strict=True)))
    return "\n".join(lines)


def cmd_verify(args) -> int:
    device = _setup_device(args.device)
    from mixology import runner

    candidates = {}
    for item in args.candidate or []:
        op, sep, target = item.partition("=")
        if not sep or ":" not in target:
            raise SystemExit(f"error: --candidate wants OP=package.module:function, got {item!r}")
        candidates[op] = target

    def progress(o):
        if args.verbose:
            print(f"  {o.status:4s} {o.op}/{o.prop} [{o.impl}] {o.seconds:.1f}s", file=sys.stderr)

    outcomes = runner.verify(args.op, args.impl, args.property, device=device,
                             profile=args.profile, reproduce=args.reproduce,
                             candidates=candidates, mutants=args.mutant, on_result=progress,
                             sizes=args.sizes)
    if not outcomes:
        print("nothing to verify: no property matched the selection on " + device)
        return 1
    columns = list(dict.fromkeys(o.impl for o in outcomes))
    from spec.strategies import profile_name

    print(f"mixology verify: device={device} profile={args.profile or profile_name()}\n")
    print(_table(outcomes, columns))
    failures = [o for o in outcomes if not o.ok]
    # A candidate's contract failures (bad input not refused with a ValueError/TypeError naming
    # the argument) are listed apart and fail the run only with --strict.
    lenient = bool(candidates) and not args.strict
    contract = [o for o in failures if lenient and o.kind == "contract"]
    failing = [o for o in failures if o not in contract]
    for o in failing:
        _print_failure(o)
    if contract:
        print("\nContract (input checks; not counted as failures without --strict):")
        for o in contract:
            _print_failure(o)
    total = sum(o.seconds for o in outcomes)
    extra = f", {len(contract)} contract failure(s) not counted" if contract else ""
    print(f"\n{len(outcomes) - len(failures)} passed, {len(failing)} failed{extra} ({total:.0f}s)")
    return 1 if failing else 0


def _print_failure(o) -> None:
    many = len(o.failures) > 1
    print(f"\nFAIL {o.op}/{o.prop} [{o.impl}] ({o.kind}, sizes: {o.sizes})"
          + (f": {len(o.failures)} distinct failures" if many else ""))
    for i, f in enumerate(o.failures, 1):
        pad = "    " if many else "  "
        if many:
            print(f"  ({i})")
        print(f"{pad}error: {f.error}")
        if f.counterexample:
            print(f"{pad}counterexample: {f.counterexample}")
        if f.replay:
            print(f"{pad}replay: {f.replay}")


def cmd_list(args) -> int:
    device = _setup_device(args.device)
    import spec
    from mixology import registry

    known = registry.ops()
    unknown = [op for op in args.op or [] if op not in known]
    if unknown:
        print(f"error: unknown op {unknown[0]!r}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    for op in args.op or known:
        o = registry.OPS[op]
        print(f"{op} {o.signature}\n  {o.doc}")
        available = registry.implementations(op, device)
        print(f"  implementations (on {device}):")
        for name, impl in o.impls.items():
            mark = "" if name in available else "  [not available here]"
            print(f"    {name:10s} {impl.doc}{mark}")
        print("  properties:")
        for p in spec.properties(op):
            print(f"    {p.name:40s} {p.kind:11s} {p.doc}")
        print("  mutants:")
        for m in registry.mutants(op, device):
            print(f"    {m.name:40s} {m.doc}")
        print()
    return 0


def cmd_mutants(args) -> int:
    """Kill matrix: which properties reject which mutant; exit 1 if any mutant survives."""
    device = _setup_device(args.device)
    from mixology import registry, runner

    survivors = []
    matrix: dict[tuple[str, str], list[str]] = {}
    for m in registry.mutants(device=device):
        if args.op and m.op not in args.op:
            continue
        killed = runner.rejects(m, device=device, profile=args.profile,
                                stop_at_first=not (args.matrix or args.markdown),
                                sizes=args.sizes)
        for p in killed:
            matrix.setdefault((m.op, p), []).append(m.name)
        if not args.markdown:
            print(f"{m.op:12s} {m.name:32s} {'REJECTED' if killed else 'SURVIVED'}  "
                  f"{', '.join(killed)}", flush=True)
        if not killed:
            survivors.append(m.name)
    if args.markdown:
        print(_property_table(matrix, args.op))
    if survivors:
        print(f"\n{len(survivors)} mutant(s) survived the spec: {', '.join(survivors)}")
        return 1
    print("\nevery mutant is rejected by the spec")
    return 0


def _repo_root() -> str:
    """The checkout holding perf/ (benchmarks run from a clone, not an installed wheel)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for root in (os.getcwd(), here):
        if os.path.exists(os.path.join(root, "perf", "test_sweep.py")):
            return root
    raise SystemExit("error: run this from a mixology checkout (perf/test_sweep.py not found)")


def cmd_bench(args) -> int:
    """Run the perf sweep with pytest-benchmark and autosave it into the history."""
    import subprocess

    device = _setup_device(args.device)
    from mixology.perf import device_key

    root = _repo_root()
    storage = os.path.join(args.storage or os.path.join(root, "perf", "history"),
                           device_key(device))
    env = dict(os.environ, MIXOLOGY_DEVICE=device,
               MIXOLOGY_BENCH_SIZES=args.sizes or ("full" if device == "cuda" else "cpu"))
    cmd = [sys.executable, "-m", "pytest", os.path.join(root, "perf"), "-p", "no:cacheprovider",
           "--benchmark-only", "--benchmark-columns=median,iqr,rounds", "--benchmark-sort=name",
           f"--benchmark-storage=file://{storage}"]
    if not args.no_save:
        cmd.append("--benchmark-autosave")
    cmd += args.pytest_args
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=root, env=env)


def cmd_history(args) -> int:
    """Latest vs previous vs best per benchmark, plots, claims; exit 1 on a slowdown."""
    from mixology import perf_report

    root = _repo_root()
    storage = args.storage or os.path.join(root, "perf", "history")
    runs = perf_report.load_runs(storage)
    if args.device_key:
        runs = {k: v for k, v in runs.items() if k in args.device_key}
    if not runs:
        print(f"no benchmark history under {storage}")
        return 0
    flagged = 0
    for key, key_runs in sorted(runs.items()):
        latest = key_runs[-1]
        print(f"== {key}: {len(key_runs)} run(s); latest {latest.path.name} "
              f"(commit {latest.commit}{', dirty' if latest.dirty else ''})")
        rows = perf_report.compare(key_runs, args.threshold)
        print(perf_report.format_rows(rows, only_flagged=args.only_flagged))
        slow = [r for r in rows if r.flagged]
        flagged += len(slow)
        print(f"{len(slow)} slowdown(s) beyond max({args.threshold:g}%, 3 x noise)\n")
        if not args.no_plots:
            out = os.path.join(args.plots or os.path.join(root, "perf", "plots"), key)
            paths = perf_report.plot_run(latest, out)
            print(f"{len(paths)} plot(s) written to {out}\n")
        print(perf_report.report(list(latest.results.values())) + "\n")
    if flagged and not args.no_gate:
        print(f"history: {flagged} slowdown(s) flagged; exit 1")
        return 1
    return 0


def cmd_gpu_check(args) -> int:
    """Compile every Triton kernel for GPU targets (no GPU needed); exit 1 on a problem."""
    import subprocess

    from mixology import gpu_check

    targets = [t.strip() for t in args.target.split(",") if t.strip()]
    unknown = [t for t in targets if t not in gpu_check.TARGETS]
    if unknown or not targets:
        print(f"mixology gpu-check: error: unknown --target {','.join(unknown) or '(none)'}; "
              f"choose from {','.join(gpu_check.TARGETS)}", file=sys.stderr)
        return 2
    if os.environ.get("TRITON_INTERPRET") == "1":  # kernels must be real JITFunctions
        env = dict(os.environ, TRITON_INTERPRET="0")
        return subprocess.call([sys.executable, "-m", "mixology", *args.argv], env=env)
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # Triton 3.9's default, said aloud
    from mixology import registry

    if args.op:
        unknown = [o for o in args.op if o not in registry.ops()]
        if unknown:
            print(f"mixology gpu-check: error: unknown --op {unknown[0]}", file=sys.stderr)
            return 2

    def progress(msg):
        print(f"gpu-check: {msg}", file=sys.stderr, flush=True)

    cache = gpu_check.load_results(args.results)
    results = gpu_check.check(targets, args.sizes, args.jobs, progress,
                              set(args.op) if args.op else None, cache)
    reports = list(results.values())
    if args.results:
        merged = results if not args.op else {**cache, **results}
        gpu_check.save_results(args.results, merged)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(gpu_check.markdown(reports) + "\n")
    if args.summary:
        with open(args.summary, "w") as f:
            f.write(gpu_check.summary(reports) + "\n")
    print(gpu_check.summary(reports))
    found = gpu_check.problems(reports)
    print(f"\n{len(reports)} variants ({len(reports) - sum(k in cache for k in results)} "
          f"compiled, the rest unchanged since --results), {len(found)} problem(s)")
    for line in found:
        print("  " + line)
    return 1 if found else 0


def _property_table(matrix, ops) -> str:
    """Markdown: each property, what it checks, and the mutants it rejects."""
    import spec

    lines = ["| op | property | kind | checks | mutants it rejects |", "|---|---|---|---|---|"]
    for p in spec.properties():
        if ops and p.op not in ops:
            continue
        killed = matrix.get((p.op, p.name), [])
        who = ", ".join(f"`{k}`" for k in killed) if killed else "**none: suspect**"
        doc = " ".join((p.fn.__doc__ or "").split())
        lines.append(f"| {p.op} | `{p.name}` | {p.kind} | {doc} | {who} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="mixology", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    v = sub.add_parser("verify", help="run the spec; print op x implementation x property")
    _add_common(v)
    v.add_argument("--impl", action="append", help="only this implementation (repeatable)")
    v.add_argument("--property", action="append", help="only this property (repeatable)")
    v.add_argument("--candidate", action="append", metavar="OP=package.module:function",
                   help="check your own callable (same signature as OP) against the spec")
    v.add_argument("--mutant", action="append", help="run the spec on a registered mutant")
    v.add_argument("--reproduce", metavar="BLOB", help="replay one failing example")
    v.add_argument("--strict", action="store_true",
                   help="with --candidate: contract failures (bad input not refused with a "
                        "ValueError/TypeError naming the argument) fail the run too")
    v.add_argument("-v", "--verbose", action="store_true", help="print each result as it runs")
    v.set_defaults(func=cmd_verify)

    ls = sub.add_parser("list", help="ops, implementations, properties and mutants")
    _add_common(ls)
    ls.set_defaults(func=cmd_list)

    mu = sub.add_parser("mutants", help="check that the spec rejects every mutant")
    _add_common(mu)
    mu.add_argument("--matrix", action="store_true",
                    help="run every property on every mutant (the full kill matrix)")
    mu.add_argument("--markdown", action="store_true",
                    help="print the README's property table (implies --matrix)")
    mu.set_defaults(func=cmd_mutants)

    be = sub.add_parser("bench", help="run the perf sweep (pytest-benchmark) and save it")
    be.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda if available")
    be.add_argument("--sizes", choices=("full", "quick", "smoke", "cpu"),
                    help="default: full on CUDA, cpu otherwise; smoke: one point per entry, "
                         "implementation and mode")
    be.add_argument("--storage", help="history folder (default perf/history)")
    be.add_argument("--no-save", action="store_true", help="do not autosave into the history")
    be.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    be.set_defaults(func=cmd_bench)

    hi = sub.add_parser("history", help="compare the latest run with the previous and the best")
    hi.add_argument("--storage", help="history folder (default perf/history)")
    hi.add_argument("--device-key", action="append", help="only this device's history")
    hi.add_argument("--threshold", type=float, default=10.0,
                    help="slowdown %% that fails the gate, raised to 3 x noise (default 10)")
    hi.add_argument("--plots", help="plot folder (default perf/plots)")
    hi.add_argument("--no-plots", action="store_true")
    hi.add_argument("--no-gate", action="store_true", help="report only; always exit 0")
    hi.add_argument("--only-flagged", action="store_true", help="print only slowdowns")
    hi.set_defaults(func=cmd_history)

    gc = sub.add_parser("gpu-check", help="compile every Triton kernel for GPU targets without "
                        "a GPU: registers, spills, shared memory, access widths, 32-bit offsets")
    gc.add_argument("--target", default="sm_90,sm_80", help="comma-separated (default both)")
    gc.add_argument("--sizes", choices=("tests", "perf", "all"), default="all",
                    help="the launches of the spec's sizes, of the perf sweep's GPU sizes, "
                         "or both (default)")
    gc.add_argument("--op", action="append", help="only this op (repeatable)")
    gc.add_argument("-j", "--jobs", type=int, help="compile processes (default: CPU count)")
    gc.add_argument("--results", metavar="JSON",
                    help="earlier results: variants whose compile inputs are unchanged are "
                         "taken from it; this run's results are written back")
    gc.add_argument("--markdown", metavar="PATH", help="write every variant's row here")
    gc.add_argument("--summary", metavar="PATH", help="write the per-kernel summary here")
    gc.set_defaults(func=cmd_gpu_check)

    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args.func(args)
