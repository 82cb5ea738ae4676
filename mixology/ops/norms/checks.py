"""Input checks of LayerNorm and RMSNorm.

Every implementation calls these before touching the data (see mixology/ops/checks.py)."""

from __future__ import annotations

import torch

from mixology.ops.checks import check_eps, check_like_x, check_tensor


def check_layer_norm_params(x: torch.Tensor, weight, bias, eps) -> None:
    D = x.shape[-1]
    for name, p in (("weight", weight), ("bias", bias)):
        check_tensor(p, name)
        if p.shape != (D,):
            raise ValueError(f"{name} must have shape (D,) = ({D},), got {tuple(p.shape)}")
        check_like_x(x, p, name)
    check_eps(eps)


def check_norm_input(x, weight, bias, eps, *, has_bias: bool = True) -> tuple[int, int, int]:
    """x: (B, T, D); weight (and bias, for LayerNorm): (D,) in x's dtype; eps > 0."""
    check_tensor(x, "x")
    if x.ndim != 3:
        raise ValueError(f"x must have shape (B, T, D), got ndim={x.ndim} (shape {tuple(x.shape)})")
    if has_bias:
        check_layer_norm_params(x, weight, bias, eps)
    else:
        check_layer_norm_params(x, weight, weight, eps)
    return tuple(x.shape)
