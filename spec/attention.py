"""Properties of softmax attention and quadratic attention.

``impl(q, k, v, causal, alibi)`` (softmax) and ``impl(q, k, v)`` (quadratic, always causal).
Numerical comparisons follow the tolerance policy; causality is checked exactly.
"""

from __future__ import annotations

import dataclasses

import torch
from hypothesis import strategies as st

from mixology.ops.attention import reference as ref
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
    optional,
    sized,
)

# --- cases -------------------------------------------------------------------------------

@case
class AttnCase(Drawn):
    """q, k: (B, H, T, d) and v: (B, H, T, dv) from ``case.qkv()``; flags for softmax attention."""

    LAYOUTS = ATTN_LAYOUTS  # of (B, H, T, d) tensors (not a field)

    B: int
    H: int
    T: int
    d: int
    dv: int
    dtype: torch.dtype
    layout: str = "contiguous"
    seed: int = 0
    causal: bool = False
    alibi: bool = False
    scale: float = optional(1.0)  # of q and k: scores grow as scale² (past 100, past the float16 range)

    def qkv(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g = self.gen()
        qk = (self.B, self.H, self.T, self.d)
        return (make_4d(qk, self.dtype, self.layout, g, self.device, self.scale),
                make_4d(qk, self.dtype, self.layout, g, self.device, self.scale),
                make_4d((self.B, self.H, self.T, self.dv), self.dtype, self.layout, g,
                        self.device))

    def upstream(self) -> torch.Tensor:
        return self.randn(self.B, self.H, self.T, self.dv, salt=1)


def attn_cases(*, kernel=True, **kw):
    """Shapes, dtypes, layouts and (for softmax attention) the causal/ALiBi flags; in the
    kernel tier long sequences (B = H = 1, d <= 8, T up to ``kernel_max_T``), wide heads (d up
    to 129) or many heads (B·H up to 15), with q and k scaled by ``scales`` (float32/float64 only past 10)."""
    return sized(_attn_cases(kernel=kernel, **kw), kernel)


@st.composite
def _attn_cases(draw, *, kernel=True, dtypes=FLOATS, layouts=ATTN_LAYOUTS, min_B=0, max_B=2,
                min_T=1, max_T=12, max_H=3, min_d=1, max_d=6, causal=None, alibi=None,
                kernel_max_T=4096, scales=(1.0, 1.0, 10.0, 300.0)):
    if kernel and kernel_tier():
        dtype = draw(dtype_of(dtypes))
        regime = draw(st.sampled_from(("long", "wide", "many")))
        T_cap = {"long": kernel_max_T, "wide": min(kernel_max_T, 64)}.get(regime, 33)
        B, H = {"long": (1, 1), "wide": (1, draw(st.integers(1, 2)))}.get(
            regime, (draw(st.integers(max(min_B, 2), 3)), draw(boundary(2, 5))))
        d_cap = 129 if regime == "wide" else 8
        scale = draw(st.sampled_from([c for c in scales
                                      if c <= 10 or dtype in (torch.float32, torch.float64)]))
        return AttnCase(
            B=max(B, min_B), H=H, T=draw(boundary(max(min_T, 1), T_cap)),
            d=draw(boundary(min_d, max(min_d, d_cap))), dv=draw(boundary(1, d_cap)),
            dtype=dtype, layout=draw(st.sampled_from(layouts)),
            seed=draw(st.integers(0, 2**31 - 1)),
            causal=draw(st.booleans()) if causal is None else causal,
            alibi=draw(st.booleans()) if alibi is None else alibi, scale=scale)
    return AttnCase(
        B=draw(st.integers(min_B, max_B)), H=draw(st.integers(1, max_H)),
        T=draw(st.integers(min_T, max_T)), d=draw(st.integers(min_d, max_d)),
        dv=draw(st.integers(1, max_d)), dtype=draw(dtype_of(dtypes)),
        layout=draw(st.sampled_from(layouts)), seed=draw(st.integers(0, 2**31 - 1)),
        causal=draw(st.booleans()) if causal is None else causal,
        alibi=draw(st.booleans()) if alibi is None else alibi)


@st.composite
def long_prefix_cases(draw):
    """Quadratic attention over a long prefix in float16/bfloat16: B = H = 1, T from 1021 to
    the profile's cap (1025 under ci, 4096 under dev: the interpreted kernels' cost grows
    with T, the reference's with T²), d and d_v up to 4, in every tier: long is the point."""
    return AttnCase(B=1, H=1, T=draw(boundary(1021, 4096)),
                    d=draw(st.sampled_from((4, 1, 2, 3))),  # the first example: the largest
                    dv=draw(st.sampled_from((4, 1, 2, 3))),
                    dtype=draw(st.sampled_from((torch.bfloat16, torch.float16))),
                    seed=draw(st.integers(0, 2**31 - 1)), causal=True)


def attn_gradcheck_cases(**kw):
    layouts = tuple(lay for lay in ATTN_LAYOUTS if lay != "expanded")
    return attn_cases(dtypes=(torch.float64,), layouts=layouts, min_B=1, max_B=1, max_T=6,
                      max_H=2, max_d=3, kernel=False, **kw)


def bad_attention_inputs(with_flags: bool):
    """Calls of ``fn(q, k, v[, causal, alibi])`` that must raise TypeError/ValueError."""
    q = torch.randn(1, 2, 5, 4)
    flags = (False, False) if with_flags else ()
    cases = [
        BadInput("q has ndim 3", (q[0], q[0], q[0], *flags), ValueError, ("q", "(B, H, T, d)")),
        BadInput("k has another T", (q, q[:, :, :3], q, *flags), ValueError, ("k",)),
        BadInput("k has another d", (q, q[..., :3], q, *flags), ValueError, ("k",)),
        BadInput("v has another T", (q, q, q[:, :, :4], *flags), ValueError, ("v",)),
        BadInput("q is int64", (q.long(), q, q, *flags), TypeError, ("q",)),
        BadInput("v is float64", (q, q, q.double(), *flags), TypeError, ("v",)),
        BadInput("k is a list", (q, [1.0], q, *flags), TypeError, ("k",)),
    ]
    if with_flags:
        cases += [BadInput("causal is an int", (q, q, q, 1, False), TypeError, ("causal",)),
                  BadInput("alibi is None", (q, q, q, False, None), TypeError, ("alibi",))]
    return st.sampled_from(cases)


# --- properties --------------------------------------------------------------------------
SOFTMAX, QUAD = "softmax_attention", "quadratic_attention"


def _softmax(impl, case):
    return lambda q, k, v: impl(q, k, v, case.causal, case.alibi)


def _softmax_ref(case):
    return lambda q, k, v: ref.softmax_attention(q, k, v, case.causal, case.alibi)


def _shape(fn, case):
    q, k, v = case.qkv()
    y = fn(q, k, v)
    want = (case.B, case.H, case.T, case.dv)
    assert (tuple(y.shape), y.dtype, y.device) == (want, q.dtype, q.device), (
        f"got {tuple(y.shape)} {y.dtype} {y.device}, expected {want} {q.dtype} {q.device}")


def _exactly_causal(fn, case):
    """For every t, the gradient of y_t with respect to q, k and v at positions s > t is zero.
    (A fresh forward per t: no backward replay, which compiled graphs may refuse.)"""
    for t in range(case.T):
        q, k, v = (leaf(x) for x in case.qkv())
        grads = torch.autograd.grad(fn(q, k, v)[:, :, t].sum(), (q, k, v), allow_unused=True)
        for name, g in zip("qkv", grads, strict=True):
            if g is None:
                continue
            future = g[:, :, t + 1:]
            assert torch.count_nonzero(future) == 0, (
                f"output position {t} depends on {name} at later positions "
                f"{sorted(set((future != 0).nonzero()[:, 2].add(t + 1).tolist()))}")


# --- softmax attention -------------------------------------------------------------------

@prop(SOFTMAX, attn_cases())
def attn_shape_dtype_device(impl, case):
    """Output (B, H, T, d_v) in q's dtype and device."""
    _shape(_softmax(impl, case), case)


@prop(SOFTMAX, attn_cases())
def attn_forward_matches_reference(impl, case):
    """Forward within the tolerance policy (all dtypes, layouts, causal and ALiBi flags)."""
    assert_matches_reference(_softmax(impl, case), _softmax_ref(case), case.qkv(),
                             ("dq", "dk", "dv"), upstream=None)


@prop(SOFTMAX, attn_cases(), cost=2)
def attn_gradients_match_reference(impl, case):
    """Gradients of q, k and v within the tolerance policy."""
    assert_matches_reference(_softmax(impl, case), _softmax_ref(case), case.qkv(),
                             ("dq", "dk", "dv"), upstream=case.upstream(),
                             upstream_layout=case.upstream_layout)


@prop(SOFTMAX, attn_gradcheck_cases(), cost=3)
def attn_gradcheck_float64(impl, case):
    """torch.autograd.gradcheck in float64 over q, k, v."""
    torch.autograd.gradcheck(_softmax(impl, case), tuple(leaf(t) for t in case.qkv()))


@prop(SOFTMAX, attn_cases(causal=True, dtypes=(torch.float32, torch.float64), kernel_max_T=33))
def attn_causality_exact(impl, case):
    """With causal=True, ∂y_t/∂(q, k, v)_s is exactly zero for every s > t."""
    _exactly_causal(_softmax(impl, case), case)


@prop(SOFTMAX, attn_cases(causal=False, alibi=False, min_T=2))
def attn_permutation_equivariant(impl, case):
    """Without a mask or positions, permuting the tokens permutes the output:
    impl(πq, πk, πv) = π impl(q, k, v), within the tolerance policy."""
    perm = torch.randperm(case.T, generator=torch.Generator().manual_seed(case.seed))
    inv = perm.argsort()

    def permuted(q, k, v):
        return impl(q[:, :, perm], k[:, :, perm], v[:, :, perm], False, False)[:, :, inv]

    assert_matches_reference(permuted, _softmax_ref(case), case.qkv(), (), upstream=None)


@prop(SOFTMAX, attn_cases())
def attn_rows_sum_to_one(impl, case):
    """Each row of the attention pattern sums to 1: with v = 1 the output is 1."""
    q, k, v = case.qkv()
    ones = torch.ones_like(v)
    assert_matches_reference(_softmax(impl, case), _softmax_ref(case), (q, k, ones), (),
                             upstream=None)
    if case.B and case.T:
        y = _softmax(impl, case)(q, k, ones).double()
        assert (y - 1).abs().max() <= rows_sum_bound(case.T, case.dtype), "rows do not sum to 1"


def rows_sum_bound(n: int, dtype: torch.dtype) -> float:
    """How far from 1 a correct row of n weights may sum, with unit roundoff u: the weights'
    common denominator and their sum are each a sum of n terms ((n - 1)u apiece, Higham's bound
    for any order), and a tiled kernel that rescales both running sums adds up to u per tile
    each: 4(n + 1)u = 2(n + 1) eps, and at least 8 eps for short rows. The exps' own errors cancel
    in the ratio. The reference's float64 rows reach 12 eps at n = 4093."""
    return max(8, 2 * (n + 1)) * torch.finfo(dtype).eps


@prop(SOFTMAX, attn_cases(min_B=1), kind="numerics")
def attn_large_scores(impl, case):
    """Scores far past exp's range: q and k scaled so that |q·k|/√d reaches ~1e4 in float32 and
    float64 (past the float16 range too) and ~100 in float16/bfloat16; the forward within the
    tolerance policy. Without subtracting the row maximum, exp overflows: Inf/Inf = NaN."""
    big = dataclasses.replace(case, scale=100.0 if case.dtype in (torch.float32, torch.float64)
                              else 10.0)
    assert_matches_reference(_softmax(impl, big), _softmax_ref(big), big.qkv(), (),
                             upstream=None)


@prop(SOFTMAX, attn_cases(max_B=0) | attn_cases(min_T=1, max_T=1))
def attn_edge_shapes(impl, case):
    """B == 0 and T == 1 work, forward and backward, within the tolerance policy."""
    assert_matches_reference(_softmax(impl, case), _softmax_ref(case), case.qkv(),
                             ("dq", "dk", "dv"), upstream=case.upstream())


@prop(SOFTMAX, bad_attention_inputs(with_flags=True), kind="contract")
def attn_bad_input_raises(impl, case):
    """Bad q/k/v (ndim, shapes, dtypes) or flags: ValueError/TypeError naming the argument."""
    expect_rejected(impl, case, ref.softmax_attention)


# --- quadratic attention -----------------------------------------------------------------

QUAD_CASES = dict(causal=True, alibi=False, max_T=20)  # T up to 20 crosses chunks of 4


@prop(QUAD, attn_cases(**QUAD_CASES))
def quad_shape_dtype_device(impl, case):
    """Output (B, H, T, d_v) in q's dtype and device."""
    _shape(impl, case)


@prop(QUAD, attn_cases(**QUAD_CASES))
def quad_matches_quadratic_form(impl, case):
    """Equals the O(T²) einops form within the tolerance policy: T below, at, across and not
    divisible by the chunk size, and T == 1 (the linear form is the same function)."""
    assert_matches_reference(impl, ref.quadratic_attention, case.qkv(), (), upstream=None)


@prop(QUAD, attn_cases(**QUAD_CASES), cost=2)
def quad_gradients_match_reference(impl, case):
    """Gradients of q, k and v within the tolerance policy."""
    assert_matches_reference(impl, ref.quadratic_attention, case.qkv(), ("dq", "dk", "dv"),
                             upstream=case.upstream(), upstream_layout=case.upstream_layout)


@prop(QUAD, attn_gradcheck_cases(causal=True, alibi=False), cost=3)
def quad_gradcheck_float64(impl, case):
    """torch.autograd.gradcheck in float64 over q, k, v."""
    torch.autograd.gradcheck(impl, tuple(leaf(t) for t in case.qkv()))


@prop(QUAD, attn_cases(causal=True, alibi=False, min_B=1, min_T=15, max_T=40, max_H=2,
                       min_d=2), cost=2)
def quad_matches_across_chunks(impl, case):
    """Forward and gradients within the tolerance policy for T = 15..40: across one or two
    chunk boundaries of the Triton kernels (chunks of 16), d >= 2 so the state has rows
    (i, j) beyond the first."""
    assert_matches_reference(impl, ref.quadratic_attention, case.qkv(), ("dq", "dk", "dv"),
                             upstream=case.upstream())


@prop(QUAD, long_prefix_cases(), cost=12, kind="numerics")
def quad_long_prefix_low_precision(impl, case):
    """float16/bfloat16 over 1021 tokens to the profile's cap (B = H = 1, d <= 4): forward and
    gradients within the tolerance policy of the reference, whose sums accumulate in float32.
    A prefix state kept in the input dtype rounds every one of T updates at the state's
    scale."""
    assert_matches_reference(impl, ref.quadratic_attention, case.qkv(), ("dq", "dk", "dv"),
                             upstream=case.upstream())


@prop(QUAD, attn_cases(causal=True, alibi=False, max_T=14, kernel_max_T=17,
                       dtypes=(torch.float32, torch.float64)))
def quad_causality_exact(impl, case):
    """∂y_t/∂(q, k, v)_s is exactly zero for every s > t, chunk boundaries included."""
    _exactly_causal(impl, case)


@prop(QUAD, attn_cases(dtypes=(torch.float64, torch.float32, torch.bfloat16), **QUAD_CASES))
def quad_homogeneous_in_q(impl, case):
    """Scores are (q·k)²: doubling q multiplies the output by exactly 4 (powers of two scale
    without rounding while results stay normal; not float16, whose narrow exponent range makes
    small outputs subnormal, where x4 is not exact)."""
    q, k, v = case.qkv()
    assert_bitwise_equal(impl(2 * q, k, v), 4 * impl(q, k, v), "impl(2q, k, v) vs 4 impl(q, k, v)")


@prop(QUAD, attn_cases(max_B=0, **QUAD_CASES) | attn_cases(min_T=1, max_T=1, causal=True,
                                                          alibi=False))
def quad_edge_shapes(impl, case):
    """B == 0 and T == 1 work, forward and backward, within the tolerance policy."""
    assert_matches_reference(impl, ref.quadratic_attention, case.qkv(), ("dq", "dk", "dv"),
                             upstream=case.upstream())


@prop(QUAD, bad_attention_inputs(with_flags=False), kind="contract")
def quad_bad_input_raises(impl, case):
    """Bad q/k/v (ndim, shapes, dtypes): ValueError/TypeError naming the argument."""
    expect_rejected(impl, case, ref.quadratic_attention)

# --- signatures: how the generic properties and the mutation operators call the ops ---

signature(SOFTMAX, attn_cases(), tensors=lambda c: c.qkv(),
          call=lambda fn, c: lambda q, k, v: fn(q, k, v, c.causal, c.alibi),
          grads=("dq", "dk", "dv"), upstream=lambda c: c.upstream(),
          inputs={"q": 0, "k": 0, "v": 0}, options={"causal": False, "alibi": False},
          tails={"T": (2, 1024)})
signature(QUAD, attn_cases(**QUAD_CASES), tensors=lambda c: c.qkv(), call=lambda fn, c: fn,
          grads=("dq", "dk", "dv"), upstream=lambda c: c.upstream(),
          inputs={"q": 0, "k": 0, "v": 0}, tails={"T": (2, 1024)})
