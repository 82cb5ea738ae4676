"""Per-token FFN as two batched GEMMs: the T tokens are the batch of ``torch.baddbmm``.

x (B, T, D) is viewed token-major as (T, B, D); each token's B rows meet that token's own
weights W1[t] (D, F) and W2[t] (F, D), and the biases ride in the GEMM's ``beta·input`` term.
"""

from __future__ import annotations

import torch

from mixology.ops.ffn.checks import check_activation, check_pffn_input
from mixology.ops.ffn.reference import ACT


def per_token_ffn(x, w1, b1, w2, b2, activation="gelu"):
    check_pffn_input(x, w1, b1, w2, b2)
    check_activation(activation)
    xt = x.transpose(0, 1)  # (T, B, D): a view, baddbmm takes the strides
    h = ACT[activation](torch.baddbmm(b1.unsqueeze(1), xt, w1))  # (T, B, F)
    return torch.baddbmm(b2.unsqueeze(1), h, w2).transpose(0, 1)  # (B, T, D)
