"""Quadratic attention in linear time: the same function as the O(T²) reference.

Because (q·k)² = φ(q)·φ(k) with φ(x) = x ⊗ x (d² features), the causal sum
out_t = Σ_{s<=t} (q_t·k_s)² v_s / d equals φ(q_t)ᵀ S_t / d with the prefix state
S_t = Σ_{s<=t} φ(k_s) v_sᵀ (d² x d_v). Chunked: inside a chunk of C tokens, the quadratic form
with a causal mask; across chunks, the state carried from the chunks before. Cost
O(T·C·d + T·d²·d_v), memory O(d²·d_v) for the state. Low dtypes accumulate in float32.
"""

from __future__ import annotations

import torch
from einops import einsum, rearrange

from mixology.numerics.dtypes import accumulation_dtype
from mixology.ops.attention.checks import check_qkv
from mixology.ops.attention.reference import causal_mask
from mixology.ops.checks import check_positive_int


def feature_map(x: torch.Tensor) -> torch.Tensor:
    """φ(x) = x ⊗ x, flattened: (..., d) -> (..., d²)."""
    return rearrange(einsum(x, x, "... i, ... j -> ... i j"), "... i j -> ... (i j)")


def quadratic_attention(q, k, v, chunk_size: int = 64):
    B, H, T, d = check_qkv(q, k, v)
    check_positive_int(chunk_size, "chunk_size")
    dtype = q.dtype
    acc = accumulation_dtype(dtype)
    q, k, v = q.to(acc), k.to(acc), v.to(acc)
    state = q.new_zeros(B, H, d * d, v.shape[-1])
    outs = []
    for start in range(0, T, chunk_size):
        qc, kc, vc = (t[:, :, start:start + chunk_size] for t in (q, k, v))
        scores = einsum(qc, kc, "b h t d, b h s d -> b h t s") ** 2
        scores = scores * causal_mask(qc.shape[2], q.device)
        intra = einsum(scores, vc, "b h t s, b h s e -> b h t e")
        inter = einsum(feature_map(qc), state, "b h t f, b h f e -> b h t e")
        outs.append((intra + inter) / d)
        state = state + einsum(feature_map(kc), vc, "b h s f, b h s e -> b h f e")
    return torch.cat(outs, dim=2).to(dtype)


def quadratic_attention_chunk4(q, k, v):
    """Chunks of 4 tokens: the same function; small hypothesis cases cross chunk boundaries."""
    return quadratic_attention(q, k, v, chunk_size=4)
