"""Rotary position embedding (RoPE, Su et al. 2021), in einops.

Feature pairs are rotated by the angle t·θ_f, θ_f = base^(-2f/d), at position t = 0 .. T-1.
Two conventions pair the features differently, and both are named:
- rotate-half (GPT-NeoX, Llama): pairs (x_f, x_{f + d/2});
- interleaved (the paper, GPT-J): pairs (x_{2f}, x_{2f+1}).
cos/sin are computed in float32 (float64 for float64 input) and cast to x's dtype.
"""

from __future__ import annotations

import torch
from einops import einsum, rearrange

from mixology.validate import check_rope_input

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
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    angles = rope_angles(T, d, x.device, acc)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    if interleaved:
        y1, y2 = rotate(x[..., 0::2], x[..., 1::2], cos, sin)
        return rearrange(torch.stack([y1, y2], dim=-1), "... f two -> ... (f two)")
    y1, y2 = rotate(x[..., : d // 2], x[..., d // 2:], cos, sin)
    return torch.cat([y1, y2], dim=-1)
