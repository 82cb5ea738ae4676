"""Input checks of linear attention (every implementation calls them first, see
mixology/ops/checks.py)."""

from __future__ import annotations

import math

import torch

from mixology.numerics.dtypes import accumulation_dtype
from mixology.ops.attention.checks import check_qkv
from mixology.ops.checks import check_flag, check_tensor


def check_linear_attention(q, k, v, g, scale, initial_state, output_final_state):
    """q, k: (B, H, T, d_k); v: (B, H, T, d_v); g: None or (B, H, T), <= 0, in q's dtype or
    float32; scale: None or a float > 0; initial_state: None or (B, H, d_k, d_v) in q's dtype
    or its accumulation dtype; output_final_state: bool. Returns (B, H, T, d_k, d_v, scale),
    the scale resolved (None: d_k ** -0.5)."""
    B, H, T, dk = check_qkv(q, k, v)
    dv = v.shape[-1]
    wide = accumulation_dtype(q.dtype)
    if g is not None:
        check_tensor(g, "g")
        if tuple(g.shape) != (B, H, T):
            raise ValueError(f"g must have shape (B, H, T) = {(B, H, T)}, got {tuple(g.shape)}")
        if g.dtype not in (q.dtype, wide):
            raise TypeError(f"g must have q's dtype ({q.dtype}) or {wide}, got {g.dtype}")
        if g.device != q.device:
            raise ValueError(f"g must be on q's device ({q.device}), got {g.device}")
        if g.numel() and g.device.type != "meta" and bool((g > 0).any()):  # meta: gpu-check
            raise ValueError(f"g is a log-decay and must be <= 0, got max {float(g.max()):.3g}")
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise TypeError(f"scale must be a float or None, got {type(scale).__name__}")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be finite and > 0, got {scale}")
    if initial_state is not None:
        check_tensor(initial_state, "initial_state")
        if tuple(initial_state.shape) != (B, H, dk, dv):
            raise ValueError(f"initial_state must have shape (B, H, d_k, d_v) = "
                             f"{(B, H, dk, dv)}, got {tuple(initial_state.shape)}")
        if initial_state.dtype not in (q.dtype, wide):
            raise TypeError(f"initial_state must have q's dtype ({q.dtype}) or {wide}, got "
                            f"{initial_state.dtype}")
        if initial_state.device != q.device:
            raise ValueError(f"initial_state must be on q's device ({q.device}), got "
                             f"{initial_state.device}")
    check_flag(output_final_state, "output_final_state")
    return B, H, T, dk, dv, float(dk ** -0.5 if scale is None else scale)


def zeros_state(q: torch.Tensor, dv: int) -> torch.Tensor:
    """A zero (B, H, d_k, d_v) state in q's accumulation dtype."""
    B, H, _, dk = q.shape
    return q.new_zeros(B, H, dk, dv, dtype=accumulation_dtype(q.dtype))
