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
from dataclasses import dataclass, field

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
    # the only dtypes the implementation under test supports (a candidate's declaration, set
    # by mixology.verify.runner.plan): cases in other dtypes are not drawn
    only_dtypes: tuple | None = None
    # what each example enumerates inside it, beyond its drawn case (mixology.verify.coverage):
    # {argument or "layout(input)": values}
    covers: dict = field(default_factory=dict, hash=False, compare=False)

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
         exact: bool = False, kind: str = "correctness", covers: dict | None = None):
    """Register ``fn(impl, case)`` as a property of ``op`` checked on cases drawn from ``cases``;
    ``covers``: the configurations each example enumerates inside it (``{argument: values}``,
    for the coverage report)."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}; expected one of {KINDS}")

    def register(fn):
        p = Property(op, name or fn.__name__, fn, cases, cost, exact, kind, covers=covers or {})
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

            check.__doc__, check.__wrapped__ = fn.__doc__, fn
            drawn = cases if isinstance(cases, SearchStrategy) else cases(op)
            prop(op, drawn, name=f"{prefix}_{fn.__name__}", **kw)(check)
        return fn

    return register


@dataclass(frozen=True)
class Signature:
    """How an op is called on one of its cases: what the generic properties (spec/generic.py)
    and the mutation operators (mixology.verify.operators) know of it.

    - ``tensors(case)``: the differentiable tensors the op is called with, in ``call``'s order;
    - ``call(fn, case)``: ``f(*tensors)``, ``fn`` called with them and the case's other
      arguments, in the op's own order;
    - ``grads``: their gradients' names (``"dx"``, ``"dweight"``, ...), or a function of the
      case that gives them (when the tensors depend on the case's configuration);
    - ``upstream(case)``: a float64 upstream gradient of the output;
    - ``inputs``: the op's tensor parameters the mutation operators act on, each with its
      batch dim (None: a parameter the batch shares);
    - ``options``: its other parameters that an implementation could ignore, each with the
      value it would use instead (its default, or a fixed one);
    - ``tails``: the output's dims by name, each with a tile boundary that the kernel tier's
      first case passes under every profile (``(dim, boundary)``);
    - ``accumulates``: whether the reference computes wider than float16/bfloat16 inputs
      (statistics, positions, angles in float32 or float64);
    - ``choices``: the values of its str arguments, and ``fixed``: the arguments its cases do
      not draw, with why (the coverage report, mixology.verify.coverage).
    """

    op: str
    cases: SearchStrategy
    tensors: Callable
    call: Callable
    grads: tuple[str, ...] | Callable
    upstream: Callable
    inputs: dict[str, int | None]
    options: dict[str, object] = field(default_factory=dict)
    tails: dict[str, tuple[int, int]] = field(default_factory=dict)
    accumulates: bool = False  # the reference computes wider than float16/bfloat16 inputs
    # the values of its str arguments (its bools take both; floats and ints several)
    choices: dict[str, tuple] = field(default_factory=dict)
    # arguments the cases do not draw, each with why (tensors in a dict, an implementation's
    # own wiring)
    fixed: dict[str, str] = field(default_factory=dict)

    def grad_names(self, case) -> tuple[str, ...]:
        return tuple(self.grads(case) if callable(self.grads) else self.grads)


SIGNATURES: dict[str, Signature] = {}


def signature(op: str, cases: SearchStrategy, **kw) -> Signature:
    """Register how ``op`` is called on the cases ``cases`` draws (see :class:`Signature`)."""
    sig = SIGNATURES[op] = Signature(op, cases, **kw)
    return sig


def signatures() -> list[Signature]:
    """Every op's signature, in the registry's order of ops."""
    load()
    return [SIGNATURES[o] for o in registry.ops() if o in SIGNATURES]


def properties(op: str | None = None) -> list[Property]:
    """The properties of ``op`` (of every op, in the registry's order of ops), each op's in
    the order its spec file defines them."""
    load()
    return [p for o in ([op] if op else registry.ops()) for (o_, _), p in PROPERTIES.items()
            if o_ == o]


def load() -> None:
    """Import every op family's spec file, spec/<family>.py (each registers its properties and
    its ops' signatures), then the generic properties every signature gets (spec/generic.py)."""
    for name in FAMILIES:
        importlib.import_module(f"{__name__}.{name}")
    importlib.import_module(f"{__name__}.generic").register()
