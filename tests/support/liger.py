"""Adapters: Liger-Kernel's Triton kernels (``pip install liger-kernel``) called with mixology's
signatures, so the spec can check them as they ship (tests/spec/test_production_kernels.py;
the findings are in docs/kernels.md#a-production-library-liger-kernel).

An adapter only maps arguments: the library's own defaults, no input checks of its own, and
only exact data movement (a permutation of the last dim) where the conventions differ. Liger's
kernels take float32, float16 and bfloat16:

    python -m mixology verify --candidate rms_norm=tests.support.liger:rms_norm \\
        --dtypes float32,float16,bfloat16
"""

from __future__ import annotations

import torch
from liger_kernel.ops.layer_norm import LigerLayerNormFunction
from liger_kernel.ops.rms_norm import LigerRMSNormFunction
from liger_kernel.ops.rope import LigerRopeFunction
from liger_kernel.ops.swiglu import LigerSiLUMulFunction

DTYPES = "float32,float16,bfloat16"
BASE = 10000.0


def rms_norm(x, weight, eps=1e-5):
    """``LigerRMSNormFunction`` with its defaults (casting_mode "llama", in_place=True)."""
    return LigerRMSNormFunction.apply(x, weight, eps)


def layer_norm(x, weight, bias, eps=1e-5):
    return LigerLayerNormFunction.apply(x, weight, bias, eps)


def swiglu(x, w_gate, w_up, w_down):
    """(silu(x @ w_gate) * (x @ w_up)) @ w_down, the gate product by Liger's kernel."""
    return LigerSiLUMulFunction.apply(x @ w_gate, x @ w_up) @ w_down


def rope(x, interleaved=False):
    """x: (B, H, T, d). Liger rotates halves (HF's rotate_half) with cos/sin of (T, d) given
    by the caller; the interleaved pairs (0, 1), (2, 3), ... are moved to halves and back."""
    B, H, T, d = x.shape
    inv_freq = BASE ** (-torch.arange(0, d, 2, dtype=torch.float64, device=x.device) / d)
    angles = torch.arange(T, dtype=torch.float64, device=x.device)[:, None] * inv_freq
    angles = torch.cat([angles, angles], dim=-1)[None]  # (1, T, d)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    if interleaved:
        to_halves = torch.cat([torch.arange(0, d, 2), torch.arange(1, d, 2)]).to(x.device)
        x = x[..., to_halves]
    q, _ = LigerRopeFunction.apply(x, torch.zeros_like(x[:, :1]), cos, sin)
    if interleaved:
        q = q[..., torch.argsort(to_halves)]
    return q
