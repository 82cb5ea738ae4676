"""The accumulation dtype, one rule for every implementation: float16/bfloat16/float32 inputs
accumulate in float32, float64 stays float64."""

from __future__ import annotations

import torch


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32
