"""Attention references in einops.

- Softmax attention, multi-head: softmax(q kᵀ / sqrt(d) + ALiBi bias, causal mask) v.
- Quadratic attention (causal, no softmax): s_ts = (q_t · k_s)² / d for s <= t, out_t = Σ_s s_ts v_s.
"""

from __future__ import annotations

import math

import torch
from einops import einsum

from mixology.ops.attention.checks import check_qkv
from mixology.ops.checks import check_flag
from mixology.ops.positional.reference import alibi_bias, alibi_slopes  # noqa: F401


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
