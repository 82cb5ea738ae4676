"""Linear attention in chunks: inside a chunk of C tokens the masked parallel form, across
chunks the state carried from the chunks before. Every exponent is taken relative to its
chunk (the decays cumulated from the chunk's start, all <= 0), so nothing overflows however
long the sequence and however strong the decay. The state is kept in the accumulation dtype.
Cost O(T·C·d + T·d_k·d_v), memory O(d_k·d_v) for the state.

For the chunk [a, b) with the decays cumulated from its start, Γ_t = g_a + ... + g_t:

    o_t = scale · (Σ_{a<=s<=t} exp(Γ_t − Γ_s) (q_t·k_s) v_s + exp(Γ_t) q_t S_a)
    S_b = exp(Γ_{b-1}) S_a + Σ_{a<=s<b} exp(Γ_{b-1} − Γ_s) k_s v_sᵀ
"""

from __future__ import annotations

import torch
from einops import einsum

from mixology.numerics.dtypes import accumulation_dtype
from mixology.ops.checks import check_positive_int
from mixology.ops.linear_attention.checks import check_linear_attention, zeros_state


def linear_attention(q, k, v, g=None, scale=None, initial_state=None,
                     output_final_state=False, chunk_size: int = 64):
    """The chunked form; arguments and results as the reference's, and ``chunk_size``."""
    B, H, T, dk, dv, scale = check_linear_attention(q, k, v, g, scale, initial_state,
                                                    output_final_state)
    check_positive_int(chunk_size, "chunk_size")
    dtype, acc = q.dtype, accumulation_dtype(q.dtype)
    q, k, v = q.to(acc), k.to(acc), v.to(acc)
    g = g.to(acc) if g is not None else q.new_zeros(B, H, T)
    S = zeros_state(q, dv) if initial_state is None else initial_state.to(acc)
    outs = []
    for a in range(0, T, chunk_size):
        qc, kc, vc = (t[:, :, a:a + chunk_size] for t in (q, k, v))
        gamma = g[:, :, a:a + chunk_size].cumsum(-1)  # (B, H, C), relative to the chunk
        C = gamma.shape[-1]
        causal = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
        diff = (gamma[..., :, None] - gamma[..., None, :]).masked_fill(~causal, float("-inf"))
        scores = einsum(qc, kc, "b h t d, b h s d -> b h t s") * diff.exp()
        intra = einsum(scores, vc, "b h t s, b h s e -> b h t e")
        inter = gamma.exp()[..., None] * einsum(qc, S, "b h t d, b h d e -> b h t e")
        outs.append(scale * (intra + inter))
        last = gamma[..., -1:]
        S = (last.exp()[..., None] * S
             + einsum((last - gamma).exp()[..., None] * kc, vc, "b h s d, b h s e -> b h d e"))
    o = torch.cat(outs, dim=2) if outs else v.new_zeros(B, H, 0, dv)
    return o.to(dtype), (S if output_final_state else None)


def linear_attention_chunk4(q, k, v, g=None, scale=None, initial_state=None,
                            output_final_state=False):
    """Chunks of 4 tokens: the same function; small cases cross chunk boundaries and end in
    partial chunks."""
    return linear_attention(q, k, v, g, scale, initial_state, output_final_state, chunk_size=4)
