"""Input-space coverage: what the spec's draw reaches, per op, under a profile (``ci``).

The draw of every property is replayed exactly as the runner makes it (the same seed from op,
property and tier; the example count of the op's costliest implementation, the fewest any
implementation gets), without running anything, and each drawn case is read for what it
covers. Contract properties (bad input) are left out: they check refusals, not the input
space. The entries an op must cover, from its signature (``spec.signature``) and its cases:

- ``dtype``: every float dtype in each size tier the op has;
- ``layout(input)``: every tensor input of the op in every memory layout its cases know
  (the case's ``layout`` for batch inputs, the properties that relayout every input for the
  others);
- ``upstream``: the upstream gradient in every layout, by a property that passes the case's
  ``upstream_layout`` to its comparison;
- ``B >= 2`` and ``T > H`` where the case has those dims;
- every other argument of the op's reference: each value of its ``choices`` (bools: both),
  and at least two values of a float or int argument.

A property that enumerates configurations inside each example declares them
(``prop(..., covers={arg: values})``); they count for each of its drawn cases.

    python -m mixology coverage [--op OP]
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields, is_dataclass

from mixology import registry, spec
from mixology.spec.strategies import (
    FLOATS,
    LAYOUTS,
    UPSTREAM_LAYOUTS,
    BadInput,
)
from mixology.verify.runner import examples, replay, rotation

SEVERAL = 2  # the distinct values a float or int argument must take


@dataclass
class Coverage:
    """One op's entries: each required entry, with the properties that reach it."""

    op: str
    required: dict[str, set] = field(default_factory=dict)  # entry -> values it must take
    seen: dict[str, dict] = field(default_factory=dict)  # entry -> {value: {property, ...}}
    several: set[str] = field(default_factory=set)  # entries needing SEVERAL values, any

    def gaps(self) -> list[str]:
        """``entry: value`` for each required value no drawn case reaches."""
        out = []
        for entry, values in self.required.items():
            got = self.seen.get(entry, {})
            if entry in self.several:
                if len(got) < SEVERAL:
                    out.append(f"{entry}: {len(got)} value(s) drawn "
                               f"({', '.join(map(repr, got)) or 'none'}), {SEVERAL} needed")
                continue
            out += [f"{entry}: {_show(v)}" for v in _sorted(values) if v not in got]
        return out


def _show(v) -> str:
    return str(v).removeprefix("torch.") if not isinstance(v, str) else v


def _sorted(values):
    return sorted(values, key=lambda v: (str(type(v)), str(v)))


def _uses_upstream_layout(p: spec.Property) -> bool:
    """Whether the property's function, or a function of its module that it calls, passes
    the case's ``upstream_layout`` on."""
    fn = inspect.unwrap(p.fn)
    called = [fn] + [g for name in fn.__code__.co_names
                     if inspect.isfunction(g := fn.__globals__.get(name))
                     and g.__module__ == fn.__module__]
    for f in called:
        try:
            if "upstream_layout" in inspect.getsource(f):
                return True
        except (OSError, TypeError):
            continue
    return False


def _draw(p: spec.Property, tier: str, n: int, profile: str) -> list:
    """The cases the runner draws for ``p`` in ``tier`` with ``n`` examples (no shrinking)."""
    return replay(p, tier, n, profile, rotation(p, profile))


def _heads(case):
    for name in ("H", "num_heads"):
        if hasattr(case, name):
            return getattr(case, name)
    return None


def arguments(op: str) -> dict[str, inspect.Parameter]:
    """The op's arguments that are not tensor inputs (the ones a case configures)."""
    sig = spec.SIGNATURES[op]
    params = inspect.signature(registry.get(op).fn).parameters
    return {n: q for n, q in params.items()
            if n not in sig.inputs and n not in sig.fixed}


def coverage(op: str, *, profile: str = "ci", device: str = "cpu") -> Coverage:
    """The coverage of ``op`` by its properties' draw under ``profile``."""
    spec.load()
    sig = spec.SIGNATURES[op]
    cov = Coverage(op)
    cost = max([registry.get(op, n).cost for n in registry.implementations(op, device)] or [1])
    props = [p for p in spec.properties(op) if p.kind != "contract"]
    run_tiers = ["small"] + (["kernel"] if any(p.kernel for p in props) else [])
    for tier in run_tiers:
        cov.required[f"dtype ({tier})"] = set(FLOATS)
    cov.required["upstream"] = set(UPSTREAM_LAYOUTS)
    args = arguments(op)
    for name, q in args.items():
        choices = sig.choices.get(name)
        if choices is None and isinstance(q.default, bool):
            choices = (False, True)
        if choices is None:
            cov.several.add(name)
        cov.required[name] = set(choices or ())

    def saw(entry, value, p):
        cov.seen.setdefault(entry, {}).setdefault(value, set()).add(p.name)

    for p in props:
        upstream = _uses_upstream_layout(p)
        for tier in run_tiers:
            if tier == "kernel" and not p.kernel:
                continue
            n = max(1, examples(profile, tier) // (p.cost * cost))
            for case in _draw(p, tier, n, profile):
                if isinstance(case, BadInput) or not is_dataclass(case):
                    continue
                names = {f.name for f in fields(case)}
                if "dtype" in names:
                    saw(f"dtype ({tier})", case.dtype, p)
                if "layout" in names:
                    for name, batch in sig.inputs.items():
                        if batch is not None:
                            cov.required.setdefault(f"layout({name})", set(case.LAYOUTS))
                            saw(f"layout({name})", case.layout, p)
                if upstream:
                    saw("upstream", case.upstream_layout, p)
                if "B" in names:
                    cov.required.setdefault("B >= 2", {True})
                    saw("B >= 2", case.B >= 2, p)
                if "T" in names and _heads(case) is not None:
                    cov.required.setdefault("T > H", {True})
                    saw("T > H", case.T > _heads(case), p)
                for name in args:
                    if name in names:
                        saw(name, getattr(case, name), p)
                    elif name == "num_heads" and _heads(case) is not None:
                        saw(name, _heads(case), p)
                for name, values in p.covers.items():
                    for v in values:
                        saw(name, v, p)
    for name in sig.inputs:  # parameters: every layout relayout() makes
        cov.required.setdefault(f"layout({name})", set(LAYOUTS))
    return cov


def report(ops: list[str] | None = None, *, profile: str = "ci",
           device: str = "cpu") -> tuple[str, int]:
    """(text, number of gaps): per op, each entry with the values drawn, then its gaps."""
    lines, total = [], 0
    for op in ops or [s.op for s in spec.signatures()]:
        cov = coverage(op, profile=profile, device=device)
        gaps = cov.gaps()
        total += len(gaps)
        lines.append(f"{op}: {'covered' if not gaps else f'{len(gaps)} gap(s)'}")
        for entry in cov.required:
            got = cov.seen.get(entry, {})
            lines.append(f"  {entry:<22} {', '.join(_show(v) for v in _sorted(got)) or '-'}")
        lines += [f"  GAP {g}" for g in gaps]
    return "\n".join(lines), total
