"""``python -m mixology {verify,list,mutants,bench,history,gpu-check,train,compare,sample}``."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import textwrap
import time
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


class Progress:
    """Counters and, on a terminal, a bar: done/total, op/property [implementation], time."""

    def __init__(self, total: int, stream=None, verbose: bool = False):
        self.total, self.done, self.start = total, 0, time.perf_counter()
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() and not verbose

    def __call__(self, o) -> None:
        self.done += 1
        elapsed = _duration(time.perf_counter() - self.start)
        where = f"{o.op}/{o.prop} [{o.impl}]"
        if self.tty:
            width = 24
            fill = int(width * self.done / max(self.total, 1))
            line = (f"\r[{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total} "
                    f"{elapsed} {'' if o.ok else 'FAIL '}{where}")
            cols = shutil.get_terminal_size((100, 20)).columns
            self.stream.write(line[:cols - 1].ljust(cols - 1))
            if self.done == self.total:
                self.stream.write("\n")
        else:
            n = len(str(self.total))
            self.stream.write(f"[{self.done:>{n}}/{self.total}] {o.status:4s} {where} "
                              f"{o.seconds:.1f}s ({elapsed})\n")
        self.stream.flush()


def _duration(s: float) -> str:
    return f"{int(s // 60)}m{int(s % 60):02d}s"


def _usage_error(command: str, msg: str) -> int:
    print(f"mixology {command}: error: {msg}", file=sys.stderr)
    return 2


def cmd_verify(args) -> int:
    device = _setup_device(args.device)
    from mixology.spec.strategies import profile_name
    from mixology.verify import api, runner

    try:
        candidates = api.parse_candidates(args.candidate)
        checks = runner.plan(args.op, args.impl, args.property, device=device,
                             candidates=candidates, mutants=args.mutant)
    except ValueError as e:
        return _usage_error("verify", str(e).splitlines()[0])
    if not checks:
        print("nothing to verify: no property matched the selection on " + device)
        return 1
    profile = args.profile or profile_name()
    if args.jobs and args.jobs > 1:
        outcomes = _verify_parallel(args, device, profile, len(checks))
        if outcomes is None:
            return 2
        order = {(c[0], c[1], c[5].name): i for i, c in enumerate(checks)}
        outcomes.sort(key=lambda o: order.get((o.op, o.impl, o.prop), len(order)))
    else:
        print(f"mixology verify: {len(checks)} checks, device={device} profile={profile}",
              file=sys.stderr, flush=True)
        outcomes = runner.run_plan(checks, device=device, profile=args.profile,
                                   reproduce=args.reproduce, sizes=args.sizes,
                                   on_result=Progress(len(checks), verbose=args.verbose))
    return _verify_summary(args, outcomes, device, profile, bool(candidates))


def _verify_summary(args, outcomes, device, profile, candidates: bool) -> int:
    from mixology.verify.api import format_failure

    start = getattr(args, "_start", None)
    columns = list(dict.fromkeys(o.impl for o in outcomes))
    print(f"mixology verify: device={device} profile={profile}\n")
    print(_table(outcomes, columns))
    failures = [o for o in outcomes if not o.ok]
    # A candidate's contract failures (bad input not refused with a ValueError/TypeError naming
    # the argument) are listed apart and fail the run only with --strict.
    lenient = candidates and not args.strict
    contract = [o for o in failures if lenient and o.kind == "contract"]
    failing = [o for o in failures if o not in contract]
    for o in failing:
        print(format_failure(o))
    if contract:
        print("\nContract (input checks; not counted as failures without --strict):")
        for o in contract:
            print(format_failure(o))
    total = sum(o.seconds for o in outcomes)
    wall = f", {_duration(time.perf_counter() - start)} wall" if start else ""
    extra = f", {len(contract)} contract failure(s) not counted" if contract else ""
    print(f"\n{len(outcomes) - len(failures)} passed, {len(failing)} failed{extra} "
          f"({total:.0f}s of checks{wall})")
    return 1 if failing else 0


def _verify_parallel(args, device, profile, total):
    """verify -n N: every check is a pytest item (mixology's plugin), spread over N worker
    processes by pytest-xdist; each worker appends its outcomes to a JSON-lines file."""
    import importlib.util
    import json
    import subprocess
    import tempfile

    from mixology.verify.runner import Failure, Outcome

    if importlib.util.find_spec("xdist") is None:
        print("mixology verify: error: -n needs pytest-xdist (pip install pytest-xdist)",
              file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "outcomes.jsonl")
        cmd = [sys.executable, "-m", "pytest", tmp, "-p", "no:cacheprovider", "-q",
               "-n", str(args.jobs), "--mixology-device", device,
               "--mixology-profile", profile, "--mixology-report", report]
        if args.sizes:
            cmd += ["--mixology-sizes", args.sizes]
        if args.candidate:
            cmd += [a for c in args.candidate for a in ("--mixology-candidate", c)]
        else:
            cmd.append("--mixology-verify")
        for flag, values in (("--mixology-op", args.op), ("--mixology-impl", args.impl),
                             ("--mixology-property", args.property)):
            cmd += [a for v in values or [] for a in (flag, v)]
        print(f"mixology verify: {total} checks on {args.jobs} workers (pytest-xdist), "
              f"device={device} profile={profile}", file=sys.stderr, flush=True)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [_repo_root(), os.environ.get("PYTHONPATH", "")]).strip(os.pathsep))
        # N workers share the cores: torch's intra-op threads per worker, not per machine
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.jobs)))
        subprocess.call(cmd, env=env, cwd=tmp, stdout=sys.stderr)
        rows = []
        if os.path.exists(report):
            with open(report) as f:
                rows = [json.loads(line) for line in f if line.strip()]
    return [Outcome(r["op"], r["impl"], r["prop"], r["ok"], r["seconds"],
                    [Failure(**f) for f in r["failures"]], r["sizes"], r["kind"]) for r in rows]


def cmd_list(args) -> int:
    device = _setup_device(args.device)
    from mixology import registry, spec

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
            doc = " ".join((p.fn.__doc__ or "").split())
            print(f"    {p.name} ({p.kind})")
            print(textwrap.fill(doc, width=100, initial_indent=" " * 6,
                                subsequent_indent=" " * 6))
        print("  mutants:")
        for m in registry.mutants(op, device):
            print(f"    {m.name:40s} {m.doc}")
        print()
    return 0


def cmd_mutants(args) -> int:
    """Kill matrix: which properties reject which mutant; exit 1 if any mutant survives."""
    device = _setup_device(args.device)
    from mixology import registry
    from mixology.verify import runner

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
    here = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    for root in (os.getcwd(), here):
        if os.path.exists(os.path.join(root, "perf", "test_sweep.py")):
            return root
    raise SystemExit("error: run this from a mixology checkout (perf/test_sweep.py not found)")


def cmd_bench(args) -> int:
    """Run the perf sweep with pytest-benchmark and autosave it into the history."""
    import subprocess

    device = _setup_device(args.device)
    from mixology.bench.sweep import device_key

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


def _verdicts(rows, threshold: float) -> str:
    from mixology.bench.history import MIN_CHANGES

    n = {v: sum(r.verdict == v for r in rows) for v in ("SLOWER", "noisy", "unconfirmed")}
    return (f"{n['SLOWER']} slowdown(s) beyond max({threshold:g}%, 3 x run-to-run noise) and "
            f"twice the rounds' spread, the fastest round slower too; {n['noisy']} change(s) "
            f"too noisy to judge; {n['unconfirmed']} unconfirmed (fewer than "
            f"{MIN_CHANGES} run-to-run changes "
            "in the history: run the bench again to learn this machine's noise)")


def cmd_history(args) -> int:
    """Latest vs previous vs best per benchmark, plots, claims; exit 1 on a slowdown."""
    from mixology.bench import history

    root = _repo_root()
    storage = args.storage or os.path.join(root, "perf", "history")
    runs = history.load_runs(storage)
    if args.device_key:
        runs = {k: v for k, v in runs.items() if k in args.device_key}
    if not runs:
        print(f"no benchmark history under {storage}")
        return 0
    if args.compare:
        try:
            base, head = (history.find_run(runs, ref) for ref in args.compare)
        except ValueError as e:
            return _usage_error("history", str(e))
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
            paths = history.plot_run(latest, out)
            paths += history.plot_trend(key_runs, out)
            print(f"{len(paths)} plot(s) written to {out}\n")
        print(history.report(list(latest.results.values())) + "\n")
    if flagged and not args.no_gate:
        print(f"history: {flagged} slowdown(s) flagged; exit 1")
        return 1
    return 0


def cmd_gpu_check(args) -> int:
    """Compile every Triton kernel for GPU targets (no GPU needed); exit 1 on a problem."""
    import subprocess

    from mixology.bench import gpu_check

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


def _parse_value(text: str):
    """--set values: int, float, true/false, none, else the string."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def cmd_report(args) -> int:
    """The HTML report of lab runs (mixology/lab/report.py)."""
    from mixology.lab import report

    out = args.out or os.path.join(args.run_dirs[0], "report.html")
    try:
        path = report.build(args.run_dirs, out, args.prompt)
    except ValueError as e:
        return _usage_error("report", str(e).splitlines()[0])
    print(f"{path} ({path.stat().st_size / 1e3:.0f} kB) and its PNGs beside it")
    return 0


def cmd_circuits(args) -> int:
    """Per head, the top singular values and token pairs of QK and OV; heatmaps."""
    from mixology.lab import circuits
    from mixology.lab.train import load_run

    try:
        model, tok = load_run(args.run_dir)
        print(circuits.summary(model, tok.chars, args.top))
        paths = circuits.heatmaps(model, tok.chars,
                                  args.out or os.path.join(args.run_dir, "circuits"))
    except ValueError as e:
        return _usage_error("circuits", str(e).splitlines()[0])
    print(f"{len(paths)} heatmap(s) in {os.path.dirname(paths[0])}")
    return 0


def cmd_explain(args) -> int:
    """Print the walkthrough of a block (mixology/lab/explain.py)."""
    from mixology.lab import explain

    try:
        text = explain.explain(args.topic, B=args.B, T=args.T, D=args.D, H=args.H)
    except ValueError as e:
        return _usage_error("explain", str(e))
    print(text, end="")
    return 0


def cmd_train(args) -> int:
    """Train a lab model: a preset, --set overrides of its model or training config."""
    from dataclasses import fields

    from mixology.lab.model import ModelConfig, preset
    from mixology.lab.train import TRAIN_PRESETS, TrainConfig, train

    model_keys = {f.name for f in fields(ModelConfig)}
    train_keys = {f.name for f in fields(TrainConfig)}
    m, t = {}, {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            return _usage_error("train", f"--set wants key=value, got {item!r}")
        if key in model_keys:
            m[key] = _parse_value(value)
        elif key in train_keys:
            t[key] = _parse_value(value)
        else:
            return _usage_error("train", f"--set: unknown key {key!r}")
    try:
        model_cfg = preset(args.preset, **m)
        train_cfg = TrainConfig.from_dict({**TRAIN_PRESETS.get(args.preset, {}), **t})
        run = train(model_cfg, train_cfg, args.out or os.path.join("runs", args.preset),
                    resume=args.resume)
    except ValueError as e:
        return _usage_error("train", str(e).splitlines()[0])
    last = run.metrics[-1] if run.metrics else {}
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 reports
        return 0
    print(f"{run.out}: {len(run.metrics)} steps, best validation loss {run.best_val:.4f}, "
          f"last train loss {last.get('train_loss', float('nan')):.4f}")
    return 0




def cmd_compare(args) -> int:
    """Every grid config x seed, a table of the final validation loss and a PNG of the curves."""
    from mixology.lab import compare
    from mixology.lab.train import TRAIN_PRESETS

    grid, base = {}, {}
    for item in args.grid or []:
        key, sep, values = item.partition("=")
        if not sep or not values:
            return _usage_error("compare", f"--grid wants key=v1,v2,..., got {item!r}")
        grid[key] = [_parse_value(v) for v in values.split(",")]
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            return _usage_error("compare", f"--set wants key=value, got {item!r}")
        base[key] = _parse_value(value)
    if args.seeds < 1:
        return _usage_error("compare", f"--seeds must be >= 1, got {args.seeds}")
    base = {**TRAIN_PRESETS.get(args.preset, {}), **base}
    try:
        rows = compare.run_grid(args.preset, grid, args.seeds, args.out, base)
    except ValueError as e:
        return _usage_error("compare", str(e).splitlines()[0])
    print(compare.table(rows))
    print(f"curves: {compare.plot(rows, os.path.join(args.out, 'curves.png'))}")
    return 0


def cmd_sample(args) -> int:
    from mixology.lab.train import load_run, sample_text

    try:
        model, tok = load_run(args.run_dir)
        print(sample_text(model, tok, args.prompt, args.tokens, temperature=args.temperature,
                          top_k=args.top_k, seed=args.seed))
    except ValueError as e:
        return _usage_error("sample", str(e).splitlines()[0])
    return 0


def _property_table(matrix, ops) -> str:
    """Markdown: each property, what it checks, and the mutants it rejects."""
    from mixology import spec

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
    parser = argparse.ArgumentParser(
        prog="mixology",
        description="Property-based verification of token mixers and transformer building "
                    "blocks: every op's einops reference, its optimized implementations and "
                    "your own kernels, checked against a spec of properties.",
        epilog="Run `mixology COMMAND --help` for a command's options. Examples: "
               "`mixology verify --op rms_norm`, `mixology verify --candidate "
               "rms_norm=pkg.mod:my_rms_norm`, `mixology verify -n 2`.")
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
    v.add_argument("-v", "--verbose", action="store_true",
                   help="a line per check, even on a terminal (default there: a bar)")
    v.add_argument("-n", "--jobs", type=int, metavar="N",
                   help="spread the checks over N worker processes (pytest-xdist)")
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
                         "taken from it; this run's results are written back")
    gc.add_argument("--markdown", metavar="PATH", help="write every variant's row here")
    gc.add_argument("--summary", metavar="PATH", help="write the per-kernel summary here")
    gc.set_defaults(func=cmd_gpu_check)

    tr = sub.add_parser("train", help="train a lab model (char-level tiny Shakespeare)")
    tr.add_argument("--preset", default="shakespeare-char-cpu",
                    help="shakespeare-char | shakespeare-char-cpu | attention_only_1L | "
                         "attention_only_2L | transformer_1L | transformer_2L")
    tr.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a model or training setting (repeatable)")
    tr.add_argument("--out", help="run folder (default runs/PRESET)")
    tr.add_argument("--resume", action="store_true", help="go on from OUT/last.pt")
    tr.set_defaults(func=cmd_train)

    co = sub.add_parser("compare", help="train a grid of configs x seeds and compare them")
    co.add_argument("--preset", default="shakespeare-char-cpu")
    co.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                    help="a setting and its values to compare (repeatable: the product)")
    co.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="a setting shared by every config")
    co.add_argument("--seeds", type=int, default=3)
    co.add_argument("--out", required=True, help="folder for the runs, table and plot")
    co.set_defaults(func=cmd_compare)

    sa = sub.add_parser("sample", help="sample text from a trained run")
    sa.add_argument("run_dir")
    sa.add_argument("--prompt", default="\n")
    sa.add_argument("--tokens", type=int, default=500)
    sa.add_argument("--temperature", type=float, default=0.8)
    sa.add_argument("--top-k", type=int, default=200)
    sa.add_argument("--seed", type=int, default=0)
    sa.set_defaults(func=cmd_sample)

    rp = sub.add_parser("report", help="one HTML report of lab runs (images embedded)")
    rp.add_argument("run_dirs", nargs="+")
    rp.add_argument("--out", default=None, help="the HTML file (default RUN_DIR/report.html)")
    rp.add_argument("--prompt", default="ROMEO:\nWhat say")
    rp.set_defaults(func=cmd_report)

    ci = sub.add_parser("circuits", help="QK/OV circuits of an attention-only run")
    ci.add_argument("run_dir")
    ci.add_argument("--top", type=int, default=5)
    ci.add_argument("--out", default=None, help="heatmaps folder (default RUN_DIR/circuits)")
    ci.set_defaults(func=cmd_circuits)

    ex = sub.add_parser("explain", help="walk through a block step by step (text)")
    ex.add_argument("topic", help="token_mixer | ffn | swiglu | attention")
    for name in ("B", "T", "D", "H"):
        ex.add_argument(f"--{name}", type=int, default=None)
    ex.set_defaults(func=cmd_explain)

    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args._start = time.perf_counter()
    return args.func(args)
