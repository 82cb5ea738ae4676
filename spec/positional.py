"""Properties of rotary position embedding (``rope(x, interleaved)``)."""

from __future__ import annotations

import torch

from mixology.ops.positional import reference as ref
from spec import prop
from spec.helpers import assert_bitwise_equal, expect_rejected, leaf
from spec.numerics import assert_matches_reference
from spec.strategies import ATTN_LAYOUTS, bad_rope_inputs, rope_cases

ROPE = "rope"
EPS64 = torch.finfo(torch.float64).eps


def _fn(impl, case):
    return lambda x: impl(x, case.interleaved)


@prop(ROPE, rope_cases())
def rope_shape_dtype_device(impl, case):
    """Output has x's shape, dtype and device."""
    x = case.x()
    y = impl(x, case.interleaved)
    assert (y.shape, y.dtype, y.device) == (x.shape, x.dtype, x.device), (
        f"got {tuple(y.shape)} {y.dtype}, expected {tuple(x.shape)} {x.dtype}")


@prop(ROPE, rope_cases())
def rope_matches_reference(impl, case):
    """Forward within the tolerance policy, both conventions, all dtypes and layouts."""
    assert_matches_reference(_fn(impl, case), _fn(ref.rope, case), (case.x(),), ("dx",),
                             upstream=None)


@prop(ROPE, rope_cases(), cost=2)
def rope_gradients_match_reference(impl, case):
    """The gradient of x within the tolerance policy (it is the inverse rotation)."""
    assert_matches_reference(_fn(impl, case), _fn(ref.rope, case), (case.x(),), ("dx",),
                             upstream=case.upstream())


@prop(ROPE, rope_cases(dtypes=(torch.float64,), min_B=1, max_B=1, max_T=5, max_half_d=3,
                       layouts=tuple(lay for lay in ATTN_LAYOUTS if lay != "expanded")), cost=3)
def rope_gradcheck_float64(impl, case):
    """torch.autograd.gradcheck in float64."""
    torch.autograd.gradcheck(_fn(impl, case), (leaf(case.x()),))


@prop(ROPE, rope_cases())
def rope_position_zero_is_identity(impl, case):
    """Position 0 is rotated by angle 0: y[..., 0, :] == x[..., 0, :] bit for bit."""
    x = case.x()
    assert_bitwise_equal(impl(x, case.interleaved)[:, :, 0], x[:, :, 0], "position 0")


@prop(ROPE, rope_cases(dtypes=(torch.float64,)))
def rope_preserves_norms(impl, case):
    """A rotation preserves each token vector's norm (float64: within 8 ulps, relative)."""
    x = case.x()
    ny, nx = impl(x, case.interleaved).norm(dim=-1), x.norm(dim=-1)
    assert ((ny - nx).abs() <= 8 * EPS64 * nx).all(), f"max |Δnorm| {(ny - nx).abs().max():.3e}"


@prop(ROPE, rope_cases(dtypes=(torch.float64,), min_T=2, min_B=1))
def rope_relative_position(impl, case):
    """With the same q and k at every position, q_m·k_n after rotation depends only on m - n.
    Float64; the angle t·θ carries a rounding error of about t·eps, hence a tolerance of
    4·T·eps·|q||k|."""
    x = case.x()
    q = x[:, :, :1].expand_as(x).contiguous()
    k = x[:, :, -1:].expand_as(x).contiguous()
    rq, rk = impl(q, case.interleaved), impl(k, case.interleaved)
    dots = torch.einsum("bhmd,bhnd->bhmn", rq, rk)
    tol = 4 * case.T * EPS64 * q.norm(dim=-1)[..., 0] * k.norm(dim=-1)[..., 0]
    shifted = (dots[:, :, 1:, 1:] - dots[:, :, :-1, :-1]).abs().amax(dim=(-1, -2))
    assert (shifted <= tol).all(), f"q_m·k_n changes along a diagonal by {shifted.max():.3e}"


@prop(ROPE, rope_cases())
def rope_conventions_are_one_rotation(impl, case):
    """interleaved = rotate-half conjugated by the feature permutation that de-interleaves the
    pairs: P⁻¹ rope(P x, False) == rope(x, True), within the tolerance policy (not bitwise: a
    compiler may contract x1·cos - x2·sin into an FMA differently on the two paths)."""
    d = case.d
    perm = torch.cat([torch.arange(0, d, 2), torch.arange(1, d, 2)]).to(case.device)

    def via_half(x):
        return impl(x[..., perm], False)[..., perm.argsort()]

    assert_matches_reference(via_half, lambda x: ref.rope(x, True), (case.x(),), ("dx",),
                             upstream=None)


@prop(ROPE, bad_rope_inputs())
def rope_bad_input_raises(impl, case):
    """Wrong ndim, odd d, integer dtype, a non-bool flag: ValueError/TypeError naming it."""
    expect_rejected(impl, case, ref.rope)
