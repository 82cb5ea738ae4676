"""Input checks of token_mix, token_unmix and token_mixer.

Every implementation calls these before touching the data (see mixology/ops/checks.py)."""

from __future__ import annotations

from mixology.ops.checks import check_positive_int, check_tensor
from mixology.ops.norms.checks import check_layer_norm_params


def check_mix_input(x, num_heads, name: str = "x") -> tuple[int, int, int, int]:
    """Check ``x: (B, T, D)`` and ``num_heads`` dividing D; return ``(B, T, D, head_dim)``."""
    check_tensor(x, name)
    check_positive_int(num_heads, "num_heads")
    if x.ndim != 3:
        raise ValueError(
            f"{name} must have shape (B, T, D) with D divisible by num_heads, "
            f"got ndim={x.ndim} (shape {tuple(x.shape)})"
        )
    B, T, D = x.shape
    if D % num_heads != 0:
        raise ValueError(
            f"num_heads={num_heads} must divide D, the last dim of {name} "
            f"(shape {tuple(x.shape)}, D={D})"
        )
    return B, T, D, D // num_heads


def check_mixer_input(x, num_heads, weight, bias, eps) -> tuple[int, int, int, int]:
    dims = check_mix_input(x, num_heads)
    check_layer_norm_params(x, weight, bias, eps)
    return dims
