"""Input checks of softmax and quadratic attention.

Every implementation calls these before touching the data (see mixology/ops/checks.py)."""

from __future__ import annotations

from mixology.ops.checks import check_tensor


def check_qkv(q, k, v) -> tuple[int, int, int, int]:
    """q, k: (B, H, T, d); v: (B, H, T, d_v); one dtype and device. Returns (B, H, T, d)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_tensor(t, name)
        if t.ndim != 4:
            raise ValueError(f"{name} must have shape (B, H, T, d), got ndim={t.ndim} "
                             f"(shape {tuple(t.shape)})")
    if k.shape != q.shape:
        raise ValueError(f"k must have q's shape (B, H, T, d) = {tuple(q.shape)}, "
                         f"got {tuple(k.shape)}")
    if v.shape[:3] != q.shape[:3]:
        raise ValueError(f"v must have shape (B, H, T, d_v) with (B, H, T) = {tuple(q.shape[:3])}, "
                         f"got {tuple(v.shape)}")
    for name, t in (("k", k), ("v", v)):
        if t.dtype != q.dtype:
            raise TypeError(f"{name} must have q's dtype ({q.dtype}), got {t.dtype}")
        if t.device != q.device:
            raise ValueError(f"{name} must be on q's device ({q.device}), got {t.device}")
    return tuple(q.shape)
