"""``mixology verify``, ``list`` and ``mutants``: the spec on implementations, candidates and
mutants."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

from mixology import registry, spec
from mixology.cli.common import add_common, duration, repo_root, setup_device
from mixology.spec.strategies import profile_name
from mixology.verify import coverage, operators, runner, sensitivity
from mixology.verify.api import format_failure
from mixology.verify.operators import every_mutant
from mixology.verify.runner import Failure, Outcome


def add_commands(sub) -> None:
    v = sub.add_parser("verify", help="run the spec; print op x implementation x property")
    add_common(v)
    v.add_argument("--impl", action="append", help="only this implementation (repeatable)")
    v.add_argument("--property", action="append", help="only this property (repeatable)")
    v.add_argument("--candidate", action="append", metavar="OP=package.module:function",
                   help="check your own callable (same signature as OP) against the spec")
    v.add_argument("--dtypes", metavar="LIST",
                   help="with --candidate: the only dtypes it supports, e.g. float32,bfloat16 "
                        "(cases in others are not drawn; float64-only properties are replaced "
                        "by its gradients against the float64 reference)")
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
    add_common(ls)
    ls.set_defaults(func=cmd_list)

    co = sub.add_parser("coverage", help="what the spec's draw reaches per op: dtypes, layouts, "
                                         "dims, every argument's values; exit 1 on a gap")
    add_common(co)
    co.set_defaults(func=cmd_coverage)

    mu = sub.add_parser("mutants", help="check that the spec rejects every mutant")
    add_common(mu)
    mu.add_argument("--matrix", action="store_true",
                    help="run every property on every mutant (the full kill matrix)")
    mu.add_argument("--markdown", action="store_true",
                    help="print the property table of docs/properties.md (implies --matrix)")
    mu.add_argument("--operators", action="store_true",
                    help="print which mutation operators apply to which op (docs/spec.md)")
    mu.add_argument("--sensitivity", action="store_true",
                    help="for each op, output and dtype, the smallest k units of the "
                         "reference's own error the spec rejects")
    mu.set_defaults(func=cmd_mutants)


def table(outcomes, columns) -> str:
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for o in outcomes:
        rows.setdefault((o.op, o.prop), {})[o.impl] = o.status
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
        elapsed = duration(time.perf_counter() - self.start)
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


def cmd_verify(args) -> int:
    device = setup_device(args.device)
    candidates = runner.parse_candidates(args.candidate)
    dtypes = runner.parse_dtypes(args.dtypes)
    checks = runner.plan(args.op, args.impl, args.property, device=device,
                         candidates=candidates, mutants=args.mutant, dtypes=dtypes)
    if not checks:
        print("nothing to verify: no property matched the selection on " + device)
        return 1
    profile = args.profile or profile_name()
    if args.jobs and args.jobs > 1:
        outcomes = _verify_parallel(args, device, profile, len(checks))
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
    start = getattr(args, "_start", None)
    columns = list(dict.fromkeys(o.impl for o in outcomes))
    print(f"mixology verify: device={device} profile={profile}\n")
    print(table(outcomes, columns))
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
    skipped = [o for o in outcomes if o.skipped]
    if skipped:
        print("\nNot checked:")
        for o in skipped:
            print(f"  {o.op}/{o.prop} [{o.impl}]: {o.skipped}")
    print("\n" + timings(outcomes))
    total = sum(o.seconds for o in outcomes)
    wall = f", {duration(time.perf_counter() - start)} wall" if start else ""
    extra = f", {len(contract)} contract failure(s) not counted" if contract else ""
    extra += f", {len(skipped)} not checked" if skipped else ""
    print(f"\n{len(outcomes) - len(failures) - len(skipped)} passed, {len(failing)} failed{extra} "
          f"({total:.0f}s of checks{wall})")
    return 1 if failing else 0


def timings(outcomes, slowest: int = 10) -> str:
    """Where the time went: the slowest checks, and the seconds of checks per implementation
    and per op."""
    lines = [f"the {min(slowest, len(outcomes))} slowest checks:"]
    for o in sorted(outcomes, key=lambda o: -o.seconds)[:slowest]:
        lines.append(f"  {o.seconds:7.1f}s  {o.op}/{o.prop} [{o.impl}]")
    for what, key in (("implementation", lambda o: o.impl), ("op", lambda o: o.op)):
        per: dict[str, float] = {}
        for o in outcomes:
            per[key(o)] = per.get(key(o), 0.0) + o.seconds
        lines.append(f"seconds of checks per {what}: " + ", ".join(
            f"{k} {v:.0f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1])))
    return "\n".join(lines)


def _plugin() -> list[str]:
    """pytest's option that loads mixology's plugin where no installed entry point does (a
    checkout on PYTHONPATH)."""
    installed = any(e.value == "mixology.verify.pytest_plugin"
                    for e in importlib.metadata.entry_points(group="pytest11"))
    return [] if installed else ["-p", "mixology.verify.pytest_plugin"]


def _verify_parallel(args, device, profile, total):
    """verify -n N: every check is a pytest item (mixology's plugin), spread over N worker
    processes by pytest-xdist; each worker appends its outcomes to a JSON-lines file."""
    if importlib.util.find_spec("xdist") is None:
        raise ValueError("-n needs pytest-xdist (pip install pytest-xdist)")
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "outcomes.jsonl")
        cmd = [sys.executable, "-m", "pytest", tmp, "-p", "no:cacheprovider", "-q", *_plugin(),
               "-n", str(args.jobs), "--mixology-device", device,
               "--mixology-profile", profile, "--mixology-report", report]
        if args.sizes:
            cmd += ["--mixology-sizes", args.sizes]
        if args.candidate:
            cmd += [a for c in args.candidate for a in ("--mixology-candidate", c)]
            if args.dtypes:
                cmd += ["--mixology-dtypes", args.dtypes]
        else:
            cmd.append("--mixology-verify")
        for flag, values in (("--mixology-op", args.op), ("--mixology-impl", args.impl),
                             ("--mixology-property", args.property)):
            cmd += [a for v in values or [] for a in (flag, v)]
        print(f"mixology verify: {total} checks on {args.jobs} workers (pytest-xdist), "
              f"device={device} profile={profile}", file=sys.stderr, flush=True)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [repo_root(), os.environ.get("PYTHONPATH", "")]).strip(os.pathsep))
        # N workers share the cores: torch's intra-op threads per worker, not per machine
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.jobs)))
        subprocess.call(cmd, env=env, cwd=tmp, stdout=sys.stderr)
        rows = []
        if os.path.exists(report):
            with open(report) as f:
                rows = [json.loads(line) for line in f if line.strip()]
    return [Outcome(r["op"], r["impl"], r["prop"], r["ok"], r["seconds"],
                    [Failure(**f) for f in r["failures"]], r["sizes"], r["kind"],
                    r.get("skipped", "")) for r in rows]


def cmd_coverage(args) -> int:
    device = setup_device(args.device)
    known = registry.ops()
    for op in args.op or []:
        if op not in known:
            raise ValueError(f"--op: unknown op {op!r}; known: {', '.join(known)}")
    text, gaps = coverage.report(args.op, profile=args.profile or "ci", device=device)
    print(text)
    print(f"{gaps} gap(s)" if gaps else "every entry covered")
    return 1 if gaps else 0


def cmd_list(args) -> int:
    device = setup_device(args.device)
    known = registry.ops()
    unknown = [op for op in args.op or [] if op not in known]
    if unknown:
        raise ValueError(f"unknown op {unknown[0]!r}; known: {', '.join(known)}")
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
        for m in every_mutant(op, device):
            print(f"    {m.name:40s} {m.doc}")
        print()
    return 0


def cmd_mutants(args) -> int:
    """Kill matrix: which properties reject which mutant; exit 1 if any mutant survives."""
    device = setup_device(args.device)
    if args.operators:
        print(operators.matrix())
        return 0
    if args.sensitivity:
        print(sensitivity.table(args.op, profile=args.profile or "ci", device=device,
                                progress=lambda row: print(row, file=sys.stderr, flush=True)))
        return 0
    survivors = []
    matrix: dict[tuple[str, str], list[str]] = {}
    for m in every_mutant(device=device):
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
        print(property_table(matrix, args.op))
    if survivors:
        print(f"\n{len(survivors)} mutant(s) survived the spec: {', '.join(survivors)}")
        return 1
    print("\nevery mutant is rejected by the spec")
    return 0


def property_table(matrix, ops) -> str:
    """Markdown: each property, what it checks, and the mutants it rejects."""
    lines = ["| op | property | kind | checks | mutants it rejects |", "|---|---|---|---|---|"]
    for p in spec.properties():
        if ops and p.op not in ops:
            continue
        killed = matrix.get((p.op, p.name), [])
        who = ", ".join(f"`{k}`" for k in killed) if killed else "**none: suspect**"
        doc = " ".join((p.fn.__doc__ or "").split())
        lines.append(f"| {p.op} | `{p.name}` | {p.kind} | {doc} | {who} |")
    return "\n".join(lines)
