"""The additive positional encodings as one fused Triton kernel each, forward only (their
gradient is the identity: the upstream gradient passes through unchanged).

- ``alibi``: scores + bias, the bias made in the kernel from the head's slope and the distance
  (no (H, T, T) bias tensor in memory): one read and one write of the scores.
- ``sinusoidal``: x + PE, the (T, D/2) sin/cos tables (built as the reference builds them)
  interleaved into PE[t, 2f], PE[t, 2f + 1] in the kernel.
Both compute in float32 (float64 for float64 input) and round once.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from mixology.numerics.dtypes import accumulation_dtype
from mixology.ops._kernels.triton_utils import (
    acc_dtype,
    cast_out,
    check_runnable,
    empty,
    emulate_bf16_rne,
    num_warps,
)
from mixology.ops.positional.checks import check_alibi_input, check_sinusoidal_input
from mixology.ops.positional.reference import alibi_slopes, sinusoidal_table


@triton.jit
def _alibi_kernel(s_ptr, slope_ptr, y_ptr, n_rows, H, T, ssb, ssh, sst, ssd,
                  CAUSAL: tl.constexpr, ACC: tl.constexpr, EMULATE_RNE: tl.constexpr,
                  BLOCK_ROWS: tl.constexpr, BLOCK_S: tl.constexpr):
    rows = (tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)).to(tl.int64)[:, None]
    cols = tl.program_id(1) * BLOCK_S + tl.arange(0, BLOCK_S)[None, :]
    mask = (rows < n_rows) & (cols < T)
    t = rows % T
    bh = rows // T
    h = bh % H
    scores = tl.load(s_ptr + (bh // H) * ssb + h * ssh + t * sst + cols.to(tl.int64) * ssd, mask=mask,
                     other=0.0).to(ACC)
    dist = (t - cols).to(ACC)
    if not CAUSAL:
        dist = tl.abs(dist)
    slope = tl.load(slope_ptr + h, mask=rows < n_rows, other=0.0)
    y = scores - slope * dist
    tl.store(y_ptr + rows * T + cols, cast_out(y, y_ptr.dtype.element_ty, EMULATE_RNE), mask=mask)


@triton.jit
def _sinusoidal_kernel(x_ptr, sin_ptr, cos_ptr, y_ptr, n_rows, T, HALF, sxb, sxt, sxd,
                       ACC: tl.constexpr, EMULATE_RNE: tl.constexpr,
                       BLOCK_ROWS: tl.constexpr, BLOCK_F: tl.constexpr):
    rows = (tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)).to(tl.int64)[:, None]
    f = tl.arange(0, BLOCK_F)[None, :]
    mask = (rows < n_rows) & (f < HALF)
    t = rows % T
    base = (rows // T) * sxb + t * sxt
    x_even = tl.load(x_ptr + base + (2 * f).to(tl.int64) * sxd, mask=mask, other=0.0).to(ACC)
    x_odd = tl.load(x_ptr + base + (2 * f + 1).to(tl.int64) * sxd, mask=mask, other=0.0).to(ACC)
    sin = tl.load(sin_ptr + t * HALF + f, mask=mask, other=0.0)
    cos = tl.load(cos_ptr + t * HALF + f, mask=mask, other=0.0)
    out = y_ptr + rows * (2 * HALF)
    dtype = y_ptr.dtype.element_ty
    tl.store(out + 2 * f, cast_out(x_even + sin, dtype, EMULATE_RNE), mask=mask)
    tl.store(out + 2 * f + 1, cast_out(x_odd + cos, dtype, EMULATE_RNE), mask=mask)


def _acc(dtype):
    return accumulation_dtype(dtype)


def _alibi_forward(scores, causal):
    B, H, T, _ = scores.shape
    y = empty((B, H, T, T), scores.dtype, scores.device)
    if y.numel() == 0:
        return y
    slopes = torch.tensor(alibi_slopes(H), dtype=_acc(scores.dtype), device=scores.device)
    block_s = min(triton.next_power_of_2(T), 1024)
    block_rows = max(1, min(64, 4096 // block_s))
    grid = (triton.cdiv(B * H * T, block_rows), triton.cdiv(T, block_s))
    _alibi_kernel[grid](scores, slopes, y, B * H * T, H, T, *scores.stride(), CAUSAL=causal,
                        ACC=acc_dtype(scores.dtype), EMULATE_RNE=emulate_bf16_rne(scores.dtype),
                        BLOCK_ROWS=block_rows, BLOCK_S=block_s,
                        num_warps=num_warps(block_rows, block_s))
    return y


def _sinusoidal_forward(x):
    B, T, D = x.shape
    y = empty((B, T, D), x.dtype, x.device)
    if y.numel() == 0:
        return y
    sin, cos = (t.contiguous() for t in sinusoidal_table(T, D, x.device, _acc(x.dtype)))
    block_f = triton.next_power_of_2(D // 2)
    block_rows = max(1, min(64, 2048 // block_f))
    grid = (triton.cdiv(B * T, block_rows),)
    _sinusoidal_kernel[grid](x, sin, cos, y, B * T, T, D // 2, *x.stride(),
                             ACC=acc_dtype(x.dtype), EMULATE_RNE=emulate_bf16_rne(x.dtype),
                             BLOCK_ROWS=block_rows, BLOCK_F=block_f)
    return y


class _Additive(torch.autograd.Function):
    """y = x + (something independent of x): the gradient passes through."""

    @staticmethod
    def forward(ctx, x, forward, *args):
        ctx.n_args = len(args)
        return forward(x, *args)

    @staticmethod
    def backward(ctx, g):
        return g, None, *([None] * ctx.n_args)


def alibi(scores, causal: bool = False):
    check_alibi_input(scores, causal)
    check_runnable(scores)
    return _Additive.apply(scores, _alibi_forward, causal)


def sinusoidal(x):
    check_sinusoidal_input(x)
    check_runnable(x)
    return _Additive.apply(x, _sinusoidal_forward)
