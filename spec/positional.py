"""Properties of rotary position embedding (``rope(x, interleaved)``)."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from mixology.numerics.tolerance import max_abs_err, one_rounding, verdict
from mixology.ops.positional import reference as ref
from mixology.spec import prop, signature
from mixology.spec.helpers import assert_bitwise_equal, expect_rejected, leaf
from mixology.spec.numerics import assert_matches_reference
from mixology.spec.strategies import (
    ATTN_LAYOUTS,
    FLOATS,
    BadInput,
    Drawn,
    boundary,
    case,
    dtype_of,
    kernel_tier,
    make_4d,
    sized,
)
from mixology.spec.token_mix import MixCase, mix_cases

# --- cases -------------------------------------------------------------------------------

@case
class RopeCase(Drawn):
    """x: (B, H, T, d) with d even, from ``case.x()``; ``case.interleaved`` names the pairing."""

    LAYOUTS = ATTN_LAYOUTS  # of (B, H, T, d) tensors (not a field)

    B: int
    H: int
    T: int
    d: int
    dtype: torch.dtype
    layout: str = "contiguous"
    seed: int = 0
    interleaved: bool = False

    def x(self) -> torch.Tensor:
        return make_4d((self.B, self.H, self.T, self.d), self.dtype, self.layout, self.gen(),
                       self.device)

    def upstream(self) -> torch.Tensor:
        return self.randn(self.B, self.H, self.T, self.d, salt=1)


def rope_cases(*, kernel=True, **kw):
    """In the kernel tier: long sequences (large positions: T up to 4096, B = H = 1) or many
    rows, head dims around tile boundaries (d up to 130)."""
    return sized(_rope_cases(kernel=kernel, **kw), kernel)


@st.composite
def _rope_cases(draw, *, kernel=True, dtypes=FLOATS, layouts=ATTN_LAYOUTS, min_B=0, max_B=2,
                min_T=1, max_T=12, max_half_d=5, kernel_max_T=4096):
    if kernel and kernel_tier():
        long = draw(st.booleans())
        return RopeCase(B=max(min_B, 1), H=1 if long else draw(boundary(2, 17)),
                        T=draw(boundary(max(min_T, 1), kernel_max_T if long else 65)),
                        d=2 * draw(boundary(1, 16 if long else 65)),
                        dtype=draw(dtype_of(dtypes)),
                        layout=draw(st.sampled_from(layouts)),
                        seed=draw(st.integers(0, 2**31 - 1)), interleaved=draw(st.booleans()))
    return RopeCase(B=draw(st.integers(min_B, max_B)), H=draw(st.integers(1, 3)),
                    T=draw(st.integers(min_T, max_T)), d=2 * draw(st.integers(1, max_half_d)),
                    dtype=draw(dtype_of(dtypes)), layout=draw(st.sampled_from(layouts)),
                    seed=draw(st.integers(0, 2**31 - 1)), interleaved=draw(st.booleans()))


@st.composite
def large_position_cases(draw):
    """RoPE at large positions in float16/bfloat16: B = H = 1, T from 1021 to 4096, d <= 16."""
    return RopeCase(B=1, H=1, T=draw(boundary(1021, 4096, capped=False)),
                    d=2 * draw(st.integers(1, 8)),
                    dtype=draw(st.sampled_from((torch.bfloat16, torch.float16))),
                    layout=draw(st.sampled_from(ATTN_LAYOUTS)),
                    seed=draw(st.integers(0, 2**31 - 1)), interleaved=draw(st.booleans()))


@st.composite
def sinusoidal_large_position_cases(draw):
    """The sinusoidal encoding at large positions in float16/bfloat16: B = 1, T from 1021 to
    4096, D <= 16."""
    return MixCase(B=1, T=draw(boundary(1021, 4096, capped=False)), D=2 * draw(st.integers(1, 8)),
                   num_heads=1, dtype=draw(st.sampled_from((torch.bfloat16, torch.float16))),
                   layout=draw(st.sampled_from(("contiguous", "transposed", "strided"))),
                   seed=draw(st.integers(0, 2**31 - 1)))


def bad_rope_inputs():
    x = torch.randn(1, 2, 3, 4)
    return st.sampled_from([
        BadInput("x has ndim 3", (x[0], False), ValueError, ("x", "(B, H, T, d)")),
        BadInput("d is odd", (x[..., :3], False), ValueError, ("x", "d even")),
        BadInput("x is int64", (x.long(), False), TypeError, ("x",)),
        BadInput("interleaved is an int", (x, 1), TypeError, ("interleaved",)),
    ])


@case
class ScoresCase(Drawn):
    """Attention scores (B, H, T, T) from ``case.scores()``, and the ALiBi ``causal`` flag."""

    LAYOUTS = ATTN_LAYOUTS  # of (B, H, T, d) tensors (not a field)

    B: int
    H: int
    T: int
    dtype: torch.dtype
    layout: str = "contiguous"
    seed: int = 0
    causal: bool = False

    def scores(self) -> torch.Tensor:
        return make_4d((self.B, self.H, self.T, self.T), self.dtype, self.layout, self.gen(),
                       self.device)

    def upstream(self) -> torch.Tensor:
        return self.randn(self.B, self.H, self.T, self.T, salt=1)


def scores_cases(*, kernel=True, **kw):
    """In the kernel tier: T up to 4096 around tile boundaries (B = 1; H <= 3 up to T = 1025)."""
    return sized(_scores_cases(kernel=kernel, **kw), kernel)


@st.composite
def _scores_cases(draw, *, kernel=True, dtypes=FLOATS, layouts=ATTN_LAYOUTS, min_B=0, max_B=2,
                  max_H=9, min_T=1, max_T=10, kernel_max_T=4096):
    if kernel and kernel_tier():
        T = draw(boundary(max(min_T, 1), kernel_max_T))
        return ScoresCase(B=max(min_B, 1), H=draw(st.integers(1, min(max_H, 3 if T <= 1025 else 1))),
                          T=T, dtype=draw(dtype_of(dtypes)),
                          layout=draw(st.sampled_from(layouts)),
                          seed=draw(st.integers(0, 2**31 - 1)), causal=draw(st.booleans()))
    return ScoresCase(B=draw(st.integers(min_B, max_B)), H=draw(st.integers(1, max_H)),
                      T=draw(st.integers(min_T, max_T)), dtype=draw(dtype_of(dtypes)),
                      layout=draw(st.sampled_from(layouts)),
                      seed=draw(st.integers(0, 2**31 - 1)), causal=draw(st.booleans()))


def bad_alibi_inputs():
    s = torch.randn(1, 2, 3, 3)
    return st.sampled_from([
        BadInput("scores has ndim 3", (s[0], False), ValueError, ("scores", "(B, H, T, T)")),
        BadInput("scores not square", (s[..., :2], False), ValueError, ("scores", "(B, H, T, T)")),
        BadInput("scores is int64", (s.long(), False), TypeError, ("scores",)),
        BadInput("causal is None", (s, None), TypeError, ("causal",)),
    ])


def bad_sinusoidal_inputs():
    x = torch.randn(2, 3, 4)
    return st.sampled_from([
        BadInput("x has ndim 4", (x[None],), ValueError, ("x", "(B, T, D)")),
        BadInput("D is odd", (x[..., :3],), ValueError, ("x", "D even")),
        BadInput("x is bool", (x > 0,), TypeError, ("x",)),
        BadInput("x is a list", ([1.0, 2.0],), TypeError, ("x",)),
    ])


# --- properties --------------------------------------------------------------------------
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
                             upstream=case.upstream(), upstream_layout=case.upstream_layout)


@prop(ROPE, rope_cases(dtypes=(torch.float64,), min_B=1, max_B=1, max_T=5, max_half_d=3, kernel=False,
                       layouts=tuple(lay for lay in ATTN_LAYOUTS if lay != "expanded")), cost=3)
def rope_gradcheck_float64(impl, case):
    """torch.autograd.gradcheck in float64."""
    torch.autograd.gradcheck(_fn(impl, case), (leaf(case.x()),))


@prop(ROPE, rope_cases())
def rope_position_zero_is_identity(impl, case):
    """Position 0 is rotated by angle 0: y[..., 0, :] == x[..., 0, :] bit for bit."""
    x = case.x()
    assert_bitwise_equal(impl(x, case.interleaved)[:, :, 0], x[:, :, 0], "position 0")


@prop(ROPE, large_position_cases(), cost=2, kind="numerics")
def rope_large_positions(impl, case):
    """Positions 1021 to 4096 in float16/bfloat16 within the tolerance policy: the angle t·θ is
    computed in float64 (float32 would do) and only cos/sin are rounded; an angle computed in
    the input dtype is off by up to t·eps (16 radians at t = 4096 in bfloat16)."""
    assert_matches_reference(_fn(impl, case), _fn(ref.rope, case), (case.x(),), ("dx",),
                             upstream=case.upstream())


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


@prop(ROPE, bad_rope_inputs(), kind="contract")
def rope_bad_input_raises(impl, case):
    """Wrong ndim, odd d, integer dtype, a non-bool flag: ValueError/TypeError naming it."""
    expect_rejected(impl, case, ref.rope)


# --- ALiBi: impl(scores, causal) ---------------------------------------------------------

ALIBI = "alibi"


def _alibi(impl, case):
    return lambda s: impl(s, case.causal)


@prop(ALIBI, scores_cases())
def alibi_shape_dtype_device(impl, case):
    """Output has the scores' shape, dtype and device."""
    s = case.scores()
    y = impl(s, case.causal)
    assert (y.shape, y.dtype, y.device) == (s.shape, s.dtype, s.device), (
        f"got {tuple(y.shape)} {y.dtype}, expected {tuple(s.shape)} {s.dtype}")


@prop(ALIBI, scores_cases(), cost=2)
def alibi_matches_reference(impl, case):
    """Forward and the scores' gradient within the tolerance policy (all dtypes, layouts)."""
    assert_matches_reference(_alibi(impl, case), _alibi(ref.alibi, case), (case.scores(),),
                             ("dscores",), upstream=case.upstream(),
                             upstream_layout=case.upstream_layout)


@prop(ALIBI, scores_cases(dtypes=(torch.float64,), min_B=1, max_B=1, max_H=3, max_T=4, kernel=False,
                          layouts=("contiguous", "strided")), cost=3)
def alibi_gradcheck_float64(impl, case):
    """torch.autograd.gradcheck in float64."""
    torch.autograd.gradcheck(_alibi(impl, case), (leaf(case.scores()),))


@prop(ALIBI, scores_cases(dtypes=(torch.float64,), min_B=1, min_T=2))
def alibi_linear_in_distance(impl, case):
    """On zero scores (float64) the bias is -m_h·(t - s) (|t - s| when not causal): linear in
    the distance, bias[h, t, s] = (t - s)·bias[h, 1, 0] within the tolerance policy applied to
    the identity (2x the reference's own distance from it, plus one rounding of each product:
    an implementation may form the product in another order), and exactly 0 on the
    diagonal."""
    def distance_from_linear(fn):
        zeros = torch.zeros(case.B, case.H, case.T, case.T, dtype=torch.float64,
                            device=case.device)
        bias = fn(zeros, case.causal)[0]
        pos = torch.arange(case.T, dtype=torch.float64, device=case.device)
        dist = pos[:, None] - pos[None, :]
        dist = dist if case.causal else dist.abs()
        want = -bias[:, 1, 0][:, None, None] * dist  # m_h, from the first off-diagonal
        return bias, want

    bias, want = distance_from_linear(impl)
    diagonal = bias.diagonal(dim1=-2, dim2=-1)
    assert torch.equal(diagonal, torch.zeros_like(diagonal)), "bias is not 0 on the diagonal"
    ref_bias, ref_want = distance_from_linear(ref.alibi)
    v = verdict("bias vs -m_h·distance", bias, ref_bias, want, torch.float64,
                ref_err_override=max_abs_err(ref_bias, ref_want),
                sigma=one_rounding(want, torch.float64))
    assert v.ok, str(v)


@prop(ALIBI, scores_cases(dtypes=(torch.float64,), min_B=1, min_T=2, max_H=16))
def alibi_standard_slopes(impl, case):
    """The head slopes m_h are the standard ones (Press et al.): for H a power of two,
    m_h = 2^(-8(h+1)/H); otherwise the n = 2^⌊log2 H⌋ slopes of H = n, then every other slope
    of H = 2n, 2^(-4(2h+1)/n). Compared to 1 ulp (pow vs exp2 may round apart)."""
    zeros = torch.zeros(1, case.H, case.T, case.T, dtype=torch.float64, device=case.device)
    slopes = -impl(zeros, case.causal)[0, :, 1, 0].cpu()
    n = 1 << (case.H.bit_length() - 1)
    want = [2.0 ** (-8 * (h + 1) / n) for h in range(n)]
    want += [2.0 ** (-4 * (2 * h + 1) / n) for h in range(case.H - n)]
    want = torch.tensor(want, dtype=torch.float64)
    assert ((slopes - want).abs() <= EPS64 * want).all(), f"slopes {slopes.tolist()} != {want.tolist()}"


@prop(ALIBI, scores_cases(dtypes=(torch.float64, torch.float32), min_B=1))
def alibi_causal_agrees_below_diagonal(impl, case):
    """Causal and bidirectional ALiBi agree exactly where causal attention looks (s <= t),
    and the bidirectional bias is symmetric: bias[t, s] == bias[s, t]."""
    s = case.scores()
    zeros = torch.zeros_like(s)
    tril = torch.ones(case.T, case.T, dtype=torch.bool, device=case.device).tril()
    a, b = impl(s, True), impl(s, False)
    assert_bitwise_equal(a[..., tril], b[..., tril], "causal vs bidirectional at s <= t")
    bias = impl(zeros, False)
    assert_bitwise_equal(bias, bias.transpose(-1, -2), "bidirectional bias vs its transpose")


@prop(ALIBI, bad_alibi_inputs(), kind="contract")
def alibi_bad_input_raises(impl, case):
    """Wrong ndim, non-square scores, integer dtype, a non-bool flag: ValueError/TypeError."""
    expect_rejected(impl, case, ref.alibi)


# --- sinusoidal: impl(x) -----------------------------------------------------------------

SIN = "sinusoidal"
SIN_CASES = dict(num_heads=2, kernel_max_T=4096)  # D = 2·d: even; T to 4096 in the kernel tier


@prop(SIN, mix_cases(**SIN_CASES))
def sinusoidal_shape_dtype_device(impl, case):
    """Output has x's shape, dtype and device."""
    x = case.x()
    y = impl(x)
    assert (y.shape, y.dtype, y.device) == (x.shape, x.dtype, x.device), (
        f"got {tuple(y.shape)} {y.dtype}, expected {tuple(x.shape)} {x.dtype}")


@prop(SIN, mix_cases(**SIN_CASES), cost=2)
def sinusoidal_matches_reference(impl, case):
    """Forward and the gradient of x within the tolerance policy (all dtypes, layouts)."""
    assert_matches_reference(impl, ref.sinusoidal, (case.x(),), ("dx",),
                             upstream=case.randn(case.B, case.T, case.D, salt=1),
                             upstream_layout=case.upstream_layout)


@prop(SIN, sinusoidal_large_position_cases(), cost=2, kind="numerics")
def sinusoidal_large_positions(impl, case):
    """Positions 1021 to 4096 in float16/bfloat16 within the tolerance policy: the angles t·ω
    are computed wider than the input and only sin/cos are rounded; an angle computed in the
    input dtype is off by up to t·eps (16 radians at t = 4096 in bfloat16)."""
    assert_matches_reference(impl, ref.sinusoidal, (case.x(),), ("dx",),
                             upstream=case.randn(case.B, case.T, case.D, salt=1))


@prop(SIN, mix_cases(dtypes=(torch.float64,), min_B=1, max_B=1, max_T=4, max_head_dim=2, kernel=False,
                     layouts=("contiguous", "transposed"), **SIN_CASES), cost=3)
def sinusoidal_gradcheck_float64(impl, case):
    """torch.autograd.gradcheck in float64."""
    torch.autograd.gradcheck(impl, (leaf(case.x()),))


def _encoding(impl, case, dtype=torch.float64):
    """PE itself: impl on zeros, (T, D)."""
    return impl(torch.zeros(1, case.T, case.D, dtype=dtype, device=case.device))[0]


@prop(SIN, mix_cases(dtypes=(torch.float64,), **SIN_CASES), exact=True)
def sinusoidal_position_zero(impl, case):
    """PE[0] is (sin 0, cos 0, ...) = (0, 1, 0, 1, ...) exactly: sin on even features,
    cos on odd."""
    pe0 = _encoding(impl, case)[0]
    want = torch.tensor([0.0, 1.0], dtype=torch.float64, device=case.device).repeat(case.D // 2)
    assert_bitwise_equal(pe0, want, "PE[0]")


@prop(SIN, mix_cases(dtypes=(torch.float64,), min_T=2, max_T=40, **SIN_CASES))
def sinusoidal_shift_is_a_rotation(impl, case):
    """PE[t + k] is PE[t] rotated pair by pair by the angle k·ω_f (ω_f = 10000^(-2f/D)): a
    linear map that depends on the offset k only. Float64, tolerance 8·t·eps (the angle's
    rounding grows with t)."""
    pe = _encoding(impl, case)
    T, D = case.T, case.D
    w = 10000.0 ** (-torch.arange(0, D, 2, dtype=torch.float64, device=case.device) / D)
    s, c = pe[:, 0::2], pe[:, 1::2]  # sin(tω), cos(tω)
    for k in (1, T - 1):
        ck, sk = (k * w).cos(), (k * w).sin()
        s_next, c_next = s[:-k] * ck + c[:-k] * sk, c[:-k] * ck - s[:-k] * sk
        err = torch.maximum((s_next - s[k:]).abs(), (c_next - c[k:]).abs()).max()
        assert err <= 8 * T * EPS64, f"PE[t + {k}] is not PE[t] rotated by {k}·ω: {err:.3e}"


@prop(SIN, mix_cases(dtypes=(torch.float64, torch.float32), min_T=1, **SIN_CASES))
def sinusoidal_pairs_on_unit_circle(impl, case):
    """Each (sin, cos) pair of PE has norm 1 (float64/float32: within 4 eps)."""
    pe = _encoding(impl, case, case.dtype).double()
    norms = pe[:, 0::2] ** 2 + pe[:, 1::2] ** 2
    eps = torch.finfo(case.dtype).eps
    assert ((norms - 1).abs() <= 4 * eps).all(), f"max |norm - 1| {(norms - 1).abs().max():.3e}"


@prop(SIN, bad_sinusoidal_inputs(), kind="contract")
def sinusoidal_bad_input_raises(impl, case):
    """Wrong ndim, odd D, non-float dtype, a non-tensor: ValueError/TypeError naming x."""
    expect_rejected(impl, case, ref.sinusoidal)

# --- signatures: how the generic properties and the mutation operators call the ops ---

signature(ROPE, rope_cases(), tensors=lambda c: (c.x(),),
          call=lambda fn, c: lambda x: fn(x, c.interleaved), grads=("dx",),
          upstream=lambda c: c.upstream(), inputs={"x": 0}, options={"interleaved": False},
          tails={"T": (2, 64)}, accumulates=True)
signature(ALIBI, scores_cases(), tensors=lambda c: (c.scores(),),
          call=lambda fn, c: lambda s: fn(s, c.causal), grads=("dscores",),
          upstream=lambda c: c.upstream(), inputs={"scores": 0}, options={"causal": False},
          tails={"queries": (2, 1024), "keys": (3, 1024)})
signature(SIN, mix_cases(**SIN_CASES), tensors=lambda c: (c.x(),), call=lambda fn, c: fn,
          grads=("dx",), upstream=lambda c: c.randn(c.B, c.T, c.D, salt=1), inputs={"x": 0},
          tails={"D": (2, 32)}, accumulates=True)
