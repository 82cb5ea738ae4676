"""Positional encodings in einops: RoPE, ALiBi, sinusoidal.

Rotary position embedding (RoPE, Su et al. 2021):

Feature pairs are rotated by the angle t·θ_f, θ_f = base^(-2f/d), at position t = 0 .. T-1.
Two conventions pair the features differently, and both are named:
- rotate-half (GPT-NeoX, Llama): pairs (x_f, x_{f + d/2});
- interleaved (the paper, GPT-J): pairs (x_{2f}, x_{2f+1}).
cos/sin are computed in float32 (float64 for float64 input) and cast to x's dtype.

ALiBi (Press et al. 2022): attention scores (B, H, T, T) plus a per-head bias linear in the
distance, -m_h (t - s) (causal) or -m_h |t - s|.

Sinusoidal (Vaswani et al. 2017): x (B, T, D) plus PE[t, 2f] = sin(t ω_f), PE[t, 2f + 1] =
cos(t ω_f), ω_f = base^(-2f/D).
"""

from __future__ import annotations

import math

import torch
from einops import einsum, rearrange

from mixology.numerics.dtypes import accumulation_dtype
from mixology.ops.positional.checks import check_alibi_input, check_rope_input, check_sinusoidal_input

BASE = 10000.0


def rope_angles(T: int, d: int, device, dtype=torch.float32) -> torch.Tensor:
    """(T, d/2): t * base^(-2f/d)."""
    inv_freq = BASE ** (-torch.arange(0, d, 2, device=device, dtype=torch.float64) / d)
    t = torch.arange(T, device=device, dtype=torch.float64)
    return einsum(t, inv_freq, "t, f -> t f").to(dtype)


def rotate(x1, x2, cos, sin):
    """The pairs (x1, x2) rotated by the angles whose cos/sin are given."""
    return x1 * cos - x2 * sin, x2 * cos + x1 * sin


def rope(x, interleaved: bool = False):
    B, H, T, d = check_rope_input(x, interleaved)
    acc = accumulation_dtype(x.dtype)
    angles = rope_angles(T, d, x.device, acc)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    if interleaved:
        y1, y2 = rotate(x[..., 0::2], x[..., 1::2], cos, sin)
        return rearrange(torch.stack([y1, y2], dim=-1), "... f two -> ... (f two)")
    y1, y2 = rotate(x[..., : d // 2], x[..., d // 2:], cos, sin)
    return torch.cat([y1, y2], dim=-1)


# --- ALiBi -------------------------------------------------------------------------------

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


def alibi(scores, causal: bool = False):
    B, H, T, _ = check_alibi_input(scores, causal)
    return scores + alibi_bias(H, T, causal, dtype=scores.dtype, device=scores.device)


# --- sinusoidal --------------------------------------------------------------------------

def sinusoidal_table(T: int, D: int, device, dtype=torch.float32) -> tuple:
    """(sin, cos), each (T, D/2): of t * base^(-2f/D), angles in float64 then cast to dtype."""
    angles = rope_angles(T, D, device, torch.float64).to(dtype)
    return angles.sin(), angles.cos()


def sinusoidal(x):
    B, T, D = check_sinusoidal_input(x)
    acc = accumulation_dtype(x.dtype)
    sin, cos = sinusoidal_table(T, D, x.device, acc)
    pe = rearrange(torch.stack([sin, cos], dim=-1), "t f two -> t (f two)")
    return x + pe.to(x.dtype)
