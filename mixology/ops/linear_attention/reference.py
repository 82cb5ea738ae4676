"""Linear attention with a scalar decay per head and step (fla's simple GLA semantics): the
einops reference, the O(T²) masked "parallel" form, in the accumulation dtype.

    o_t = scale · Σ_{s<=t} exp(G_t − G_s) (q_t·k_s) v_s  +  scale · exp(G_t) q_t S_0
    S_T = exp(G_T) S_0 + Σ_s exp(G_T − G_s) k_s v_sᵀ

with G the cumulative sum of g over the sequence (G_t = g_1 + ... + g_t, g <= 0 the log-decay
of each step). ``g=None`` is plain causal linear attention (G = 0); a constant g per head is
RetNet's retention. Exponents are differences G_t − G_s with s <= t, never exp(G) alone of a
sum that could be large: exp(−G_s) overflows over a long sequence with strong decay.
"""

from __future__ import annotations

import torch
from einops import einsum

from mixology.numerics.dtypes import accumulation_dtype
from mixology.ops.linear_attention.checks import check_linear_attention


def linear_attention(q, k, v, g=None, scale=None, initial_state=None,
                     output_final_state=False):
    """Causal linear attention with a per-step scalar log-decay.

    q, k: (B, H, T, d_k); v: (B, H, T, d_v); g: (B, H, T) log-decays (<= 0) or None;
    scale: the factor of q (None: d_k ** -0.5); initial_state: (B, H, d_k, d_v) or None.
    Returns (o, final_state): o (B, H, T, d_v) in q's dtype; final_state (B, H, d_k, d_v) in
    the accumulation dtype (float32, float64 for float64 inputs) when output_final_state,
    else None.
    """
    B, H, T, dk, dv, scale = check_linear_attention(q, k, v, g, scale, initial_state,
                                                    output_final_state)
    return parallel_form(q, k, v, g, scale, initial_state, output_final_state)


def parallel_form(q, k, v, g, scale: float, initial_state, output_final_state: bool):
    """The math of :func:`linear_attention` on checked inputs, the scale resolved."""
    B, H, T, _ = q.shape
    dtype, acc = q.dtype, accumulation_dtype(q.dtype)
    q, k, v = q.to(acc), k.to(acc), v.to(acc)
    G = g.to(acc).cumsum(-1) if g is not None else q.new_zeros(B, H, T)
    causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    diff = (G[..., :, None] - G[..., None, :]).masked_fill(~causal, float("-inf"))
    scores = einsum(q, k, "b h t d, b h s d -> b h t s") * diff.exp()
    o = scale * einsum(scores, v, "b h t s, b h s e -> b h t e")
    if initial_state is not None:
        S0 = initial_state.to(acc)
        o = o + scale * G.exp()[..., None] * einsum(q, S0, "b h t d, b h d e -> b h t e")
    final = None
    if output_final_state:
        last = G[..., -1:] if T else G.new_zeros(B, H, 1)
        final = einsum((last - G).exp()[..., None] * k, v, "b h s d, b h s e -> b h d e")
        if initial_state is not None:
            final = final + last.exp()[..., None] * initial_state.to(acc)
    return o.to(dtype), final
