"""Properties of softmax attention and quadratic attention.

``impl(q, k, v, causal, alibi)`` (softmax) and ``impl(q, k, v)`` (quadratic, always causal).
Numerical comparisons follow the tolerance policy; causality is checked exactly.
"""

from __future__ import annotations

import dataclasses

import torch

from mixology.ops.attention import reference as ref
from mixology.spec import prop
from mixology.spec.helpers import assert_bitwise_equal, expect_rejected, leaf
from mixology.spec.numerics import assert_matches_reference
from mixology.spec.strategies import (
    attn_cases,
    attn_gradcheck_cases,
    bad_attention_inputs,
    long_prefix_cases,
)

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
                             ("dq", "dk", "dv"), upstream=case.upstream())


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
    in the ratio. The reference's float64 rows reach 12 eps at n = 4093 (8 eps was too tight)."""
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
                             upstream=case.upstream())


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
    """float16/bfloat16 over 1021 to 4096 tokens (B = H = 1, d <= 4): forward and gradients within
    the tolerance policy of the reference, whose sums accumulate in float32. A prefix state kept
    in the input dtype rounds every one of T updates at the state's scale."""
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
