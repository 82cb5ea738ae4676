"""Runs spec properties against implementations, mutants and candidates.

Each (property, implementation) pair becomes one hypothesis test. A failure is shrunk by
hypothesis and reported with the counterexample (the case's repr is its full recipe), the
error, and a command that replays exactly that example.
"""

from __future__ import annotations

import functools
import importlib
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import hypothesis
import torch
from hypothesis import HealthCheck, Phase, given, settings

from mixology import registry, spec
from mixology.spec import generic
from mixology.spec.strategies import (
    DECLARED,
    FLOATS,
    KERNEL_CAP,
    KERNEL_EXAMPLES,
    load_profile,
    profile_name,
    set_device,
    set_tier,
    sized,
    tiers,
)
from mixology.verify import interpreter, stack
from mixology.verify.operators import every_mutant

_BLOB = re.compile(r"@reproduce_failure\('([^']+)', b'([^']+)'\)")


@dataclass
class Failure:
    """One distinct failure: hypothesis may find several in one run (an ExceptionGroup)."""

    error: str
    counterexample: str = ""
    replay: str = ""


@dataclass
class Outcome:
    op: str
    impl: str
    prop: str
    ok: bool
    seconds: float
    failures: list[Failure] = field(default_factory=list)
    sizes: str = "small"  # the tiers run (the one that failed, on failure)
    kind: str = "correctness"
    skipped: str = ""  # why the property could not be checked (ok is then True)

    @property
    def status(self) -> str:
        return "skip" if self.skipped else ("pass" if self.ok else "FAIL")

    # the first failure, for one-line reports
    @property
    def error(self) -> str:
        return self.failures[0].error if self.failures else ""

    @property
    def counterexample(self) -> str:
        return self.failures[0].counterexample if self.failures else ""

    @property
    def replay(self) -> str:
        return self.failures[0].replay if self.failures else ""


def examples(profile: str | None, tier: str) -> int:
    """Examples a property gets in ``tier`` under ``profile`` (before dividing by costs)."""
    base = load_profile(profile)
    return base.max_examples if tier == "small" else KERNEL_EXAMPLES[profile or profile_name()]


def check(p: spec.Property, fn: Callable, impl_name: str, *, device: str = "cpu",
          profile: str | None = None, reproduce: str | None = None, shrink: bool = True,
          replay_args: str = "", cost: int = 1, sizes: str | None = None) -> Outcome:
    """Run property ``p`` on callable ``fn`` in each tier of ``sizes`` (small | kernel | all;
    default ``$MIXOLOGY_SIZES`` or all); never raises for a property failure. ``cost``: the
    implementation's relative cost per example (see registry.Impl). A property whose cases
    have no kernel tier runs in the small tier only. ``p.only_dtypes``: the only dtypes ``fn``
    supports (a candidate's declaration, set by :func:`plan`): cases in others are not drawn,
    and a property that draws none of them is skipped, with the reason."""
    run = [t for t in tiers(sizes) if t == "small" or p.kernel] or ["small"]
    start = time.perf_counter()
    dtypes = p.only_dtypes
    if dtypes is not None:
        drawn = drawn_dtypes(p.cases)
        if None not in drawn and not drawn & set(dtypes):
            return Outcome(p.op, impl_name, p.name, True, 0.0, sizes="+".join(run),
                           kind=p.kind, skipped=f"its cases are {dtype_names(drawn)} only; "
                           f"{impl_name} declares {dtype_names(dtypes)}")
        if not drawn <= {*dtypes, None}:
            p = replace(p, cases=sized(p.cases.filter(
                lambda c: getattr(c, "dtype", None) in (*dtypes, None)), p.kernel))
    for tier in run:
        DECLARED["dtypes"] = dtypes
        try:
            failures = _run_tier(p, fn, impl_name, tier, device=device, profile=profile,
                                 reproduce=reproduce, shrink=shrink, replay_args=replay_args,
                                 cost=cost)
        finally:
            DECLARED["dtypes"] = None
        if failures:
            return Outcome(p.op, impl_name, p.name, False, time.perf_counter() - start,
                           failures, tier, p.kind)
    return Outcome(p.op, impl_name, p.name, True, time.perf_counter() - start,
                   sizes="+".join(run), kind=p.kind)


DTYPES = {str(d).removeprefix("torch."): d for d in FLOATS}


def parse_dtypes(text: str | list | tuple | None, flag: str = "--dtypes"):
    """The dtypes of ``"float32,bfloat16"`` (or of a list of names or dtypes); None for None.
    ValueError naming ``flag`` for an unknown name."""
    if text is None:
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in items:
        if isinstance(item, torch.dtype) and item in FLOATS:
            out.append(item)
            continue
        name = str(item).strip().removeprefix("torch.")
        if name not in DTYPES:
            raise ValueError(f"{flag}: unknown or unsupported dtype {str(item).strip()!r}; "
                             f"expected some of {', '.join(DTYPES)}")
        out.append(DTYPES[name])
    if not out:
        raise ValueError(f"{flag}: no dtype given")
    return tuple(dict.fromkeys(out))


def dtype_names(dtypes) -> str:
    return ", ".join(str(d).removeprefix("torch.") for d in FLOATS if d in set(dtypes))


def drawn_dtypes(cases, examples: int = 30) -> set:
    """The dtypes (None: a case without one, such as a bad input) that ``cases`` draws, from
    a fixed sample of its cases."""
    seen: set = set()

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=cases)
    def collect(case):
        seen.add(getattr(case, "dtype", None))

    collect()
    return seen


def hypothesis_test(p: spec.Property, fn: Callable, tier: str, s: settings) -> Callable:
    """The hypothesis test of ``p`` on ``fn`` in ``tier`` under settings ``s``. Its draw is
    seeded from the op, the property and the tier (and this function's source), never from
    the name under test: every implementation and candidate of an op is judged on the same
    cases, and mixology.verify.coverage replays them."""
    def property_test(case):
        p.fn(fn, case)

    property_test._hypothesis_internal_add_digest = f"{p.op}/{p.name}/{tier}".encode()
    return s(given(case=p.cases)(property_test))


def _run_tier(p, fn, impl_name, tier, *, device, profile, reproduce, shrink, replay_args,
              cost) -> list[Failure]:
    set_device(device)
    base = load_profile(profile)
    overrides = dict(max_examples=max(1, examples(profile, tier) // (p.cost * cost)))
    if not shrink:
        overrides.update(phases=[Phase.explicit, Phase.reuse, Phase.generate], database=None)

    test = hypothesis_test(p, fn, tier, settings(base, **overrides))
    if reproduce:
        test = hypothesis.reproduce_failure(hypothesis.__version__, reproduce.encode())(test)

    report: list[str] = []
    set_tier(tier, KERNEL_CAP[profile or profile_name()], rotation(p, profile))
    try:
        with hypothesis.reporting.with_reporter(report.append):
            stack.call(test)  # an interpreted kernel's deep calls without frame-chunk churn
    except BaseException as e:  # a property failure (or several), or an implementation crash
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        replay = (f"python -m mixology verify --op {p.op} --property {p.name} "
                  f"{replay_args or '--impl ' + shlex.quote(impl_name)} "
                  f"--device {device} --sizes {tier} --reproduce ")
        errors = list(getattr(e, "exceptions", None) or [e])  # an ExceptionGroup: each one
        return [_failure(err, report if len(errors) == 1 else [], replay) for err in errors]
    finally:
        set_tier("small")
    return []


def rotation(p: spec.Property, profile: str | None = None) -> int:
    """The kernel tier's dtype rotation for ``p`` (spec.strategies.dtype_of). A property gets
    one or two kernel-tier examples. Its op's kernel-tier properties, those that reach the
    fewest dtypes first (then in the spec's order), each get the first rotation whose first
    case is in a dtype none before it reached, so that between them they reach every dtype
    they can (0 for a property not among them)."""
    return _rotations(p.op, profile or profile_name()).get(p.name, 0)


@functools.cache
def _rotations(op: str, profile: str) -> dict[str, int]:
    firsts = {q.name: [_first_dtype(q, r, profile) for r in range(len(FLOATS))]
              for q in spec.properties(op) if q.kernel}
    reached: set = set()
    out = {}
    for name in sorted(firsts, key=lambda n: len(set(firsts[n]))):
        r = next((r for r, d in enumerate(firsts[name]) if d not in reached), 0)
        reached.add(firsts[name][r])
        out[name] = r
    return out


def _first_dtype(p: spec.Property, r: int, profile: str):
    """The dtype of ``p``'s first kernel-tier case under rotation ``r``."""
    cases = replay(p, "kernel", 1, profile, r, phases=[Phase.generate])
    return getattr(cases[0], "dtype", None) if cases else None


def replay(p: spec.Property, tier: str, n: int, profile: str, rotation_: int,
           phases=(Phase.explicit, Phase.reuse, Phase.generate)) -> list:
    """The first ``n`` cases the runner draws for ``p`` in ``tier`` (no shrinking), under the
    kernel tier's dtype rotation ``rotation_``; nothing is run on them."""
    out: list = []
    recorder = replace(p, fn=lambda _, case: out.append(case))
    test = hypothesis_test(recorder, None, tier, settings(
        load_profile(profile), max_examples=n, database=None, phases=list(phases),
        suppress_health_check=list(HealthCheck)))
    set_tier(tier, KERNEL_CAP[profile], rotation_)
    try:
        test()
    finally:
        set_tier("small")
    return out


def _failure(e: BaseException, report: list[str], replay: str) -> Failure:
    """Error, counterexample and replay of one failure; hypothesis attaches "Falsifying
    example: ..." and the reproduce blob to each exception as notes (PEP 678)."""
    text = "\n".join([str(r) for r in report] + list(getattr(e, "__notes__", [])))
    error = f"{type(e).__name__}: {e}".strip()
    m = _BLOB.search(text)
    return Failure(error, _counterexample(text).replace(error, "").strip(),
                   replay + shlex.quote(m.group(2)) if m else "")


def _counterexample(text: str) -> str:
    """The drawn case from hypothesis's report, on one line."""
    m = re.search(r"property_test\((.*?)\n\)", text, re.S)
    if not m:
        return ""
    return " ".join(part.strip() for part in m.group(1).splitlines()).replace("( ", "(").strip(", ")


def resolve(fn: Callable | str) -> tuple[Callable, str]:
    """(callable, "module:function" or "") for a callable or a "module:function" string; the
    string is what a replay command can import."""
    if isinstance(fn, str):
        if ":" not in fn:
            raise ValueError(f"fn: expected 'package.module:function', got {fn!r}")
        return registry.load_callable(fn), fn
    if not callable(fn):
        raise TypeError(f"fn: expected a callable or 'package.module:function', got "
                        f"{type(fn).__name__}")
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    target = f"{module}:{name}" if module and name and "<" not in name else ""
    try:  # only if importing it gives back this very function
        if target and _attr(importlib.import_module(module), name) is not fn:
            target = ""
    except Exception:  # noqa: BLE001  (not importable: no replay command)
        target = ""
    return fn, target


def parse_candidates(items, flag: str = "--candidate") -> dict[str, str]:
    """{op: "module:function"} from ``OP=module:function`` items (the CLI's and the pytest
    plugin's option), each checked to import; ValueError naming ``flag`` otherwise."""
    out = {}
    for item in items or []:
        op, sep, target = item.partition("=")
        if not sep or ":" not in target or not op:
            raise ValueError(f"{flag} wants OP=package.module:function, got {item!r}")
        try:
            resolve(target)
        except Exception as e:  # noqa: BLE001  (import errors of the user's module)
            raise ValueError(f"{flag}: cannot import {target}: {type(e).__name__}: {e}") from e
        out[op] = target
    return out


def _attr(obj, dotted: str):
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def plan(ops: list[str] | None = None, impls: list[str] | None = None,
         props: list[str] | None = None, *, device: str,
         candidates: dict[str, str | Callable] | None = None,
         mutants: list[str] | None = None, dtypes: tuple | None = None) -> list[tuple]:
    """The checks ``verify`` runs: (op, label, fn, replay args, cost, property), in order.
    ``dtypes``: the only dtypes the candidates support (their properties draw only those;
    without float64, each op's float64-only properties are replaced by
    ``gradients_against_float64`` in the declared dtypes). Raises ValueError naming the
    argument for an unknown op, implementation, property, mutant or candidate."""
    if dtypes is not None and not candidates:
        raise ValueError("--dtypes: declares a candidate's dtypes; give --candidate too")
    known_ops = registry.ops()
    for op in ops or []:
        if op not in known_ops:
            raise ValueError(f"--op: unknown op {op!r}; known: {', '.join(known_ops)}")
    targets: list[tuple[str, str, Callable, str, int]] = []  # (op, label, fn, replay, cost)
    if candidates:
        interpreter.install()  # a candidate's Triton kernels, interpreted as CUDA runs them
        for op, target in candidates.items():
            if op not in known_ops:
                raise ValueError(f"--candidate: unknown op {op!r}; known: {', '.join(known_ops)}")
            if ops and op not in ops:
                raise ValueError(f"--op {','.join(ops)} contradicts --candidate {op}=...: "
                                 "a candidate is checked against its own op's spec")
            fn, name = resolve(target)
            label = f"candidate {name or target}"
            replay = f"--candidate {shlex.quote(op + '=' + name)}" if name else ""
            if replay and dtypes:
                replay += " --dtypes " + dtype_names(dtypes).replace(", ", ",")
            targets.append((op, label, fn, replay, 1))
    elif mutants:
        known: dict[str, list] = {}
        for m in every_mutant(device=device):
            known.setdefault(m.name, []).append(m)
        for name in mutants:
            if name not in known:
                raise ValueError(f"--mutant: unknown mutant {name!r} on {device}")
            for m in known[name]:
                if not ops or m.op in ops:
                    targets.append((m.op, f"mutant {name}", m.fn,
                                    f"--mutant {shlex.quote(name)}", 1))
    else:
        every = {n for op in ops or known_ops for n in registry.OPS[op].impls}
        for name in impls or []:
            if name not in every:
                raise ValueError(f"--impl: no implementation {name!r} of the selected ops")
        for op in ops or known_ops:
            available = registry.implementations(op, device)
            for name in impls or available:
                if name in available:
                    impl = registry.get(op, name)
                    targets.append((op, name, impl.fn, "", impl.cost))
    all_props = {p.name for op in {t[0] for t in targets} for p in spec.properties(op)}
    if dtypes is not None and torch.float64 not in dtypes:
        all_props.add(generic.STAND_IN)
    for name in props or []:
        if name not in all_props:
            raise ValueError(f"--property: no property {name!r} of the selected ops")
    checks = []
    for op, label, fn, replay, cost in targets:
        chosen = [p for p in spec.properties(op) if not props or p.name in props]
        if dtypes is not None:
            chosen = [replace(p, only_dtypes=tuple(dtypes)) for p in chosen]
            stand_in = generic.gradients_against_float64(op)
            if torch.float64 not in dtypes and stand_in and (not props or stand_in.name in props):
                chosen.append(replace(stand_in, only_dtypes=tuple(dtypes)))
        checks += [(op, label, fn, replay, cost, p) for p in chosen]
    return checks


def verify(ops: list[str] | None = None, impls: list[str] | None = None,
           props: list[str] | None = None, *, device: str | None = None,
           profile: str | None = None, reproduce: str | None = None,
           candidates: dict[str, str | Callable] | None = None,
           mutants: list[str] | None = None,
           on_result: Callable[[Outcome], None] | None = None,
           sizes: str | None = None) -> list[Outcome]:
    """Every property of every selected op on every selected implementation (or candidate),
    in the tiers of ``sizes`` (small | kernel | all)."""
    device = device or registry.default_device()
    return run_plan(plan(ops, impls, props, device=device, candidates=candidates,
                         mutants=mutants), device=device, profile=profile, reproduce=reproduce,
                    on_result=on_result, sizes=sizes)


def run_plan(checks: list[tuple], *, device: str, profile: str | None = None,
             reproduce: str | None = None, on_result: Callable[[Outcome], None] | None = None,
             sizes: str | None = None) -> list[Outcome]:
    """Run the checks of :func:`plan`, one after another."""
    outcomes = []
    for _op, label, fn, replay_args, cost, p in checks:
        out = check(p, fn, label, device=device, profile=profile, reproduce=reproduce,
                    replay_args=replay_args, cost=cost, sizes=sizes)
        outcomes.append(out)
        if on_result:
            on_result(out)
    return outcomes


def rejects(m: registry.Mutant, *, device: str = "cpu", profile: str | None = None,
            stop_at_first: bool = True, sizes: str | None = None) -> list[str]:
    """Names of the properties that fail on mutant ``m`` (no shrinking: only the verdict counts)."""
    killed = []
    for p in spec.properties(m.op):
        if not check(p, m.fn, f"mutant:{m.name}", device=device, profile=profile,
                     shrink=False, sizes=sizes).ok:
            killed.append(p.name)
            if stop_at_first:
                break
    return killed
