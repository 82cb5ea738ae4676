"""Forward and gradients of an implementation against the reference, by the tolerance policy."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from mixology.numerics.rounding import rounding_error
from mixology.numerics.tolerance import assert_close, float64_ref_err
from mixology.spec.helpers import leaf
from mixology.spec.strategies import cast_keeping_layout, relayout


def forward_backward(fn: Callable, tensors: Sequence[torch.Tensor], upstream: torch.Tensor | None):
    """``[y, grad of each tensor]`` (only ``[y]`` when ``upstream`` is None), on fresh leaves;
    the upstream gradient reaches the backward in its own memory layout, in y's dtype."""
    leaves = [leaf(t) for t in tensors]
    y = fn(*leaves)
    if upstream is None:
        return [y.detach()]
    y.backward(cast_keeping_layout(upstream, y.dtype))
    return [y.detach()] + [t.grad for t in leaves]


def assert_matches_reference(impl: Callable, ref: Callable, tensors: Sequence[torch.Tensor],
                             names: Sequence[str], *, upstream: torch.Tensor | None,
                             upstream_layout: str = "contiguous") -> None:
    """``impl(*tensors)`` (and its gradients, given an upstream gradient in float64, which the
    backward gets in ``upstream_layout``) within the tolerance policy of ``ref`` run in the same
    dtype, against ``ref`` in float64; the floor is the reference's own rounding-error scale in
    that dtype (mixology.numerics.rounding)."""
    if upstream is not None:
        upstream = relayout(upstream, upstream_layout)
    assert_results_match_reference(forward_backward(impl, tensors, upstream), ref, tensors,
                                   names, upstream=upstream)


def assert_results_match_reference(got: Sequence[torch.Tensor | None], ref: Callable,
                                   tensors: Sequence[torch.Tensor], names: Sequence[str], *,
                                   upstream: torch.Tensor | None) -> None:
    """``got`` = [y, gradient of each tensor] (as :func:`forward_backward` returns them)
    within the tolerance policy of ``ref`` on the same tensors and upstream gradient."""
    dtype = tensors[0].dtype
    low = forward_backward(ref, tensors, upstream)
    f64 = forward_backward(ref, [t.double() for t in tensors], upstream)
    names = ["y", *names][: len(got)]
    for n, t in zip(names, got, strict=True):
        assert t is not None, f"{n} is None: no gradient reached it"
    ref_err_f64 = None
    if dtype == torch.float64:  # nothing more precise to measure against: estimate from float32
        f32 = forward_backward(ref, [t.float() for t in tensors], upstream)
        ref_err_f64 = {n: float64_ref_err(a, t) for n, a, t in zip(names, f32, f64, strict=True)}
    sigma = rounding_error(ref, tensors, upstream)
    sigmas = {n: float(s.max()) if s.numel() else 0.0 for n, s in zip(names, sigma, strict=True)}
    assert_close({n: (a, r, t) for n, a, r, t in zip(names, got, low, f64, strict=True)}, dtype,
                 ref_err_f64, sigmas)
