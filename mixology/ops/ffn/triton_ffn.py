"""The feed-forward layer with its elementwise stage as one fused Triton kernel.

The projections are torch matmuls (in x's dtype); the kernel fuses what lies between them,
h = act(a + b1) ⊙ mask with a = x W1 and mask the op's dropout mask (0 or 1/(1 - p), from
reference.dropout_mask; none at p = 0), forward and backward: dz = g ⊙ mask ⊙ act'(a + b1),
with relu'(z) = [z > 0], gelu'(z) = Φ(z) + z φ(z) (exact erf GELU) and
silu'(z) = σ(z)(1 + z(1 - σ(z))). One read of a (and the mask) and one write, where eager torch
makes three or four passes (bias, activation, mask, and their backward); computed in float32
(float64 for float64), rounded once. db1 is dz summed over tokens.

The mask is read, not drawn in the kernel: so this kernel drops the units the reference
drops, and `feed_dropout_matches_reference` holds it to the reference in every dtype.
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
from mixology.ops.ffn.reference import feed_forward_mask

BLOCK = 1024
ACT_CODE = {"relu": 0, "gelu": 1, "silu": 2}


@triton.jit
def _act_fwd_kernel(a_ptr, b1_ptr, mask_ptr, h_ptr, n, F, ACT: tl.constexpr, DROP: tl.constexpr,
                    ACC: tl.constexpr, EMULATE_RNE: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    z = tl.load(a_ptr + offs, mask=m, other=0.0).to(ACC)
    z += tl.load(b1_ptr + offs % F, mask=m, other=0.0).to(ACC)
    if ACT == 0:
        h = tl.where(z > 0, z, 0.0)
    elif ACT == 1:
        h = 0.5 * z * (1.0 + tl.math.erf(z * 0.7071067811865476))
    else:
        h = z / (1.0 + tl.exp(-z))
    if DROP:
        h = h * tl.load(mask_ptr + offs, mask=m, other=0.0).to(ACC)
    tl.store(h_ptr + offs, cast_out(h, h_ptr.dtype.element_ty, EMULATE_RNE), mask=m)


@triton.jit
def _act_bwd_kernel(a_ptr, b1_ptr, mask_ptr, g_ptr, dz_ptr, n, F, ACT: tl.constexpr,
                    DROP: tl.constexpr, ACC: tl.constexpr, EMULATE_RNE: tl.constexpr,
                    BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    z = tl.load(a_ptr + offs, mask=m, other=0.0).to(ACC)
    z += tl.load(b1_ptr + offs % F, mask=m, other=0.0).to(ACC)
    g = tl.load(g_ptr + offs, mask=m, other=0.0).to(ACC)
    if DROP:
        g = g * tl.load(mask_ptr + offs, mask=m, other=0.0).to(ACC)
    if ACT == 0:
        dact = tl.where(z > 0, 1.0, 0.0)
    elif ACT == 1:
        cdf = 0.5 * (1.0 + tl.math.erf(z * 0.7071067811865476))
        dact = cdf + z * tl.exp(-0.5 * z * z) * 0.3989422804014327
    else:
        s = 1.0 / (1.0 + tl.exp(-z))
        dact = s * (1.0 + z * (1.0 - s))
    tl.store(dz_ptr + offs, cast_out(g * dact, dz_ptr.dtype.element_ty, EMULATE_RNE), mask=m)


def _launch(kernel, a, b1, mask, *rest, act):
    n = a.numel()
    if n:
        kernel[(triton.cdiv(n, BLOCK),)](a, b1, a if mask is None else mask, *rest, n,
                                         b1.numel(), ACT=ACT_CODE[act], DROP=mask is not None,
                                         ACC=acc_dtype(a.dtype),
                                         EMULATE_RNE=emulate_bf16_rne(a.dtype), BLOCK=BLOCK)


class _BiasActDrop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b1, mask, act):
        a, b1 = a.contiguous(), b1.contiguous()
        mask = None if mask is None else mask.contiguous()
        ctx.save_for_backward(a, b1, mask)
        ctx.act = act
        h = empty_like(a)
        _launch(_act_fwd_kernel, a, b1, mask, h, act=act)
        return h

    @staticmethod
    def backward(ctx, g):
        a, b1, mask = ctx.saved_tensors
        dz = empty_like(a)
        _launch(_act_bwd_kernel, a, b1, mask, g.contiguous(), dz, act=ctx.act)
        return dz, dz.sum(dim=(0, 1)), None, None


def feed_forward(x, w1, b1, w2, b2, activation="gelu", dropout=0.0, seed=None):
    mask = feed_forward_mask(x, w1, b1, w2, b2, activation, dropout, seed)
    check_runnable(x)
    return _BiasActDrop.apply(x @ w1, b1, mask, activation) @ w2 + b2
