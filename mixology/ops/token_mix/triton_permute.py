"""Token mix / unmix as one Triton gather kernel; each is the other's backward.

Reads a strided (B, T, D) input directly (no ``.contiguous()`` copy), writes a contiguous
output, and can add a residual in the same pass (used by the fused mixer's backward).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from mixology.ops._kernels.triton_utils import (
    acc_dtype,
    cast_out,
    check_runnable,
    empty,
    emulate_bf16_rne,
    num_warps,
)
from mixology.ops.token_mix.checks import check_mix_input
from mixology.ops.token_mix.triton_index import source_offsets


@triton.jit
def _permute_kernel(x_ptr, res_ptr, out_ptr, n_rows, T, D, HEAD_DIM,
                    sxb, sxt, sxd, srb, srt, srd,
                    INVERSE: tl.constexpr, ADD_RESIDUAL: tl.constexpr, ACC: tl.constexpr,
                    EMULATE_RNE: tl.constexpr,
                    BLOCK_ROWS: tl.constexpr, BLOCK_D: tl.constexpr):
    rows = (tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)).to(tl.int64)[:, None]
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)[None, :]
    mask = (rows < n_rows) & (cols < D)
    src = source_offsets(rows, cols, T, D, HEAD_DIM, sxb, sxt, sxd, INVERSE)
    v = tl.load(x_ptr + src, mask=mask)
    if ADD_RESIDUAL:
        r = tl.load(res_ptr + (rows // T) * srb + (rows % T) * srt + cols.to(tl.int64) * srd, mask=mask)
        v = cast_out(v.to(ACC) + r.to(ACC), out_ptr.dtype.element_ty, EMULATE_RNE)
    tl.store(out_ptr + rows * D + cols, v, mask=mask)


def permute(x: torch.Tensor, num_heads: int, *, inverse: bool,
            residual: torch.Tensor | None = None) -> torch.Tensor:
    """mix (or unmix, ``inverse=True``) x, plus ``residual`` if given; output contiguous."""
    check_runnable(x)
    B, T, D = x.shape
    out = empty((B, T, D), x.dtype, x.device)
    n_rows = B * T
    if out.numel() == 0:
        return out
    block_d = min(triton.next_power_of_2(D), 1024)
    block_rows = max(1, min(64, 4096 // block_d))
    res = x if residual is None else residual
    grid = (triton.cdiv(n_rows, block_rows), triton.cdiv(D, block_d))
    _permute_kernel[grid](
        x, res, out, n_rows, T, D, D // num_heads, *x.stride(), *res.stride(),
        INVERSE=inverse, ADD_RESIDUAL=residual is not None, ACC=acc_dtype(x.dtype),
        EMULATE_RNE=emulate_bf16_rne(x.dtype),
        BLOCK_ROWS=block_rows, BLOCK_D=block_d,
        num_warps=num_warps(block_rows, block_d),
    )
    return out


class _TokenMix(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, num_heads, inverse):
        ctx.num_heads, ctx.inverse = num_heads, inverse
        return permute(x, num_heads, inverse=inverse)

    @staticmethod
    def backward(ctx, grad):
        # The gradient of a permutation is the inverse permutation of the upstream gradient.
        return permute(grad, ctx.num_heads, inverse=not ctx.inverse), None, None


def token_mix(x, num_heads):
    check_mix_input(x, num_heads)
    return _TokenMix.apply(x, num_heads, False)


def token_unmix(y, num_heads):
    check_mix_input(y, num_heads, name="y")
    return _TokenMix.apply(y, num_heads, True)
