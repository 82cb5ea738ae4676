"""The generic input checks: tensors and their dtypes, ints, flags, eps, choices.

Every implementation calls its op's checks (``mixology/ops/<family>/checks.py``, built on these)
before touching the data, so bad input gets the same ``TypeError``/``ValueError`` (naming the
argument and the expected shape) from the einops reference, the compiled version and the
Triton kernels alike, never a crash inside a kernel.
"""

from __future__ import annotations

import torch

FLOAT_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)


def check_tensor(value, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must have a floating dtype (float64, float32, float16, bfloat16), "
            f"got {value.dtype}"
        )
    return value


def check_like_x(x: torch.Tensor, t: torch.Tensor, name: str) -> None:
    """``t`` (named ``name``) has x's dtype and is on x's device."""
    if t.dtype != x.dtype:
        raise TypeError(f"{name} must have the dtype of x ({x.dtype}), got {t.dtype}")
    if t.device != x.device:
        raise ValueError(f"{name} must be on x's device ({x.device}), got {t.device}")


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def check_eps(eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise TypeError(f"eps must be a float, got {type(eps).__name__}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    return eps


def check_flag(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def check_choice(value, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, one of {choices}, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


