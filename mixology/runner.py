"""Runs spec properties against implementations, mutants and candidates.

Each (property, implementation) pair becomes one hypothesis test. A failure is shrunk by
hypothesis and reported with the counterexample (the case's repr is its full recipe), the
error, and a command that replays exactly that example.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass

import hypothesis
from hypothesis import Phase, given, settings

import spec
from mixology import registry
from spec.strategies import load_profile, set_device

_BLOB = re.compile(r"@reproduce_failure\('([^']+)', b'([^']+)'\)")


@dataclass
class Outcome:
    op: str
    impl: str
    prop: str
    ok: bool
    seconds: float
    error: str = ""
    counterexample: str = ""
    replay: str = ""

    @property
    def status(self) -> str:
        return "pass" if self.ok else "FAIL"


def check(p: spec.Property, fn: Callable, impl_name: str, *, device: str = "cpu",
          profile: str | None = None, reproduce: str | None = None, shrink: bool = True,
          replay_args: str = "", cost: int = 1) -> Outcome:
    """Run property ``p`` on callable ``fn``; never raises for a property failure.
    ``cost``: the implementation's relative cost per example (see registry.Impl)."""
    set_device(device)
    base = load_profile(profile)
    overrides = dict(max_examples=max(1, base.max_examples // (p.cost * cost)))
    if not shrink:
        overrides.update(phases=[Phase.explicit, Phase.reuse, Phase.generate], database=None)

    def property_test(case):
        p.fn(fn, case)

    property_test._hypothesis_internal_add_digest = f"{p.op}/{p.name}/{impl_name}".encode()
    test = settings(base, **overrides)(given(case=p.cases)(property_test))
    if reproduce:
        test = hypothesis.reproduce_failure(hypothesis.__version__, reproduce.encode())(test)

    report: list[str] = []
    start = time.perf_counter()
    try:
        with hypothesis.reporting.with_reporter(report.append):
            test()
    except Exception as e:  # a property failure, or an implementation crash
        # hypothesis attaches "Falsifying example: ..." to the exception as notes (PEP 678)
        text = "\n".join([str(r) for r in report] + list(getattr(e, "__notes__", [])))
        counterexample = _counterexample(text)
        m = _BLOB.search(text)
        replay = ""
        if m:
            replay = (f"python -m mixology verify --op {p.op} --property {p.name} "
                      f"{replay_args or '--impl ' + shlex.quote(impl_name)} "
                      f"--device {device} --reproduce {shlex.quote(m.group(2))}")
        error = f"{type(e).__name__}: {e}".strip()
        counterexample = counterexample.replace(error, "").strip()
        return Outcome(p.op, impl_name, p.name, False, time.perf_counter() - start,
                       error, counterexample, replay)
    return Outcome(p.op, impl_name, p.name, True, time.perf_counter() - start)


def _counterexample(text: str) -> str:
    """The drawn case from hypothesis's report, on one line."""
    m = re.search(r"property_test\((.*?)\n\)", text, re.S)
    if not m:
        return ""
    return " ".join(part.strip() for part in m.group(1).splitlines()).replace("( ", "(").strip(", ")


def verify(ops: list[str] | None = None, impls: list[str] | None = None,
           props: list[str] | None = None, *, device: str | None = None,
           profile: str | None = None, reproduce: str | None = None,
           candidates: dict[str, str] | None = None, mutants: list[str] | None = None,
           on_result: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Every property of every selected op on every selected implementation (or candidate)."""
    device = device or registry.default_device()
    outcomes = []
    targets: list[tuple[str, str, Callable, str, int]] = []  # (op, label, fn, replay, cost)
    if candidates:
        for op, target in candidates.items():
            registry.get(op)  # unknown op -> ValueError
            targets.append((op, f"candidate {target}", registry.load_callable(target),
                            f"--candidate {shlex.quote(op + '=' + target)}", 1))
    elif mutants:
        known = {m.name: m for m in registry.mutants(device=device)}
        for name in mutants:
            if name not in known:
                raise ValueError(f"unknown mutant {name!r} on {device}; known: {sorted(known)}")
            m = known[name]
            if not ops or m.op in ops:
                targets.append((m.op, f"mutant {name}", m.fn, f"--mutant {name}", 1))
    else:
        for op in ops or registry.ops():
            available = registry.implementations(op, device)
            for name in impls or available:
                if name not in available:
                    continue
                impl = registry.get(op, name)
                targets.append((op, name, impl.fn, "", impl.cost))
    for op, label, fn, replay_args, cost in targets:
        for p in spec.properties(op):
            if props and p.name not in props:
                continue
            out = check(p, fn, label, device=device, profile=profile, reproduce=reproduce,
                        replay_args=replay_args, cost=cost)
            outcomes.append(out)
            if on_result:
                on_result(out)
    return outcomes


def rejects(m: registry.Mutant, *, device: str = "cpu", profile: str | None = None,
            stop_at_first: bool = True) -> list[str]:
    """Names of the properties that fail on mutant ``m`` (no shrinking: only the verdict counts)."""
    killed = []
    for p in spec.properties(m.op):
        if not check(p, m.fn, f"mutant:{m.name}", device=device, profile=profile,
                     shrink=False).ok:
            killed.append(p.name)
            if stop_at_first:
                break
    return killed
