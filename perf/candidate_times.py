"""How long `mixology verify --candidate OP=...` takes for one op: the user's command, timed
end to end (start-up included), for every op.

    python perf/candidate_times.py [--profile ci] [--jobs 1] [--triton] [--markdown FILE]

Two kinds of candidate: the independent eager implementations of tests/support/candidates.py
(one per op), and, with ``--triton``, mixology's own Triton kernels pointed at as candidates,
which is what a kernel author's Triton kernel costs on a machine without a GPU (Triton's
interpreter). Prints one line per op as it goes, then a markdown table with the median.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def candidates(triton: bool) -> list[tuple[str, str, str]]:
    """(op, kind, OP=module:function) to time."""
    from mixology import registry
    from tests.support.candidates import CORRECT

    out = [(op, "eager", f"{op}=tests.support.candidates:{names[0]}")
           for op, names in CORRECT.items()]
    if triton:
        for op in registry.ops():
            impl = registry.OPS[op].impls.get("triton")
            if impl is not None and op in CORRECT:
                out.append((op, "triton", f"{op}={impl.target}"))
    return out


def time_one(spec: str, profile: str, jobs: int) -> tuple[float, str]:
    """(wall seconds, the verdict line) of one `mixology verify --candidate`."""
    cmd = [sys.executable, "-m", "mixology", "verify", "--device", "cpu", "--profile", profile,
           "--candidate", spec] + (["-n", str(jobs)] if jobs > 1 else [])
    env = dict(os.environ, PYTHONPATH=str(ROOT), TRITON_INTERPRET="1")
    start = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    verdict = next((line for line in reversed(r.stdout.splitlines())
                    if re.search(r"\d+ passed, \d+ failed", line)), f"exit {r.returncode}")
    return wall, verdict


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="ci")
    ap.add_argument("--jobs", type=int, default=1, help="verify -n (1: serial)")
    ap.add_argument("--triton", action="store_true", help="also mixology's Triton kernels")
    ap.add_argument("--markdown", help="write the table here too")
    args = ap.parse_args()
    rows = []
    for op, kind, spec in candidates(args.triton):
        wall, verdict = time_one(spec, args.profile, args.jobs)
        rows.append((op, kind, wall, verdict))
        print(f"{op:20s} {kind:6s} {wall:6.1f} s  {verdict}", flush=True)
    lines = ["| op | candidate | wall | verdict |", "|---|---|---|---|"]
    lines += [f"| {op} | {kind} | {wall:.0f} s | {verdict} |" for op, kind, wall, verdict in rows]
    for kind in ("eager", "triton"):
        walls = [w for _, k, w, _ in rows if k == kind]
        if walls:
            lines.append(f"\n{kind}: median {statistics.median(walls):.0f} s over {len(walls)} "
                         f"ops, the slowest {max(walls):.0f} s")
    text = "\n".join(lines)
    print("\n" + text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
