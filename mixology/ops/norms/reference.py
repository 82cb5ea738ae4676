"""LayerNorm and RMSNorm in einops, over the last dim of x: (B, T, D).

LayerNorm: (x - mean) / sqrt(var + eps) · weight + bias, var the biased (1/D) variance.
RMSNorm (Zhang & Sennrich 2019): x / sqrt(mean(x²) + eps) · weight (no mean subtracted).
float16/bfloat16 inputs are accumulated and normalized in float32 (float64 stays float64),
and the result is rounded once to x's dtype.
"""

from __future__ import annotations

import torch
from einops import reduce

from mixology.numerics.dtypes import accumulation_dtype
from mixology.ops.norms.checks import check_norm_input


def _acc(x):
    return x.to(accumulation_dtype(x.dtype))


def layer_norm(x, weight, bias, eps=1e-5):
    check_norm_input(x, weight, bias, eps)
    xf = _acc(x)
    mean = reduce(xf, "b t d -> b t 1", "mean")
    var = reduce((xf - mean) ** 2, "b t d -> b t 1", "mean")
    y = (xf - mean) * torch.rsqrt(var + eps) * _acc(weight) + _acc(bias)
    return y.to(x.dtype)


def rms_norm(x, weight, eps=1e-5):
    check_norm_input(x, weight, None, eps, has_bias=False)
    xf = _acc(x)
    ms = reduce(xf**2, "b t d -> b t 1", "mean")
    return (xf * torch.rsqrt(ms + eps) * _acc(weight)).to(x.dtype)
