"""RoPE as one fused Triton kernel, forward and backward.

Each program rotates BLOCK_ROWS token vectors (rows of the flattened (B, H, T) axes), reading
x with its strides and the (T, d/2) cos/sin tables, computing in float32 (float64 for float64
input) and rounding once. The gradient of a rotation is the inverse rotation: the same kernel
with sin negated. The tables are built exactly as the reference builds them.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from mixology.numerics.dtypes import accumulation_dtype
from mixology.ops._kernels.triton_utils import acc_dtype, cast_out, check_runnable, empty, emulate_bf16_rne
from mixology.ops.positional.checks import check_rope_input
from mixology.ops.positional.reference import rope_angles


@triton.jit
def _rope_kernel(x_ptr, cos_ptr, sin_ptr, y_ptr, n_rows, H, T, HALF,
                 sxb, sxh, sxt, sxd,
                 INTERLEAVED: tl.constexpr, INVERSE: tl.constexpr, ACC: tl.constexpr,
                 EMULATE_RNE: tl.constexpr, BLOCK_ROWS: tl.constexpr, BLOCK_F: tl.constexpr):
    rows = (tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)).to(tl.int64)[:, None]
    f = tl.arange(0, BLOCK_F)[None, :]
    mask = (rows < n_rows) & (f < HALF)
    t = rows % T
    bh = rows // T
    base = (bh // H) * sxb + (bh % H) * sxh + t * sxt
    if INTERLEAVED:  # pairs (2f, 2f + 1)
        c1, c2 = 2 * f, 2 * f + 1
    else:  # rotate-half: pairs (f, f + d/2)
        c1, c2 = f, f + HALF
    x1 = tl.load(x_ptr + base + c1.to(tl.int64) * sxd, mask=mask, other=0.0).to(ACC)
    x2 = tl.load(x_ptr + base + c2.to(tl.int64) * sxd, mask=mask, other=0.0).to(ACC)
    cos = tl.load(cos_ptr + t * HALF + f, mask=mask, other=1.0)
    sin = tl.load(sin_ptr + t * HALF + f, mask=mask, other=0.0)
    if INVERSE:
        sin = -sin
    out = y_ptr + rows * (2 * HALF)
    dtype = y_ptr.dtype.element_ty
    tl.store(out + c1, cast_out(x1 * cos - x2 * sin, dtype, EMULATE_RNE), mask=mask)
    tl.store(out + c2, cast_out(x2 * cos + x1 * sin, dtype, EMULATE_RNE), mask=mask)


def rotate(x: torch.Tensor, interleaved: bool, inverse: bool) -> torch.Tensor:
    """rope(x) (or its inverse rotation), contiguous output."""
    B, H, T, d = x.shape
    y = empty((B, H, T, d), x.dtype, x.device)
    if y.numel() == 0:
        return y
    acc = accumulation_dtype(x.dtype)
    angles = rope_angles(T, d, x.device, acc)
    cos, sin = angles.cos().contiguous(), angles.sin().contiguous()
    block_f = triton.next_power_of_2(d // 2)
    block_rows = max(1, min(64, 2048 // block_f))
    grid = (triton.cdiv(B * H * T, block_rows),)
    _rope_kernel[grid](x, cos, sin, y, B * H * T, H, T, d // 2, *x.stride(),
                       INTERLEAVED=interleaved, INVERSE=inverse, ACC=acc_dtype(x.dtype),
                       EMULATE_RNE=emulate_bf16_rne(x.dtype), BLOCK_ROWS=block_rows,
                       BLOCK_F=block_f)
    return y


class _Rope(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, interleaved):
        ctx.interleaved = interleaved
        return rotate(x, interleaved, inverse=False)

    @staticmethod
    def backward(ctx, g):
        return rotate(g, ctx.interleaved, inverse=True), None


def rope(x, interleaved: bool = False):
    check_rope_input(x, interleaved)
    check_runnable(x)
    return _Rope.apply(x, interleaved)
