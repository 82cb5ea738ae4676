"""Forward and gradients of an implementation against the reference, by the tolerance policy."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from mixology.tolerance import assert_close, float64_ref_err, scale_of
from spec.helpers import leaf


def forward_backward(fn: Callable, tensors: Sequence[torch.Tensor], upstream: torch.Tensor | None):
    """``[y, grad of each tensor]`` (only ``[y]`` when ``upstream`` is None), on fresh leaves."""
    leaves = [leaf(t) for t in tensors]
    y = fn(*leaves)
    if upstream is None:
        return [y.detach()]
    y.backward(upstream.to(y.dtype))
    return [y.detach()] + [t.grad for t in leaves]


def assert_matches_reference(impl: Callable, ref: Callable, tensors: Sequence[torch.Tensor],
                             names: Sequence[str], *, upstream: torch.Tensor | None,
                             term_scaled: bool | Callable = False) -> None:
    """``impl(*tensors)`` (and its gradients, given an upstream gradient in float64) within the
    tolerance policy of ``ref`` run in the same dtype, against ``ref`` in float64.

    ``term_scaled``: the floor is set at the magnitude of the summed terms, see
    mixology.tolerance: True takes ``ref`` in float64 on |tensors| and |upstream| (the
    componentwise bound of a polynomial with positive coefficients); a callable
    ``terms(tensors64, upstream) -> [y, *grads]`` gives those magnitudes itself."""
    dtype = tensors[0].dtype
    got = forward_backward(impl, tensors, upstream)
    low = forward_backward(ref, tensors, upstream)
    f64 = forward_backward(ref, [t.double() for t in tensors], upstream)
    names = ["y", *names][: len(got)]
    for n, t in zip(names, got, strict=True):
        assert t is not None, f"{n} is None: no gradient reached it"
    ref_err_f64 = None
    if dtype == torch.float64:  # nothing more precise to measure against: estimate from float32
        f32 = forward_backward(ref, [t.float() for t in tensors], upstream)
        ref_err_f64 = {n: float64_ref_err(a, t) for n, a, t in zip(names, f32, f64, strict=True)}
    term_scales = None
    if callable(term_scaled):
        mags = term_scaled([t.double() for t in tensors], upstream)
    elif term_scaled:
        mags = forward_backward(ref, [t.double().abs() for t in tensors],
                                None if upstream is None else upstream.abs())
    if term_scaled:
        term_scales = {n: scale_of(m) for n, m in zip(names, mags, strict=True)}
    assert_close({n: (a, r, t) for n, a, r, t in zip(names, got, low, f64, strict=True)}, dtype,
                 ref_err_f64, term_scales)
