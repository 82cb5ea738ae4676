"""LayerNorm and RMSNorm as fused Triton kernels, forward and backward (one kernel pair, the
norm chosen by the constexpr RMS).

Forward: each program normalizes BLOCK_ROWS whole rows (x read through its strides), in
float32 (float64 for float64), saving per-row mean (LayerNorm) and 1/std.
Backward, with x̂ the normalized row and g = dy·weight:
  LayerNorm: dx = (g - x̂·mean(g·x̂) - mean(g)) / std,   RMSNorm: dx = (g - x̂·mean(g·x̂)) / rms;
dweight = Σ_rows dy·x̂, dbias = Σ_rows dy, as per-program partial sums (a persistent grid)
summed in torch: deterministic, no atomics.
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
    empty_like,
    emulate_bf16_rne,
    num_warps,
    persistent_programs,
    row_tile,
)
from mixology.ops.norms.checks import check_norm_input


@triton.jit
def _norm_fwd_kernel(x_ptr, w_ptr, b_ptr, y_ptr, mean_ptr, rstd_ptr, n_rows, T, D,
                     sxb, sxt, sxd, eps_ptr, RMS: tl.constexpr, ACC: tl.constexpr,
                     EMULATE_RNE: tl.constexpr, BLOCK_ROWS: tl.constexpr, BLOCK_D: tl.constexpr):
    rows = (tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)).to(tl.int64)[:, None]
    cols = tl.arange(0, BLOCK_D)[None, :]
    row_ok = rows < n_rows
    mask = row_ok & (cols < D)
    x = tl.load(x_ptr + (rows // T) * sxb + (rows % T) * sxt + cols.to(tl.int64) * sxd, mask=mask,
                other=0.0).to(ACC)
    if RMS:
        mean = tl.zeros([BLOCK_ROWS], dtype=ACC)
        xc = x
    else:
        mean = tl.sum(x, axis=1) / D
        xc = tl.where(mask, x - mean[:, None], 0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(xc * xc, axis=1) / D + tl.load(eps_ptr))
    y = xc * rstd[:, None] * tl.load(w_ptr + cols, mask=cols < D, other=0.0).to(ACC)
    if not RMS:
        y += tl.load(b_ptr + cols, mask=cols < D, other=0.0).to(ACC)
    tl.store(y_ptr + rows * D + cols, cast_out(y, y_ptr.dtype.element_ty, EMULATE_RNE), mask=mask)
    tl.store(mean_ptr + rows, mean[:, None], mask=row_ok)
    tl.store(rstd_ptr + rows, rstd[:, None], mask=row_ok)


@triton.jit
def _norm_bwd_kernel(x_ptr, w_ptr, dy_ptr, mean_ptr, rstd_ptr, dx_ptr, dw_ptr, db_ptr,
                     n_rows, T, D, sxb, sxt, sxd, syb, syt, syd,
                     RMS: tl.constexpr, ACC: tl.constexpr, EMULATE_RNE: tl.constexpr,
                     BLOCK_ROWS: tl.constexpr, BLOCK_D: tl.constexpr):
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK_D)[None, :]
    col_ok = cols < D
    w = tl.load(w_ptr + cols, mask=col_ok, other=0.0).to(ACC)
    dw = tl.zeros([1, BLOCK_D], dtype=ACC)
    db = tl.zeros([1, BLOCK_D], dtype=ACC)
    for tile in range(pid, tl.cdiv(n_rows, BLOCK_ROWS), tl.num_programs(0)):
        rows = (tile * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)).to(tl.int64)[:, None]
        row_ok = rows < n_rows
        mask = row_ok & col_ok
        x = tl.load(x_ptr + (rows // T) * sxb + (rows % T) * sxt + cols.to(tl.int64) * sxd, mask=mask,
                    other=0.0).to(ACC)
        mean = tl.load(mean_ptr + rows, mask=row_ok, other=0.0)
        rstd = tl.load(rstd_ptr + rows, mask=row_ok, other=0.0)
        xhat = tl.where(mask, (x - mean) * rstd, 0.0)
        dy = tl.load(dy_ptr + (rows // T) * syb + (rows % T) * syt + cols.to(tl.int64) * syd, mask=mask,
                     other=0.0).to(ACC)
        g = dy * w
        dx = g - xhat * (tl.sum(xhat * g, axis=1)[:, None] / D)
        if not RMS:
            dx -= tl.sum(g, axis=1)[:, None] / D
        tl.store(dx_ptr + rows * D + cols, cast_out(dx * rstd, dx_ptr.dtype.element_ty,
                                                    EMULATE_RNE), mask=mask)
        dw += tl.sum(dy * xhat, axis=0)[None, :]
        db += tl.sum(dy, axis=0)[None, :]
    tl.store(dw_ptr + pid.to(tl.int64) * D + cols, dw, mask=col_ok)
    tl.store(db_ptr + pid.to(tl.int64) * D + cols, db, mask=col_ok)


def _stats_dtype(x):
    return accumulation_dtype(x.dtype)


def forward(x, weight, bias, eps, rms):
    B, T, D = x.shape
    y = empty((B, T, D), x.dtype, x.device)
    mean = empty(B * T, _stats_dtype(x), x.device)
    rstd = empty_like(mean)
    # eps as a tensor: a Python float would reach the kernel as float32
    eps_t = torch.full((1,), eps, dtype=_stats_dtype(x), device=x.device)
    block_rows, block_d = row_tile(D)
    if y.numel():
        _norm_fwd_kernel[(triton.cdiv(B * T, block_rows),)](
            x, weight, weight if bias is None else bias, y, mean, rstd, B * T, T, D,
            *x.stride(), eps_t, RMS=rms, ACC=acc_dtype(x.dtype),
            EMULATE_RNE=emulate_bf16_rne(x.dtype), BLOCK_ROWS=block_rows, BLOCK_D=block_d,
            num_warps=num_warps(block_rows, block_d))
    return y, mean, rstd


def backward(dy, x, weight, mean, rstd, rms):
    B, T, D = x.shape
    block_rows, block_d = row_tile(D)
    n_programs = persistent_programs(triton.cdiv(B * T, block_rows), x.device)
    dx = empty((B, T, D), x.dtype, x.device)
    dw = torch.zeros((max(n_programs, 1), D), dtype=_stats_dtype(x), device=x.device)
    db = torch.zeros_like(dw)
    if n_programs > 0 and D > 0:
        _norm_bwd_kernel[(n_programs,)](
            x, weight, dy, mean, rstd, dx, dw, db, B * T, T, D, *x.stride(), *dy.stride(),
            RMS=rms, ACC=acc_dtype(x.dtype), EMULATE_RNE=emulate_bf16_rne(x.dtype),
            BLOCK_ROWS=block_rows, BLOCK_D=block_d, num_warps=num_warps(block_rows, block_d))
    return dx, dw.sum(0).to(weight.dtype), db.sum(0).to(weight.dtype)


class _Norm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps, rms):
        # the kernels read weight and bias as contiguous vectors: a strided or expanded one (a
        # slice of a fused parameter, say) is copied first, D elements beside B·T·D
        weight = weight.contiguous()
        bias = None if bias is None else bias.contiguous()
        y, mean, rstd = forward(x, weight, bias, eps, rms)
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.rms = rms
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, mean, rstd = ctx.saved_tensors
        dx, dw, db = backward(dy, x, weight, mean, rstd, ctx.rms)
        return dx, dw, None if ctx.rms else db, None, None


def layer_norm(x, weight, bias, eps=1e-5):
    check_norm_input(x, weight, bias, eps)
    check_runnable(x)
    return _Norm.apply(x, weight, bias, eps, False)


def rms_norm(x, weight, eps=1e-5):
    check_norm_input(x, weight, None, eps, has_bias=False)
    check_runnable(x)
    return _Norm.apply(x, weight, None, eps, True)
