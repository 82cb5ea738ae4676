"""Plausible buggy linear-attention implementations. The spec must reject every one of them."""

from __future__ import annotations

import torch
from einops import einsum

from mixology.numerics.dtypes import accumulation_dtype
from mixology.ops.linear_attention import reference as ref
from mixology.ops.linear_attention.checks import check_linear_attention, zeros_state
from mixology.registry import mutant

OP = "linear_attention"


def _chunked(q, k, v, g, scale, initial_state, output_final_state, *, chunk=4,
             read_after=False, state_dtype=None, drop_tail_state=False, detach_carry=False,
             ignore_initial=False, scaled=True):
    """The chunked form (mixology/ops/linear_attention/chunked.py) with one bug switched on."""
    B, H, T, dk, dv, scale = check_linear_attention(q, k, v, g, scale, initial_state,
                                                    output_final_state)
    dtype = q.dtype
    acc = state_dtype or accumulation_dtype(dtype)
    q, k, v = q.to(acc), k.to(acc), v.to(acc)
    g = g.to(acc) if g is not None else q.new_zeros(B, H, T)
    S = (zeros_state(q, dv).to(acc) if initial_state is None or ignore_initial
         else initial_state.to(acc))
    outs = []
    for a in range(0, T, chunk):
        qc, kc, vc = (t[:, :, a:a + chunk] for t in (q, k, v))
        gamma = g[:, :, a:a + chunk].cumsum(-1)
        C = gamma.shape[-1]
        causal = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
        diff = (gamma[..., :, None] - gamma[..., None, :]).masked_fill(~causal, float("-inf"))
        intra = einsum(einsum(qc, kc, "b h t d, b h s d -> b h t s") * diff.exp(), vc,
                       "b h t s, b h s e -> b h t e")
        last = gamma[..., -1:]
        carried = last.exp()[..., None]
        new = (carried.detach() if detach_carry else carried) * S + einsum(
            (last - gamma).exp()[..., None] * kc, vc, "b h s d, b h s e -> b h d e")
        read = new if read_after else S
        inter = gamma.exp()[..., None] * einsum(qc, read, "b h t d, b h d e -> b h t e")
        if drop_tail_state and C < chunk:
            inter = torch.zeros_like(inter)
        outs.append((scale if scaled else 1.0) * (intra + inter))
        S = new
    o = torch.cat(outs, dim=2) if outs else v.new_zeros(B, H, 0, dv)
    return o.to(dtype), (S.to(accumulation_dtype(dtype)) if output_final_state else None)


@mutant(OP)
def global_cumulative_exp(q, k, v, g=None, scale=None, initial_state=None,
                          output_final_state=False):
    """exp(G_t)·exp(-G_s) over the whole sequence instead of exp(G_t - G_s): exp(-G_s)
    overflows on long sequences with strong decay (Inf·0 = NaN)."""
    B, H, T, dk, dv, scale = check_linear_attention(q, k, v, g, scale, initial_state,
                                                    output_final_state)
    if g is None:
        return ref.linear_attention(q, k, v, g, scale, initial_state, output_final_state)
    dtype, acc = q.dtype, accumulation_dtype(q.dtype)
    q, k, v = q.to(acc), k.to(acc), v.to(acc)
    G = g.to(acc).cumsum(-1)
    causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    scores = einsum(q * G.exp()[..., None], k * (-G).exp()[..., None],
                    "b h t d, b h s d -> b h t s") * causal
    o = scale * einsum(scores, v, "b h t s, b h s e -> b h t e")
    if initial_state is not None:
        o = o + scale * G.exp()[..., None] * einsum(q, initial_state.to(acc),
                                                    "b h t d, b h d e -> b h t e")
    final = None
    if output_final_state:
        last = G[..., -1:] if T else G.new_zeros(B, H, 1)
        final = last.exp()[..., None] * einsum((-G).exp()[..., None] * k, v,
                                               "b h s d, b h s e -> b h d e")
        if initial_state is not None:
            final = final + last.exp()[..., None] * initial_state.to(acc)
    return o.to(dtype), final


@mutant(OP)
def state_read_after_the_chunk_update(q, k, v, g=None, scale=None, initial_state=None,
                                      output_final_state=False):
    """Each chunk's queries read the state already updated with the chunk's own keys: tokens
    see later tokens of their chunk (chunks of 4)."""
    return _chunked(q, k, v, g, scale, initial_state, output_final_state, read_after=True)


@mutant(OP)
def decay_applied_to_its_own_token(q, k, v, g=None, scale=None, initial_state=None,
                                   output_final_state=False):
    """S_t = exp(g_t)(S_(t-1) + k_t v_tᵀ): the decay of step t also scales token t itself."""
    B, H, T, dk, dv, scale = check_linear_attention(q, k, v, g, scale, initial_state,
                                                    output_final_state)
    dtype, acc = q.dtype, accumulation_dtype(q.dtype)
    q, k, v = q.to(acc), k.to(acc), v.to(acc)
    S = zeros_state(q, dv) if initial_state is None else initial_state.to(acc)
    outs = []
    for t in range(T):
        S = S + einsum(k[:, :, t], v[:, :, t], "b h d, b h e -> b h d e")
        if g is not None:
            S = g[:, :, t].to(acc).exp()[..., None, None] * S
        outs.append(scale * einsum(q[:, :, t], S, "b h d, b h d e -> b h e"))
    o = torch.stack(outs, dim=2) if outs else v.new_zeros(B, H, 0, dv)
    return o.to(dtype), (S if output_final_state else None)


@mutant(OP)
def state_in_the_input_dtype(q, k, v, g=None, scale=None, initial_state=None,
                             output_final_state=False):
    """The chunked form with its state and sums in the input dtype (float16/bfloat16): every
    chunk's update rounds at the state's scale."""
    return _chunked(q, k, v, g, scale, initial_state, output_final_state, chunk=64,
                    state_dtype=q.dtype)


@mutant(OP)
def la_missing_scale(q, k, v, g=None, scale=None, initial_state=None,
                     output_final_state=False):
    """The scale never applied (o_t = q_t S_t)."""
    return _chunked(q, k, v, g, scale, initial_state, output_final_state, scaled=False)


@mutant(OP)
def chunk_tail_drops_the_carried_state(q, k, v, g=None, scale=None, initial_state=None,
                                       output_final_state=False):
    """The last, partial chunk computes its intra-chunk part only: the state carried from
    the chunks before never reaches it."""
    return _chunked(q, k, v, g, scale, initial_state, output_final_state,
                    drop_tail_state=True)


@mutant(OP)
def initial_state_ignored(q, k, v, g=None, scale=None, initial_state=None,
                          output_final_state=False):
    """The initial state is checked but never used: the sequence starts from zero."""
    return _chunked(q, k, v, g, scale, initial_state, output_final_state,
                    ignore_initial=True)


@mutant(OP)
def g_gradient_wrong_at_chunk_boundaries(q, k, v, g=None, scale=None, initial_state=None,
                                         output_final_state=False):
    """The decay carried across a chunk boundary, exp(Γ_last), is detached: the forward is
    right, g's gradient misses what it owes the carried state."""
    return _chunked(q, k, v, g, scale, initial_state, output_final_state, detach_carry=True)
