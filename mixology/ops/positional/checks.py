"""Input checks of RoPE, ALiBi and the sinusoidal encoding.

Every implementation calls these before touching the data (see mixology/ops/checks.py)."""

from __future__ import annotations

from mixology.ops.checks import check_flag, check_tensor


def check_rope_input(x, interleaved) -> tuple[int, int, int, int]:
    """x: (B, H, T, d) with d even; interleaved: bool."""
    check_tensor(x, "x")
    if x.ndim != 4 or x.shape[-1] % 2:
        raise ValueError(f"x must have shape (B, H, T, d) with d even, got shape {tuple(x.shape)}")
    check_flag(interleaved, "interleaved")
    return tuple(x.shape)


def check_alibi_input(scores, causal) -> tuple[int, int, int, int]:
    """scores: (B, H, T, T) attention scores; causal: bool."""
    check_tensor(scores, "scores")
    if scores.ndim != 4 or scores.shape[-1] != scores.shape[-2]:
        raise ValueError(f"scores must have shape (B, H, T, T), got shape {tuple(scores.shape)}")
    check_flag(causal, "causal")
    return tuple(scores.shape)


def check_sinusoidal_input(x) -> tuple[int, int, int]:
    """x: (B, T, D) with D even."""
    check_tensor(x, "x")
    if x.ndim != 3 or x.shape[-1] % 2:
        raise ValueError(f"x must have shape (B, T, D) with D even, got shape {tuple(x.shape)}")
    return tuple(x.shape)
