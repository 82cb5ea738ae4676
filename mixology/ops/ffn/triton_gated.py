"""SwiGLU and the bilinear layer with their elementwise stage as one fused Triton kernel.

The projections are torch matmuls (in x's dtype); the kernel fuses act(a) ⊙ b, where
a = x W_gate and b = x W_up (act = silu for SwiGLU, the identity for bilinear), forward and
backward: da = g ⊙ b ⊙ act'(a), db = g ⊙ act(a), with silu'(a) = σ(a)(1 + a(1 - σ(a))).
One read of a and b and one write, instead of the separate activation and product kernels;
computed in float32 (float64 for float64), rounded once.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from mixology.ops._kernels.triton_utils import (
    acc_dtype,
    cast_out,
    check_runnable,
    empty_like,
    emulate_bf16_rne,
)
from mixology.ops.ffn.checks import check_ffn_input

BLOCK = 1024


@triton.jit
def _gate_fwd_kernel(a_ptr, b_ptr, h_ptr, n, SILU: tl.constexpr, ACC: tl.constexpr,
                     EMULATE_RNE: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    a = tl.load(a_ptr + offs, mask=m, other=0.0).to(ACC)
    b = tl.load(b_ptr + offs, mask=m, other=0.0).to(ACC)
    if SILU:
        a = a / (1.0 + tl.exp(-a))
    tl.store(h_ptr + offs, cast_out(a * b, h_ptr.dtype.element_ty, EMULATE_RNE), mask=m)


@triton.jit
def _gate_bwd_kernel(a_ptr, b_ptr, g_ptr, da_ptr, db_ptr, n, SILU: tl.constexpr,
                     ACC: tl.constexpr, EMULATE_RNE: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    a = tl.load(a_ptr + offs, mask=m, other=0.0).to(ACC)
    b = tl.load(b_ptr + offs, mask=m, other=0.0).to(ACC)
    g = tl.load(g_ptr + offs, mask=m, other=0.0).to(ACC)
    if SILU:
        s = 1.0 / (1.0 + tl.exp(-a))
        act, dact = a * s, s * (1.0 + a * (1.0 - s))
    else:
        act, dact = a, 1.0
    dtype = da_ptr.dtype.element_ty
    tl.store(da_ptr + offs, cast_out(g * b * dact, dtype, EMULATE_RNE), mask=m)
    tl.store(db_ptr + offs, cast_out(g * act, dtype, EMULATE_RNE), mask=m)


def _launch(kernel, *tensors, silu):
    n = tensors[0].numel()
    if n:
        kernel[(triton.cdiv(n, BLOCK),)](*tensors, n, SILU=silu,
                                         ACC=acc_dtype(tensors[0].dtype),
                                         EMULATE_RNE=emulate_bf16_rne(tensors[0].dtype),
                                         BLOCK=BLOCK)


class _Gate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, silu):
        a, b = a.contiguous(), b.contiguous()
        ctx.save_for_backward(a, b)
        ctx.silu = silu
        h = empty_like(a)
        _launch(_gate_fwd_kernel, a, b, h, silu=silu)
        return h

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        da, db = empty_like(a), empty_like(b)
        _launch(_gate_bwd_kernel, a, b, g.contiguous(), da, db, silu=ctx.silu)
        return da, db, None


def _gated(x, w_a, w_b, w_out, silu):
    return _Gate.apply(x @ w_a, x @ w_b, silu) @ w_out


def swiglu(x, w_gate, w_up, w_down):
    check_ffn_input(x, {"w_gate": w_gate, "w_up": w_up, "w_down": w_down})
    check_runnable(x)
    return _gated(x, w_gate, w_up, w_down, True)


def bilinear(x, w1, w2, w_out):
    check_ffn_input(x, {"w1": w1, "w2": w2, "w_out": w_out})
    check_runnable(x)
    return _gated(x, w1, w2, w_out, False)
