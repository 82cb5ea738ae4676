"""Attention references in einops.

- Softmax attention, multi-head: softmax(q kᵀ / sqrt(d) + ALiBi bias, causal mask) v.
- Quadratic attention (causal, no softmax): s_ts = (q_t · k_s)² / d for s <= t, out_t = Σ_s s_ts v_s.
"""

from __future__ import annotations

import math

import torch
from einops import einsum

from mixology.validate import check_flag, check_qkv


def alibi_slopes(num_heads: int) -> list[float]:
    """ALiBi head slopes (Press et al. 2022): 2^(-8/n), 2^(-16/n), ... for n = num_heads a power
    of two; otherwise those of the nearest lower power of two, then every other of the next."""

    def geometric(n):
        return [2.0 ** (-8.0 * (i + 1) / n) for i in range(n)]

    n = 2 ** math.floor(math.log2(num_heads))
    return geometric(n) + geometric(2 * n)[0::2][: num_heads - n]


def alibi_bias(num_heads: int, seq_len: int, causal: bool, *, dtype=torch.float32,
               device="cpu") -> torch.Tensor:
    """(H, T, T): -slope_h * (i - j) causal (only j <= i is used), -slope_h * |i - j| otherwise."""
    pos = torch.arange(seq_len, device=device, dtype=torch.float64)
    dist = pos[:, None] - pos[None, :]
    dist = dist if causal else dist.abs()
    slopes = torch.tensor(alibi_slopes(num_heads), device=device, dtype=torch.float64)
    return (-slopes[:, None, None] * dist).to(dtype)


def causal_mask(T: int, device) -> torch.Tensor:
    """(T, T) bool, True where key position s <= query position t."""
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def softmax_attention(q, k, v, causal: bool = False, alibi: bool = False):
    B, H, T, d = check_qkv(q, k, v)
    check_flag(causal, "causal")
    check_flag(alibi, "alibi")
    scores = einsum(q, k, "b h t d, b h s d -> b h t s") / math.sqrt(d)
    if alibi:
        scores = scores + alibi_bias(H, T, causal, dtype=q.dtype, device=q.device)
    if causal:
        scores = scores.masked_fill(~causal_mask(T, q.device), float("-inf"))
    return einsum(scores.softmax(dim=-1), v, "b h t s, b h s e -> b h t e")


def quadratic_attention(q, k, v):
    B, H, T, d = check_qkv(q, k, v)
    scores = einsum(q, k, "b h t d, b h s d -> b h t s") ** 2 / d
    scores = scores * causal_mask(T, q.device)
    return einsum(scores, v, "b h t s, b h s e -> b h t e")
