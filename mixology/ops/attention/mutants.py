"""Plausible buggy attention implementations. The spec must reject every one of them."""

from __future__ import annotations

import math

import torch
from einops import einsum, rearrange

from mixology.ops._kernels.launch_mutants import input_dtype_accumulator, patched
from mixology.ops.attention import reference as ref
from mixology.ops.attention.checks import check_qkv
from mixology.ops.attention.chunked import feature_map
from mixology.ops.checks import check_flag
from mixology.registry import mutant

SOFTMAX, QUAD = "softmax_attention", "quadratic_attention"


def _softmax_attention(q, k, v, causal, alibi, *, scale=True, axis=-1, diagonal=0,
                       slopes=None, always_alibi=False):
    B, H, T, d = check_qkv(q, k, v)
    check_flag(causal, "causal")
    check_flag(alibi, "alibi")
    scores = einsum(q, k, "b h t d, b h s d -> b h t s") / (math.sqrt(d) if scale else 1.0)
    if alibi or always_alibi:
        bias = ref.alibi_bias(H, T, causal, dtype=q.dtype, device=q.device)
        if slopes is not None:
            bias = bias / torch.tensor(ref.alibi_slopes(H), dtype=q.dtype,
                                       device=q.device)[:, None, None] * slopes(H, q)
        scores = scores + bias
    if causal:
        allowed = torch.ones(T, T, dtype=torch.bool, device=q.device).tril(diagonal)
        scores = scores.masked_fill(~allowed, float("-inf"))
    return einsum(scores.softmax(dim=axis), v, "b h t s, b h s e -> b h t e")


@mutant(SOFTMAX)
def missing_scale(q, k, v, causal=False, alibi=False):
    """Scores q·k without the 1/sqrt(d) scale."""
    return _softmax_attention(q, k, v, causal, alibi, scale=False)


@mutant(SOFTMAX)
def softmax_over_queries(q, k, v, causal=False, alibi=False):
    """Softmax over the query axis (dim=-2) instead of the keys."""
    return _softmax_attention(q, k, v, causal, alibi, axis=-2)


@mutant(SOFTMAX)
def causal_sees_next_token(q, k, v, causal=False, alibi=False):
    """Off-by-one causal diagonal: tril(diagonal=1) lets position t see t + 1."""
    return _softmax_attention(q, k, v, causal, alibi, diagonal=1)


@mutant(SOFTMAX)
def alibi_slopes_halving(q, k, v, causal=False, alibi=False):
    """ALiBi slopes 1/2, 1/4, ... per head instead of 2^(-8h/H)."""
    return _softmax_attention(q, k, v, causal, alibi, slopes=lambda H, t: torch.tensor(
        [2.0 ** -(h + 1) for h in range(H)], dtype=t.dtype, device=t.device)[:, None, None])


@mutant(SOFTMAX)
def alibi_ignores_flag(q, k, v, causal=False, alibi=False):
    """Always adds the ALiBi bias: positions leak into unbiased attention."""
    return _softmax_attention(q, k, v, causal, alibi, always_alibi=True)


@mutant(SOFTMAX)
def heads_merged_output(q, k, v, causal=False, alibi=False):
    """Returns (B, T, H * d_v), the heads already merged, instead of (B, H, T, d_v)."""
    return rearrange(ref.softmax_attention(q, k, v, causal, alibi), "b h t e -> b t (h e)")


@mutant(SOFTMAX)
def squeezes_singletons(q, k, v, causal=False, alibi=False):
    """Calls .squeeze() on the result: wrong shape when B, H or T is 1."""
    return ref.softmax_attention(q, k, v, causal, alibi).squeeze()


@mutant(SOFTMAX)
def unchecked_attention_inputs(q, k, v, causal=False, alibi=False):
    """No input checks: mismatched shapes fail deep inside einsum, integers pass."""
    scores = einsum(q, k, "b h t d, b h s d -> b h t s") / math.sqrt(q.shape[-1])
    if causal:
        scores = scores.masked_fill(~ref.causal_mask(q.shape[2], q.device), float("-inf"))
    return einsum(scores.softmax(-1), v, "b h t s, b h s e -> b h t e")


# --- quadratic attention -----------------------------------------------------------------

def _chunked(q, k, v, *, chunk=4, carry=True, drop_last=False, detach_state=False):
    B, H, T, d = check_qkv(q, k, v)
    state = q.new_zeros(B, H, d * d, v.shape[-1])
    out = q.new_zeros(B, H, T, v.shape[-1])
    end = T - T % chunk if drop_last else T
    for start in range(0, end, chunk):
        qc, kc, vc = (t[:, :, start:start + chunk] for t in (q, k, v))
        scores = einsum(qc, kc, "b h t d, b h s d -> b h t s") ** 2
        scores = scores * ref.causal_mask(qc.shape[2], q.device)
        out[:, :, start:start + chunk] = (
            einsum(scores, vc, "b h t s, b h s e -> b h t e")
            + einsum(feature_map(qc), state, "b h t f, b h f e -> b h t e")) / d
        update = einsum(feature_map(kc), vc, "b h s f, b h s e -> b h f e")
        state = (state if carry else 0) + (update.detach() if detach_state else update)
    return out


@mutant(QUAD)
def chunk_state_not_carried(q, k, v):
    """The prefix state restarts at every chunk: tokens only see their own chunk."""
    return _chunked(q, k, v, carry=False)


@mutant(QUAD)
def last_partial_chunk_dropped(q, k, v):
    """Loops over T // C full chunks: the last T % C positions stay zero."""
    return _chunked(q, k, v, drop_last=True)


@mutant(QUAD)
def chunk_state_detached(q, k, v):
    """The carried state is detached: no gradient flows to earlier chunks' k and v."""
    return _chunked(q, k, v, detach_state=True)


def _quadratic(q, k, v, *, power=2, scale=True, diagonal=0):
    B, H, T, d = check_qkv(q, k, v)
    s = einsum(q, k, "b h t d, b h s d -> b h t s")
    s = (s**2 if power == 2 else s.abs()) / (d if scale else 1)
    s = s * torch.ones(T, T, dtype=torch.bool, device=q.device).tril(diagonal)
    return einsum(s, v, "b h t s, b h s e -> b h t e")


@mutant(QUAD)
def quad_causal_sees_next_token(q, k, v):
    """Off-by-one causal diagonal: position t also sums over s = t + 1."""
    return _quadratic(q, k, v, diagonal=1)


@mutant(QUAD)
def quad_excludes_self(q, k, v):
    """Off-by-one the other way: s < t, the diagonal term is dropped."""
    return _quadratic(q, k, v, diagonal=-1)


@mutant(QUAD)
def quad_missing_scale(q, k, v):
    """Scores (q·k)² without the 1/d."""
    return _quadratic(q, k, v, scale=False)


@mutant(QUAD)
def quad_abs_not_square(q, k, v):
    """|q·k| instead of (q·k)²."""
    return _quadratic(q, k, v, power=1)


@mutant(QUAD)
def quad_squeezes_singletons(q, k, v):
    """Calls .squeeze() on the result: wrong shape when B, H or T is 1."""
    return ref.quadratic_attention(q, k, v).squeeze()


@mutant(QUAD)
def quad_unchecked_inputs(q, k, v):
    """No input checks."""
    s = einsum(q, k, "b h t d, b h s d -> b h t s") ** 2 / q.shape[-1]
    return einsum(s * ref.causal_mask(q.shape[2], q.device), v, "b h t s, b h s e -> b h t e")


# The Triton kernels of the linear form, launched the wrong way (the kernels themselves are
# the real ones; see triton_quadratic.py). Each bug is in one direction; the other is right.

def _launch_split(kernel, inputs, outputs):
    # triton is optional: loaded where a kernel runs
    from mixology.ops.attention import triton_quadratic as tq

    q, v = inputs[0], inputs[2]
    if outputs[0].numel():  # the state split into two i-blocks
        tq._launch(kernel, inputs, outputs, tq.halves(q.shape[-1], v.shape[-1]))


def _split_partials(q, v, cols, per_e=True):
    # triton is optional: loaded where a kernel runs
    from mixology.ops.attention import triton_quadratic as tq

    n_i, n_e = tq.n_blocks(q.shape[-1], v.shape[-1], tq.halves(q.shape[-1], v.shape[-1]))
    return tq._partials(q, n_i * n_e if per_e else n_i, cols)


class _TritonMutant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, bug):
        # triton is optional: loaded where a kernel runs
        from mixology.ops.attention import triton_quadratic as tq

        ctx.save_for_backward(q, k, v)
        ctx.bug = bug
        dv = v.shape[-1]
        if bug == "last_chunk":  # the scan run on T rounded down to whole chunks
            whole = q.shape[2] // tq.BLOCK_T * tq.BLOCK_T
            out = torch.zeros(v.shape, dtype=v.dtype, device=v.device)
            if whole:
                out[:, :, :whole] = tq.forward(*(t[:, :, :whole] for t in (q, k, v)))
            return out
        parts = _split_partials(q, v, dv, per_e=False)
        _launch_split(tq._fwd_kernel, (q, k, v), (parts,))
        return tq._total(parts[:1] if bug == "out_blocks" else parts, q)

    @staticmethod
    def backward(ctx, g):
        # triton is optional: loaded where a kernel runs
        from mixology.ops.attention import triton_quadratic as tq

        q, k, v = ctx.saved_tensors
        d, dv = q.shape[-1], v.shape[-1]
        dq, dk = _split_partials(q, v, d), _split_partials(q, v, d)
        dvp = _split_partials(q, v, dv, per_e=False)
        _launch_split(tq._bwd_dq_kernel, (q, k, v, g), (dq,))
        _launch_split(tq._bwd_dkdv_kernel, (q, k, v, g), (dk, dvp))
        dv_kept = dvp[:1] if ctx.bug == "dv_blocks" else dvp
        return tq._total(dq, q), tq._total(dk, q), tq._total(dv_kept, q), None


@mutant(QUAD, needs="triton")
def triton_last_partial_chunk_dropped(q, k, v):
    """The Triton forward run on T rounded down to whole chunks of 16: the tail stays zero."""
    check_qkv(q, k, v)
    return _TritonMutant.apply(q, k, v, "last_chunk")


@mutant(QUAD, needs="triton")
def triton_state_blocks_not_summed(q, k, v):
    """The state split into two i-blocks, but only block 0's partial output is kept: the
    state rows (i, j) of the second block are lost (seen once T > one chunk and d > 1)."""
    check_qkv(q, k, v)
    return _TritonMutant.apply(q, k, v, "out_blocks")


@mutant(QUAD, needs="triton")
def triton_dv_blocks_not_summed(q, k, v):
    """Right forward; the backward keeps only i-block 0's partial dv, so dv misses the later
    chunks' state rows of the second i-block."""
    check_qkv(q, k, v)
    return _TritonMutant.apply(q, k, v, "dv_blocks")


@mutant(QUAD, needs="triton")
def triton_quad_scale_in_float32(q, k, v):
    """The Triton linear form with 1/d handed to its kernels in float32, as a Python float
    argument reaches a CUDA kernel: a float64 result is off by about 3e-8 (relative) at d = 3."""
    # triton is optional: loaded where a kernel runs
    from mixology.ops.attention import triton_quadratic as tq

    def inv_d_float32(x):
        return torch.full((1,), 1.0 / x.shape[-1], dtype=torch.float32, device=x.device)

    with patched(tq, _inv_d=inv_d_float32):
        return tq.quadratic_attention(q, k, v)


# --- kernel scale: large scores, long prefixes ---------------------------------------------

@mutant(SOFTMAX)
def softmax_without_max_subtraction(q, k, v, causal=False, alibi=False):
    """exp(s) / Σ exp(s) without subtracting the row maximum: Inf/Inf = NaN once scores pass
    ~88 in float32 (~11 in float16)."""
    B, H, T, d = check_qkv(q, k, v)
    check_flag(causal, "causal")
    check_flag(alibi, "alibi")
    scores = einsum(q, k, "b h t d, b h s d -> b h t s") / math.sqrt(d)
    if alibi:
        scores = scores + ref.alibi_bias(H, T, causal, dtype=q.dtype, device=q.device)
    e = scores.exp()
    if causal:
        e = e * ref.causal_mask(T, q.device)
    return einsum(e / e.sum(-1, keepdim=True), v, "b h t s, b h s e -> b h t e")


@mutant(QUAD)
def quad_state_in_input_dtype(q, k, v):
    """The recurrent form, S_t = S_{t-1} + (k_t ⊗ k_t) v_tᵀ and y_t = (q_t ⊗ q_t)ᵀ S_t / d,
    with the state kept in q's dtype: over 4096 tokens in bfloat16 every update rounds it."""
    B, H, T, d = check_qkv(q, k, v)
    state = q.new_zeros(B, H, d * d, v.shape[-1])
    ys = []
    for t in range(T):
        fk, fq = feature_map(k[:, :, t]), feature_map(q[:, :, t])
        state = state + fk[..., :, None] * v[:, :, t, None, :]
        ys.append(einsum(fq, state, "b h f, b h f e -> b h e") / d)
    return torch.stack(ys, dim=2) if ys else v.new_zeros(B, H, 0, v.shape[-1])


@mutant(QUAD, needs="triton")
def triton_quad_state_in_input_dtype(q, k, v):
    """The Triton linear form with ACC (its state and dot products) in q's dtype."""
    # triton is optional: loaded where a kernel runs
    from mixology.ops.attention import triton_quadratic

    with input_dtype_accumulator(triton_quadratic):
        return triton_quadratic.quadratic_attention(q, k, v)
