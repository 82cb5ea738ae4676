"""The registry of ops, their implementations and their mutants (it imports nothing of
mixology's: each op family registers itself here when ``mixology.ops`` imports it).

An *op* is a mathematical function (``token_mix``, ``token_mixer``, ...) with one
``reference`` implementation, written in einops so it reads like the paper, and any
number of optimized implementations that must compute the same function. A *mutant* is a
plausible bug the spec must reject.

Implementations are registered lazily as ``"module:function"`` strings so that importing
:mod:`mixology` never imports Triton or triggers ``torch.compile``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import types
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

REFERENCE = "reference"


@dataclass(frozen=True)
class Op:
    name: str
    signature: str  # human-readable call signature shared by every implementation
    doc: str
    impls: dict[str, Impl] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Impl:
    op: str
    name: str
    target: str | Callable  # "package.module:function" or a callable
    devices: tuple[str, ...] = ("cpu", "cuda")
    needs: str | None = None  # an optional import the implementation depends on, e.g. "triton"
    doc: str = ""
    # relative cost per example: the profile's max_examples is divided by it (torch.compile
    # implementations compile a graph for almost every drawn case: dtype, layout and flags
    # are recompile keys)
    cost: int = 1

    @property
    def fn(self) -> Callable:
        if callable(self.target):
            return self.target
        return load_callable(self.target)

    def available(self, device: str) -> bool:
        """Whether this implementation can run on ``device`` in this process."""
        if device not in self.devices:
            return False
        if device == "cuda" and not torch.cuda.is_available():
            return False
        if self.needs == "triton":
            if importlib.util.find_spec("triton") is None:
                return False
            # On CPU, Triton kernels only run through the interpreter.
            if device == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
                return False
        return True


OPS: dict[str, Op] = {}


def register_op(name: str, signature: str, doc: str = "") -> Op:
    op = OPS.setdefault(name, Op(name, signature, doc))
    return op


# torch.compile implementations: a quarter of the profile's examples (each compiles a graph)
COMPILE_COST = 4


def register(op: str, name: str, target: str | Callable, **kw) -> Impl:
    if op not in OPS:
        raise KeyError(f"unknown op {op!r}; register it first with register_op")
    impl = Impl(op, name, target, **kw)
    OPS[op].impls[name] = impl
    return impl


def load_callable(spec: str) -> Callable:
    """Import ``"package.module:function"`` and return the function."""
    if ":" not in spec:
        raise ValueError(f"expected 'package.module:function', got {spec!r}")
    module_name, _, attr = spec.partition(":")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{spec!r} is not callable")
    return obj


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def ops() -> list[str]:
    return list(OPS)


def get(op: str, impl: str = REFERENCE) -> Impl:
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; known ops: {sorted(OPS)}")
    impls = OPS[op].impls
    if impl not in impls:
        raise ValueError(f"unknown implementation {impl!r} of {op!r}; known: {sorted(impls)}")
    return impls[impl]


def implementations(op: str, device: str | None = None) -> list[str]:
    """Names of the implementations of ``op`` that run on ``device`` (default: this machine's)."""
    device = device or default_device()
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}; known ops: {sorted(OPS)}")
    return [name for name, impl in OPS[op].impls.items() if impl.available(device)]


# Mutants: plausible buggy implementations the spec must reject (see tests/spec/test_mutants.py).

@dataclass(frozen=True)
class Mutant:
    op: str
    name: str
    fn: Callable
    doc: str
    needs: str | None = None
    operator: str | None = None  # the mutation operator that generated it (None: hand-written)


MUTANTS: dict[str, dict[str, Mutant]] = {}


def mutant(op: str, *, needs: str | None = None):
    """Register the decorated function as a mutant of ``op``; its docstring says the bug."""

    def register_mutant(fn):
        doc = (fn.__doc__ or "").strip().splitlines()[0]
        MUTANTS.setdefault(op, {})[fn.__name__] = Mutant(op, fn.__name__, fn, doc, needs)
        return fn

    return register_mutant


def mutants(op: str | None = None, device: str | None = None) -> list[Mutant]:
    """The mutants registered so far (of ``op``, runnable on ``device``); ``mixology.ops.mutants``
    imports every family's first."""
    device = device or default_device()
    out = []
    for o, by_name in MUTANTS.items():
        if op is not None and o != op:
            continue
        for m in by_name.values():
            if Impl(o, m.name, m.fn, needs=m.needs).available(device):
                out.append(m)
    return out


@contextlib.contextmanager
def patched(module: types.ModuleType, **attrs):
    """Replace module attributes for the duration of a call: the seam most mutants use."""
    saved = {name: getattr(module, name) for name in attrs}
    for name, value in attrs.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)
