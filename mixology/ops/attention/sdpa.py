"""Softmax attention through torch's scaled_dot_product_attention (flash/efficient/math)."""

from __future__ import annotations

import torch.nn.functional as F

from mixology.ops.attention.checks import check_qkv
from mixology.ops.attention.reference import alibi_bias, causal_mask
from mixology.ops.checks import check_flag


def softmax_attention(q, k, v, causal: bool = False, alibi: bool = False):
    B, H, T, d = check_qkv(q, k, v)
    check_flag(causal, "causal")
    check_flag(alibi, "alibi")
    if not alibi:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    bias = alibi_bias(H, T, causal, dtype=q.dtype, device=q.device)
    if causal:
        bias = bias.masked_fill(~causal_mask(T, q.device), float("-inf"))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
