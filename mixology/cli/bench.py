"""``mixology bench``, ``history`` and ``gpu-check``: benchmarks, their history and gate, and
the Triton kernels compiled for GPU targets without a GPU."""

from __future__ import annotations

import os
import subprocess
import sys

from mixology import registry
from mixology.bench import gpu_check, history, plots
from mixology.bench.history import MIN_CHANGES
from mixology.bench.timing import device_key
from mixology.cli.common import repo_root, setup_device


def add_commands(sub) -> None:
    be = sub.add_parser("bench", help="run the perf sweep (pytest-benchmark) and save it")
    be.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda if available")
    be.add_argument("--sizes", choices=("full", "quick", "smoke", "headline", "cpu"),
                    help="default: full on CUDA, cpu otherwise; smoke: one point per entry, "
                         "implementation and mode; headline: the points a short GPU session "
                         "measures first")
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
    hi.add_argument("--compare", nargs=2, metavar=("BASE", "HEAD"),
                    help="compare two chosen runs (commit prefixes, history file names or "
                         "paths) instead of the latest with its history")
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
                         "taken from it; this run's results are written back (added to them "
                         "under --op or --sizes tests|perf)")
    gc.add_argument("--markdown", metavar="PATH", help="write every variant's row here")
    gc.add_argument("--summary", metavar="PATH", help="write the per-kernel summary here")
    gc.set_defaults(func=cmd_gpu_check)


def cmd_bench(args) -> int:
    """Run the perf sweep with pytest-benchmark and autosave it into the history."""
    device = setup_device(args.device)
    root = repo_root()
    storage = os.path.join(args.storage or os.path.join(root, "perf", "history"),
                           device_key(device))
    env = dict(os.environ, MIXOLOGY_DEVICE=device,
               MIXOLOGY_BENCH_SIZES=args.sizes or ("full" if device == "cuda" else "cpu"))
    # run from a pytest-xdist worker (the tests), the benchmark session is not one of its
    # workers: pytest-benchmark would switch itself off
    env = {k: v for k, v in env.items() if not k.startswith("PYTEST_XDIST")}
    cmd = [sys.executable, "-m", "pytest", os.path.join(root, "perf"), "-p", "no:cacheprovider",
           "--benchmark-only", "--benchmark-columns=median,iqr,rounds", "--benchmark-sort=name",
           f"--benchmark-storage=file://{storage}"]
    if not args.no_save:
        cmd.append("--benchmark-autosave")
    cmd += args.pytest_args
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=root, env=env)


def _verdicts(rows, threshold: float) -> str:
    n = {v: sum(r.verdict == v for r in rows) for v in ("SLOWER", "noisy", "unconfirmed")}
    return (f"{n['SLOWER']} slowdown(s) beyond max({threshold:g}%, 3 x run-to-run noise) and "
            f"twice the rounds' spread, the fastest round slower too; {n['noisy']} change(s) "
            f"too noisy to judge; {n['unconfirmed']} unconfirmed (fewer than "
            f"{MIN_CHANGES} run-to-run changes "
            "in the history: run the bench again to learn this machine's noise)")


def cmd_history(args) -> int:
    """Latest vs previous vs best per benchmark, and plots; exit 1 on a slowdown. The seed's
    claims are measured by perf/claims.py."""
    root = repo_root()
    storage = args.storage or os.path.join(root, "perf", "history")
    runs = history.load_runs(storage)
    if args.device_key:
        runs = {k: v for k, v in runs.items() if k in args.device_key}
    if not runs:
        print(f"no benchmark history under {storage}")
        return 0
    if args.compare:
        base, head = (history.find_run(runs, ref) for ref in args.compare)
        print(f"== {head.path.name} (commit {head.commit}; {head.versions})\n"
              f"   vs {base.path.name} (commit {base.commit}; {base.versions})")
        rows = history.compare_two(base, head, args.threshold,
                                   history=runs.get(head.device_key, [base]))
        print(history.format_rows(rows, only_flagged=args.only_flagged))
        slow = [r for r in rows if r.flagged]
        print(f"{len(rows)} benchmarks in both; {_verdicts(rows, args.threshold)}")
        return 1 if slow and not args.no_gate else 0
    flagged = 0
    for key, key_runs in sorted(runs.items()):
        latest = key_runs[-1]
        print(f"== {key}: {len(key_runs)} run(s); latest {latest.path.name} "
              f"(commit {latest.commit}{', dirty' if latest.dirty else ''}; {latest.versions})")
        rows = history.compare(key_runs, args.threshold)
        print(history.format_rows(rows, only_flagged=args.only_flagged))
        flagged += sum(r.flagged for r in rows)
        print(_verdicts(rows, args.threshold) + "\n")
        if not args.no_plots:
            out = os.path.join(args.plots or os.path.join(root, "perf", "plots"), key)
            paths = plots.plot_run(latest, out)
            paths += plots.plot_trend(key_runs, out)
            print(f"{len(paths)} plot(s) written to {out}\n")
    if flagged and not args.no_gate:
        print(f"history: {flagged} slowdown(s) flagged; exit 1")
        return 1
    return 0


def cmd_gpu_check(args) -> int:
    """Compile every Triton kernel for GPU targets (no GPU needed); exit 1 on a problem."""
    targets = [t.strip() for t in args.target.split(",") if t.strip()]
    unknown = [t for t in targets if t not in gpu_check.TARGETS]
    if unknown or not targets:
        raise ValueError(f"unknown --target {','.join(unknown) or '(none)'}; "
                         f"choose from {','.join(gpu_check.TARGETS)}")
    if os.environ.get("TRITON_INTERPRET") == "1":  # kernels must be real JITFunctions
        env = dict(os.environ, TRITON_INTERPRET="0")
        return subprocess.call([sys.executable, "-m", "mixology", *args.argv], env=env)
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # Triton 3.9's default, said aloud
    if args.op:
        unknown = [o for o in args.op if o not in registry.ops()]
        if unknown:
            raise ValueError(f"unknown --op {unknown[0]}")

    def progress(msg):
        print(f"gpu-check: {msg}", file=sys.stderr, flush=True)

    cache = gpu_check.load_results(args.results)
    results = gpu_check.check(targets, args.sizes, args.jobs, progress,
                              set(args.op) if args.op else None, cache)
    reports = list(results.values())
    if args.results:
        # a run over part of the variants (some ops, one size set) adds to the results; a
        # whole run replaces them, dropping variants no launch makes any more
        partial = args.op or args.sizes != "all"
        merged = {**cache, **results} if partial else results
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
