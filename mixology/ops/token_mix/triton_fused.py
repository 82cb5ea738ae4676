"""The TokenMixer block ``LayerNorm(x + token_mix(x))`` as one fused Triton kernel, with backward.

Forward: each program takes whole output rows, gathers the mixed row straight from x (no
intermediate mixed tensor), adds the residual row, and normalizes in fp32 (fp64 for fp64
inputs); it saves only the per-row mean and 1/std.

Backward: z = x + mix(x), so dx = dz + unmix(dz) where dz is LayerNorm's input gradient.
Kernel 1 recomputes z from x (cheaper than storing it), writes dz and per-program partial
sums for dweight/dbias; the permutation kernel then forms ``dz + unmix(dz)`` in one pass.
Rows of D > 4096 (BLOCK_D >= 8192) leave dweight/dbias to a column kernel
(``_fused_dwdb_kernel``), which reads x and dy again: the row kernel then holds no
accumulators, and does not spill.
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
    persistent_programs,
    row_tile,
)
from mixology.ops.token_mix.checks import check_mixer_input
from mixology.ops.token_mix.triton_index import source_offsets
from mixology.ops.token_mix.triton_permute import permute


@triton.jit
def _fused_fwd_kernel(x_ptr, w_ptr, b_ptr, y_ptr, mean_ptr, rstd_ptr,
                      n_rows, n_cols, T, D, HEAD_DIM, sxb, sxt, sxd, eps_ptr,
                      ACC: tl.constexpr, EMULATE_RNE: tl.constexpr,
                      BLOCK_ROWS: tl.constexpr, BLOCK_D: tl.constexpr):
    rows = (tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)).to(tl.int64)[:, None]
    cols = tl.arange(0, BLOCK_D)[None, :]
    row_ok = rows < n_rows
    mask = row_ok & (cols < n_cols)
    mixed = tl.load(x_ptr + source_offsets(rows, cols, T, D, HEAD_DIM, sxb, sxt, sxd, False),
                    mask=mask, other=0.0)
    resid = tl.load(x_ptr + (rows // T) * sxb + (rows % T) * sxt + cols.to(tl.int64) * sxd,
                    mask=mask, other=0.0)
    z = resid.to(ACC) + mixed.to(ACC)
    mean = tl.sum(z, axis=1) / n_cols
    zc = tl.where(mask, z - mean[:, None], 0.0)
    var = tl.sum(zc * zc, axis=1) / n_cols
    rstd = 1.0 / tl.sqrt(var + tl.load(eps_ptr))
    w = tl.load(w_ptr + cols, mask=cols < n_cols, other=0.0).to(ACC)
    b = tl.load(b_ptr + cols, mask=cols < n_cols, other=0.0).to(ACC)
    y = zc * rstd[:, None] * w + b
    tl.store(y_ptr + rows * D + cols, cast_out(y, y_ptr.dtype.element_ty, EMULATE_RNE), mask=mask)
    tl.store(mean_ptr + rows, mean[:, None], mask=row_ok)
    tl.store(rstd_ptr + rows, rstd[:, None], mask=row_ok)


@triton.jit
def _xhat_dy(x_ptr, dy_ptr, mean_ptr, rstd_ptr, rows, cols, T, D, HEAD_DIM,
             sxb, sxt, sxd, syb, syt, syd, mask, row_ok, ACC: tl.constexpr):
    """(x̂, dy, rstd): x̂ = (x + mix(x) - mean) · rstd recomputed from x and the saved row
    statistics, and dy, at (rows, cols), in ACC (zero outside ``mask``)."""
    mixed = tl.load(x_ptr + source_offsets(rows, cols, T, D, HEAD_DIM, sxb, sxt, sxd, False),
                    mask=mask, other=0.0)
    resid = tl.load(x_ptr + (rows // T) * sxb + (rows % T) * sxt + cols.to(tl.int64) * sxd,
                    mask=mask, other=0.0)
    mean = tl.load(mean_ptr + rows, mask=row_ok, other=0.0)
    rstd = tl.load(rstd_ptr + rows, mask=row_ok, other=0.0)
    xhat = tl.where(mask, (resid.to(ACC) + mixed.to(ACC) - mean) * rstd, 0.0)
    dy = tl.load(dy_ptr + (rows // T) * syb + (rows % T) * syt + cols.to(tl.int64) * syd,
                 mask=mask, other=0.0).to(ACC)
    return xhat, dy, rstd


@triton.jit
def _fused_bwd_kernel(x_ptr, w_ptr, dy_ptr, mean_ptr, rstd_ptr, dz_ptr, dw_ptr, db_ptr,
                      n_rows, T, D, HEAD_DIM, sxb, sxt, sxd, syb, syt, syd,
                      ACC: tl.constexpr, EMULATE_RNE: tl.constexpr,
                      BLOCK_ROWS: tl.constexpr, BLOCK_D: tl.constexpr,
                      RELOAD_W: tl.constexpr, DWDB: tl.constexpr):
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK_D)[None, :]
    col_ok = cols < D
    if not RELOAD_W:
        w = tl.load(w_ptr + cols, mask=col_ok, other=0.0).to(ACC)
    dw = tl.zeros([1, BLOCK_D], dtype=ACC)
    db = tl.zeros([1, BLOCK_D], dtype=ACC)
    for tile in range(pid, tl.cdiv(n_rows, BLOCK_ROWS), tl.num_programs(0)):
        rows = (tile * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)).to(tl.int64)[:, None]
        row_ok = rows < n_rows
        mask = row_ok & col_ok
        xhat, dy, rstd = _xhat_dy(x_ptr, dy_ptr, mean_ptr, rstd_ptr, rows, cols, T, D, HEAD_DIM,
                                  sxb, sxt, sxd, syb, syt, syd, mask, row_ok, ACC)
        if RELOAD_W:  # the widest rows read w again each tile (from cache), not held: one
            # whole-row tile fewer in registers; narrower rows keep it (reloading costs
            # them registers)
            w = tl.load(w_ptr + cols, mask=col_ok, other=0.0).to(ACC)
        g = dy * w
        c1 = tl.sum(xhat * g, axis=1)[:, None] / D
        c2 = tl.sum(g, axis=1)[:, None] / D
        dz = (g - xhat * c1 - c2) * rstd
        tl.store(dz_ptr + rows * D + cols, cast_out(dz, dz_ptr.dtype.element_ty, EMULATE_RNE),
                 mask=mask)
        if DWDB:
            dw += tl.sum(dy * xhat, axis=0)[None, :]
            db += tl.sum(dy, axis=0)[None, :]
    if DWDB:
        tl.store(dw_ptr + pid.to(tl.int64) * D + cols, dw, mask=col_ok)
        tl.store(db_ptr + pid.to(tl.int64) * D + cols, db, mask=col_ok)


@triton.jit
def _fused_dwdb_kernel(x_ptr, dy_ptr, mean_ptr, rstd_ptr, dw_ptr, db_ptr,
                       n_rows, T, D, HEAD_DIM, sxb, sxt, sxd, syb, syt, syd,
                       ACC: tl.constexpr, BLOCK_ROWS: tl.constexpr, BLOCK_C: tl.constexpr):
    """dweight and dbias of wide rows, by columns: program (c, r) sums columns
    c·BLOCK_C.. of dy·x̂ and dy over row tiles r, r + n, r + 2n, ... into row r of the
    partial sums (x̂ recomputed from x, mean and rstd, as the row kernel does)."""
    pid_c = tl.program_id(0)
    pid_r = tl.program_id(1)
    cols = (pid_c * BLOCK_C + tl.arange(0, BLOCK_C))[None, :]
    col_ok = cols < D
    dw = tl.zeros([BLOCK_ROWS, BLOCK_C], dtype=ACC)
    db = tl.zeros([BLOCK_ROWS, BLOCK_C], dtype=ACC)
    for tile in range(pid_r, tl.cdiv(n_rows, BLOCK_ROWS), tl.num_programs(1)):
        rows = (tile * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)).to(tl.int64)[:, None]
        row_ok = rows < n_rows
        mask = row_ok & col_ok
        xhat, dy, rstd = _xhat_dy(x_ptr, dy_ptr, mean_ptr, rstd_ptr, rows, cols, T, D, HEAD_DIM,
                                  sxb, sxt, sxd, syb, syt, syd, mask, row_ok, ACC)
        dw += dy * xhat
        db += dy
    out = pid_r.to(tl.int64) * D + cols
    tl.store(dw_ptr + out, tl.sum(dw, axis=0)[None, :], mask=col_ok)
    tl.store(db_ptr + out, tl.sum(db, axis=0)[None, :], mask=col_ok)


def forward_launch(x, weight, bias, eps, num_heads, *, grid, n_cols):
    """Run the forward kernel with an explicit launch; returns (y, mean, rstd)."""
    B, T, D = x.shape
    stats_dtype = accumulation_dtype(x.dtype)
    y = empty((B, T, D), x.dtype, x.device)
    mean = empty(B * T, stats_dtype, x.device)
    rstd = empty(B * T, stats_dtype, x.device)
    # eps travels as a tensor: Triton would pass a Python float as float32, and float64
    # inputs must be normalized with eps in float64.
    eps_t = torch.full((1,), eps, dtype=stats_dtype, device=x.device)
    block_rows, block_d = row_tile(D)
    if grid[0] > 0:
        _fused_fwd_kernel[grid](
            x, weight, bias, y, mean, rstd, B * T, n_cols, T, D, D // num_heads,
            *x.stride(), eps_t, ACC=acc_dtype(x.dtype), EMULATE_RNE=emulate_bf16_rne(x.dtype),
            BLOCK_ROWS=block_rows, BLOCK_D=block_d, num_warps=num_warps(block_rows, block_d),
        )
    return y, mean, rstd


def fused_forward(x, weight, bias, eps, num_heads):
    check_runnable(x)
    B, T, D = x.shape
    block_rows, _ = row_tile(D)
    return forward_launch(x, weight, bias, eps, num_heads,
                          grid=(triton.cdiv(B * T, block_rows),), n_cols=D)


WIDE = 8192  # BLOCK_D from which dweight/dbias leave the row kernel for a column kernel
DWDB_TILE = (8, 256)  # the column kernel's (rows, columns) tile, 8 values a thread (8 warps)


def fused_backward(dy, x, weight, mean, rstd, num_heads):
    B, T, D = x.shape
    n_rows = B * T
    block_rows, block_d = row_tile(D)
    n_programs = persistent_programs(triton.cdiv(n_rows, block_rows), x.device)
    acc = accumulation_dtype(x.dtype)
    wide = block_d >= WIDE
    dz = empty((B, T, D), x.dtype, x.device)
    if wide:  # the column kernel's partial sums: a row per row-split of its grid
        rows2, cols2 = DWDB_TILE
        n_cols = triton.cdiv(D, cols2)
        n_split = max(1, persistent_programs(triton.cdiv(n_rows, rows2), x.device) // n_cols)
        dw = torch.zeros((n_split, D), dtype=acc, device=x.device)
    else:
        dw = torch.zeros((max(n_programs, 1), D), dtype=acc, device=x.device)
    db = torch.zeros_like(dw)
    if n_programs > 0:
        # the widest rows: no dweight/dbias accumulators and the weight re-read each tile,
        # two whole-row tiles fewer in registers (D = 8192 spilled 96 B on sm_90: gpu-check)
        _fused_bwd_kernel[(n_programs,)](
            x, weight, dy, mean, rstd, dz, dw, db, n_rows, T, D, D // num_heads,
            *x.stride(), *dy.stride(),
            ACC=acc_dtype(x.dtype), EMULATE_RNE=emulate_bf16_rne(x.dtype),
            BLOCK_ROWS=block_rows, BLOCK_D=block_d, RELOAD_W=wide, DWDB=not wide,
            num_warps=num_warps(block_rows, block_d),
        )
        if wide:
            _fused_dwdb_kernel[(n_cols, n_split)](
                x, dy, mean, rstd, dw, db, n_rows, T, D, D // num_heads,
                *x.stride(), *dy.stride(), ACC=acc_dtype(x.dtype),
                BLOCK_ROWS=rows2, BLOCK_C=cols2, num_warps=8,
            )
    dx = permute(dz, num_heads, inverse=True, residual=dz)
    return dx, dw.sum(0).to(weight.dtype), db.sum(0).to(weight.dtype)


class _FusedTokenMixer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps, num_heads):
        # the kernels read weight and bias as contiguous vectors: a strided or expanded one (a
        # slice of a fused parameter, say) is copied first, D elements beside B·T·D
        weight = weight.contiguous()
        bias = None if bias is None else bias.contiguous()
        y, mean, rstd = fused_forward(x, weight, bias, eps, num_heads)
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.num_heads = num_heads
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, mean, rstd = ctx.saved_tensors
        dx, dw, db = fused_backward(dy, x, weight, mean, rstd, ctx.num_heads)
        return dx, dw, db, None, None


def token_mixer(x, num_heads, weight, bias, eps=1e-5):
    check_mixer_input(x, num_heads, weight, bias, eps)
    return _FusedTokenMixer.apply(x, weight, bias, eps, num_heads)
