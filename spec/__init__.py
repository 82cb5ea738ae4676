"""The spec: properties every implementation of an op must satisfy.

A property is a plain function ``fn(impl, case)`` that raises ``AssertionError`` (or any
exception) when ``impl``, the callable under test, violates it for one hypothesis-drawn
``case``. Registering it is the one decorator line::

    @prop("token_mix", cases=mix_cases())
    def h1_is_identity(impl, case): ...

Every registered property runs on every implementation of its op, on every mutant (which
must fail at least one property), and on any ``--candidate`` a user points at.
"""

from __future__ import annotations

if __name__ != "mixology.spec":  # one package, one registry of properties: never a second copy
    raise ImportError(f"the folder spec/ is the package mixology.spec, not {__name__!r}: "
                      "import mixology.spec")

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis.strategies import SearchStrategy

from mixology import registry
from mixology.ops import FAMILIES

KINDS = ("correctness", "numerics", "contract")


@dataclass(frozen=True)
class Property:
    op: str
    name: str
    fn: Callable
    cases: SearchStrategy
    cost: int = 1  # relative cost per example: the profile's max_examples is divided by it
    exact: bool = False  # asserts bitwise equality (data movement), not the tolerance policy
    # correctness: computes the op; numerics: precision under stress (accumulation, large
    # magnitudes); contract: bad input raises a clear ValueError/TypeError naming the argument
    kind: str = "correctness"

    @property
    def doc(self) -> str:
        """The docstring's first sentence (may span lines), on one line."""
        text = " ".join((self.fn.__doc__ or "").split())
        end = text.find(". ")
        return text if end < 0 else text[: end + 1]

    @property
    def kernel(self) -> bool:
        """Whether its cases have a kernel-scale tier (spec.strategies.sized)."""
        return getattr(self.cases, "kernel_sized", False)


PROPERTIES: dict[tuple[str, str], Property] = {}


def prop(op: str, cases: SearchStrategy, *, name: str | None = None, cost: int = 1,
         exact: bool = False, kind: str = "correctness"):
    """Register ``fn(impl, case)`` as a property of ``op`` checked on cases drawn from ``cases``."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}; expected one of {KINDS}")

    def register(fn):
        p = Property(op, name or fn.__name__, fn, cases, cost, exact, kind)
        PROPERTIES[(op, p.name)] = p
        return fn

    return register


def prop_each(prefix_of_op: dict[str, str], cases, **kw):
    """Register one ``fn(op, impl, case)`` as a property of each op in ``prefix_of_op``, named
    ``f"{prefix}_{fn.__name__}"``; ``cases`` is a strategy, or ``op -> strategy``."""

    def register(fn):
        for op, prefix in prefix_of_op.items():
            def check(impl, case, _op=op):
                fn(_op, impl, case)

            check.__doc__ = fn.__doc__
            drawn = cases if isinstance(cases, SearchStrategy) else cases(op)
            prop(op, drawn, name=f"{prefix}_{fn.__name__}", **kw)(check)
        return fn

    return register


def properties(op: str | None = None) -> list[Property]:
    """The properties of ``op`` (of every op, in the registry's order of ops), each op's in
    the order its spec file defines them."""
    load()
    return [p for o in ([op] if op else registry.ops()) for (o_, _), p in PROPERTIES.items()
            if o_ == o]


def load() -> None:
    """Import every op family's spec file, spec/<family>.py: each registers its properties."""
    for name in FAMILIES:
        importlib.import_module(f"{__name__}.{name}")
