"""Properties every op has, from its signature (``spec.signature`` in its family's spec file).

- ``reentrant_backward``: a second backward with ``retain_graph=True`` gives the gradients the
  first gave. A backward that overwrites what its forward saved (in place, to save memory)
  cannot run twice: gradcheck's second backward, or any use of ``retain_graph``, then goes
  wrong.
- ``inputs_left_unmodified``: the forward and the backward leave the tensors they are given,
  and the caller's upstream gradient, bit for bit as they were. Some kernels write their
  gradient into the upstream-gradient buffer by default.
- ``every_input_in_every_layout``: every tensor input, parameters included, and the upstream
  gradient in each memory layout (contiguous, transposed, strided, offset, expanded), every
  layout in every example, in turn in every float dtype: a kernel that drops a weight's
  strides is wrong only when the caller passes a transposed or sliced weight.

A failure says which of these happened, where a comparison with the reference would only say
that a gradient is off.
"""

from __future__ import annotations

import dataclasses

import torch
from hypothesis.strategies import SearchStrategy

from mixology import registry
from mixology.spec import SIGNATURES, Property, Signature, prop
from mixology.spec.helpers import bits, leaf
from mixology.spec.numerics import assert_matches_reference, assert_results_match_reference
from mixology.spec.strategies import (
    FLOATS,
    LAYOUTS,
    UPSTREAM_LAYOUTS,
    cast_keeping_layout,
    other_dtypes,
    relayout,
)


def _small(cases: SearchStrategy) -> SearchStrategy:
    """The same cases, small tier only (what is checked is a code path, not the numerics)."""
    return cases.map(lambda case: case)


def _names(sig: Signature, case) -> list[str]:
    return [g[1:] if g.startswith("d") else g for g in sig.grad_names(case)]


def reentrant_backward(sig: Signature, impl, case):
    """A second backward with retain_graph=True gives the gradients the first gave (bit for
    bit, or else both within the tolerance policy): the backward does not overwrite what the
    forward saved."""
    tensors, upstream = sig.tensors(case), sig.upstream(case)
    leaves = [leaf(t) for t in tensors]
    y = sig.call(impl, case)(*leaves)
    g = cast_keeping_layout(upstream, y.dtype)
    first = torch.autograd.grad(y, leaves, g, retain_graph=True, allow_unused=True)
    try:
        second = torch.autograd.grad(y, leaves, g, allow_unused=True)
    except RuntimeError as e:
        raise AssertionError(f"not reentrant: a second backward (retain_graph=True) raised "
                             f"{type(e).__name__}: {e}") from None
    same = [(a is None and b is None) or (a is not None and b is not None
                                          and torch.equal(bits(a), bits(b)))
            for a, b in zip(first, second, strict=True)]
    if all(same):
        return
    reference = sig.call(registry.get(sig.op).fn, case)
    try:  # a nondeterministic reduction may differ in its last bits: both must still be right
        assert_results_match_reference([y.detach(), *second], reference, tensors,
                                       sig.grad_names(case),
                                       upstream=upstream)
    except AssertionError as e:
        differ = [f"{n}: max |second - first| = {(b.double() - a.double()).abs().max():.3e}"
                  if a is not None and b is not None else f"{n}: None in one of them"
                  for n, a, b, s in zip(sig.grad_names(case), first, second, same, strict=True)
                  if not s]
        raise AssertionError("not reentrant: a second backward (retain_graph=True) gives other "
                             f"gradients than the first ({'; '.join(differ)}): the backward "
                             f"changes what the forward saved\n{e}") from None


def inputs_left_unmodified(sig: Signature, impl, case):
    """The forward and the backward leave the tensors they are given, and the upstream
    gradient, bit for bit as they were: nothing is written in place."""
    tensors, names = sig.tensors(case), _names(sig, case)
    before = [bits(t).clone() for t in tensors]
    leaves = [leaf(t) for t in tensors]  # they share the tensors' memory

    def check(when):
        for name, t, b in zip(names, tensors, before, strict=True):
            assert torch.equal(bits(t), b), f"the {when} wrote into {name} in place"

    y = sig.call(impl, case)(*leaves)
    check("forward")
    g = cast_keeping_layout(sig.upstream(case), y.dtype)
    g_before = bits(g).clone()
    y.backward(g)
    check("backward")
    assert torch.equal(bits(g), g_before), ("the backward wrote into the caller's upstream "
                                            "gradient in place")


def every_input_in_every_layout(sig: Signature, impl, case):
    """Every tensor input (parameters too) and the upstream gradient in each memory layout
    (contiguous, transposed, strided, offset, expanded; all tensors in one layout at a time,
    every layout in every example), the layouts in turn in each float dtype (the case's
    first): forward and every gradient within the tolerance policy."""
    reference = registry.get(sig.op).fn
    dtypes = other_dtypes(case.dtype)
    for i, layout in enumerate(LAYOUTS):
        c = dataclasses.replace(case, dtype=dtypes[i % len(dtypes)])
        tensors = [relayout(t, layout) for t in sig.tensors(c)]
        try:
            assert_matches_reference(sig.call(impl, c), sig.call(reference, c), tensors,
                                     sig.grad_names(c), upstream=sig.upstream(c),
                                     upstream_layout=layout)
        except AssertionError as e:
            raise AssertionError(f"every input and the upstream gradient {layout}, "
                                 f"{str(c.dtype).removeprefix('torch.')}: {e}") from None


GENERIC = (reentrant_backward, inputs_left_unmodified, every_input_in_every_layout)
# what a generic property enumerates inside each example (for the coverage report)
COVERS = {every_input_in_every_layout: lambda sig: {
    **{f"layout({name})": LAYOUTS for name in sig.inputs}, "upstream": UPSTREAM_LAYOUTS,
    "dtype (small)": FLOATS}}


def _bound(fn, sig: Signature):
    def check(impl, case):
        fn(sig, impl, case)

    check.__doc__, check.__wrapped__ = fn.__doc__, fn
    return check


def register() -> None:
    """Register the generic properties of every signature not registered yet."""
    for sig in SIGNATURES.values():
        for fn in GENERIC:
            if (sig.op, fn.__name__) in _done:
                continue
            if fn is every_input_in_every_layout and sig.op in NOT_BY_THE_POLICY:
                continue  # blocks: x is their one tensor input, drawn in every layout
            covers = COVERS[fn](sig) if fn in COVERS else None
            prop(sig.op, _small(sig.cases), name=fn.__name__,
                 cost=4 if fn in COVERS else 2, covers=covers)(_bound(fn, sig))
            _done.add((sig.op, fn.__name__))


_done: set[tuple[str, str]] = set()


# --- for an implementation without float64 ---------------------------------------------------

STAND_IN = "gradients_against_float64"
# compared with the reference composition structurally, in float64 (docs/ops.md#blocks)
NOT_BY_THE_POLICY = ("rankmixer_block", "transformer_block")


def compares_with_reference(sig: Signature):
    """``check(impl, case)``: the forward and every gradient of ``impl`` on the signature's
    cases, in the case's dtype, within the tolerance policy against the float64 reference."""
    reference = registry.get(sig.op).fn

    def check(impl, case):
        assert_matches_reference(sig.call(impl, case), sig.call(reference, case),
                                 sig.tensors(case), sig.grad_names(case),
                                 upstream=sig.upstream(case),
                                 upstream_layout=case.upstream_layout)

    return check


def gradients_against_float64(op: str) -> Property | None:
    """What stands in for the float64-only properties (gradcheck, float64 comparisons) of an
    implementation that declares no float64: its forward and every gradient in its own dtypes
    against the float64 reference, by the tolerance policy. None for an op without one."""
    sig = SIGNATURES.get(op)
    if sig is None or op in NOT_BY_THE_POLICY:
        return None
    check = compares_with_reference(sig)
    check.__doc__ = ("Forward and every gradient, in the implementation's own dtypes, within "
                     "the tolerance policy against the float64 reference (in place of the "
                     "float64-only properties).")
    return Property(op, STAND_IN, check, sig.cases, cost=2)
