"""Quadratic attention in linear time as Triton kernels: forward and backward.

The same algorithm as ``chunked.py`` (read that first): with φ(x) = x ⊗ x,
out_t = (1/d) [ Σ_{s<=t in chunk} (q_t·k_s)² v_s  +  φ(q_t)ᵀ S ],   S = Σ_{earlier chunks} φ(k_s) v_sᵀ.

The state S is d² x d_v. A program keeps one block of it in registers: the rows (i, j) for
BLOCK_I values of i and every j, times BLOCK_E columns of d_v. The grid is
(B*H, i-blocks, e-blocks); each program scans the chunks of its (b, h) in order. The
intra-chunk (quadratic) part is done once, by the i-block 0 programs. Every program writes its
own partial output tile (in float32, float64 for float64 inputs); the partials are summed in
torch, so results are deterministic (no atomics).

Backward, with g = ∂L/∂out and the same state S (forward scan) or R = Σ_{later chunks} φ(q_t) g_tᵀ
(reverse scan):
  dq_t = (2/d) [ Σ_{s<=t} (q_t·k_s)(g_t·v_s) k_s ],   inter part: dq_t,i = (2/d) Σ_j q_tj (S g_t)_(i,j)
  dk_s = (2/d) [ Σ_{t>=s} (q_t·k_s)(g_t·v_s) q_t ],   inter part: dk_s,i = (2/d) Σ_j k_sj (R v_s)_(i,j)
  dv_s = (1/d) [ Σ_{t>=s} (q_t·k_s)² g_t ],            inter part: φ(k_s)ᵀ R / d
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from mixology.numerics.dtypes import accumulation_dtype
from mixology.ops._kernels.triton_utils import (
    acc_dtype,
    check_runnable,
    dot,
    empty,
    load_tile,
)
from mixology.ops.attention.checks import check_qkv
from mixology.ops.checks import check_positive_int

BLOCK_T = 16  # tokens per chunk (tl.dot needs at least 16 on GPU)
# The state block a program keeps in registers: BLOCK_I * BLOCK_D * BLOCK_E elements (at least
# one i-row: BLOCK_D * BLOCK_E <= 4096), with NUM_WARPS warps. Sized by `gpu-check` (sm_90, the
# sweep's d = 16, 32, 64): 2048 elements (4096 at d >= 64) with 8 warps spill nothing.
STATE_ELEMENTS = 2048
NUM_WARPS = 8


@triton.jit
def _store(ptr, base, t0, T, n_cols, col0, val, BLOCK_T: tl.constexpr, BLOCK_C: tl.constexpr):
    """Store into a contiguous (.., T, n_cols) partial buffer."""
    t = t0 + tl.arange(0, BLOCK_T)
    c = col0 + tl.arange(0, BLOCK_C)
    tl.store(ptr + base + t.to(tl.int64)[:, None] * n_cols + c[None, :], val,
             mask=(t[:, None] < T) & (c[None, :] < n_cols))


@triton.jit
def _phi(xi, x, BLOCK_T: tl.constexpr, BLOCK_I: tl.constexpr, BLOCK_D: tl.constexpr):
    """Rows (i, j) of φ(x) = x ⊗ x for the i of this block: (BLOCK_T, BLOCK_I * BLOCK_D)."""
    return tl.reshape(xi[:, :, None] * x[:, None, :], (BLOCK_T, BLOCK_I * BLOCK_D))


@triton.jit
def _contract_i(m, x, i0, ACC: tl.constexpr, BLOCK_I: tl.constexpr, BLOCK_D: tl.constexpr):
    """Σ_j m[t, (i, j)] x[t, j], placed at columns i0 + i of a (BLOCK_T, BLOCK_D) tile.

    Two products with 0/1 matrices, exact in ACC: x[t, j] copied to every column (i, j), then
    the columns of each i summed into column i0 + i. (Reshaping m, a dot's result, to
    (BLOCK_T, BLOCK_I, BLOCK_D) and reducing it gave wrong values on sm_90 with Triton 3.6,
    and right ones under the interpreter.)"""
    c = tl.arange(0, BLOCK_I * BLOCK_D)
    spread = (c[None, :] % BLOCK_D) == tl.arange(0, BLOCK_D)[:, None]  # (BLOCK_D, I*D)
    gather = (i0 + c[:, None] // BLOCK_D) == tl.arange(0, BLOCK_D)[None, :]  # (I*D, BLOCK_D)
    return dot(m * dot(x, spread.to(ACC), ACC), gather.to(ACC), ACC)


@triton.jit
def _fwd_kernel(q_ptr, k_ptr, v_ptr, o_ptr, H, T, d, dv, inv_d_ptr,
                sqb, sqh, sqt, sqd, skb, skh, skt, skd, svb, svh, svt, svd,
                ACC: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
                BLOCK_I: tl.constexpr, BLOCK_E: tl.constexpr):
    bh, pi, pe = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    inv_d = tl.load(inv_d_ptr)  # 1/d in ACC: a Python float would reach the kernel as float32
    b, h = bh // H, bh % H
    b, h = b.to(tl.int64), h.to(tl.int64)  # base offsets past 2^31 elements
    qb, kb, vb = b * sqb + h * sqh, b * skb + h * skh, b * svb + h * svh
    i0, e0 = pi * BLOCK_I, pe * BLOCK_E
    out_base = (pi.to(tl.int64) * tl.num_programs(0) + bh) * T * dv
    tt = tl.arange(0, BLOCK_T)
    causal = tt[:, None] >= tt[None, :]
    state = tl.zeros((BLOCK_I * BLOCK_D, BLOCK_E), dtype=ACC)
    for t0 in range(0, T, BLOCK_T):
        q = load_tile(q_ptr, qb, t0, T, sqt, sqd, d, 0, ACC, BLOCK_T, BLOCK_D)
        k = load_tile(k_ptr, kb, t0, T, skt, skd, d, 0, ACC, BLOCK_T, BLOCK_D)
        v = load_tile(v_ptr, vb, t0, T, svt, svd, dv, e0, ACC, BLOCK_T, BLOCK_E)
        qi = load_tile(q_ptr, qb, t0, T, sqt, sqd, d, i0, ACC, BLOCK_T, BLOCK_I)
        ki = load_tile(k_ptr, kb, t0, T, skt, skd, d, i0, ACC, BLOCK_T, BLOCK_I)
        out = dot(_phi(qi, q, BLOCK_T, BLOCK_I, BLOCK_D), state, ACC)
        if pi == 0:
            s = dot(q, tl.trans(k), ACC)
            out += dot(tl.where(causal, s * s, 0.0), v, ACC)
        _store(o_ptr, out_base, t0, T, dv, e0, out * inv_d, BLOCK_T, BLOCK_E)
        state += dot(tl.trans(_phi(ki, k, BLOCK_T, BLOCK_I, BLOCK_D)), v, ACC)


@triton.jit
def _bwd_dq_kernel(q_ptr, k_ptr, v_ptr, g_ptr, dq_ptr, H, T, d, dv, inv_d_ptr,
                   sqb, sqh, sqt, sqd, skb, skh, skt, skd, svb, svh, svt, svd,
                   sgb, sgh, sgt, sgd,
                   ACC: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
                   BLOCK_I: tl.constexpr, BLOCK_E: tl.constexpr):
    """Forward scan with S: partial dq for (i-block, e-block)."""
    bh, pi, pe = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    inv_d = tl.load(inv_d_ptr)  # 1/d in ACC: a Python float would reach the kernel as float32
    b, h = bh // H, bh % H
    b, h = b.to(tl.int64), h.to(tl.int64)  # base offsets past 2^31 elements
    qb, kb, vb, gb = b * sqb + h * sqh, b * skb + h * skh, b * svb + h * svh, b * sgb + h * sgh
    i0, e0 = pi * BLOCK_I, pe * BLOCK_E
    part = pi.to(tl.int64) * tl.num_programs(2) + pe
    out_base = (part * tl.num_programs(0) + bh) * T * d
    tt = tl.arange(0, BLOCK_T)
    causal = tt[:, None] >= tt[None, :]
    state = tl.zeros((BLOCK_I * BLOCK_D, BLOCK_E), dtype=ACC)
    for t0 in range(0, T, BLOCK_T):
        q = load_tile(q_ptr, qb, t0, T, sqt, sqd, d, 0, ACC, BLOCK_T, BLOCK_D)
        k = load_tile(k_ptr, kb, t0, T, skt, skd, d, 0, ACC, BLOCK_T, BLOCK_D)
        v = load_tile(v_ptr, vb, t0, T, svt, svd, dv, e0, ACC, BLOCK_T, BLOCK_E)
        g = load_tile(g_ptr, gb, t0, T, sgt, sgd, dv, e0, ACC, BLOCK_T, BLOCK_E)
        ki = load_tile(k_ptr, kb, t0, T, skt, skd, d, i0, ACC, BLOCK_T, BLOCK_I)
        sg = dot(g, tl.trans(state), ACC)  # (t, (i, j)) = Σ_e g_te S[(i, j), e]
        dq = _contract_i(sg, q, i0, ACC, BLOCK_I, BLOCK_D)
        if pi == 0:
            a = dot(q, tl.trans(k), ACC)
            dp = dot(g, tl.trans(v), ACC)
            dq += dot(tl.where(causal, a * dp, 0.0), k, ACC)
        _store(dq_ptr, out_base, t0, T, d, 0, dq * (2 * inv_d), BLOCK_T, BLOCK_D)
        state += dot(tl.trans(_phi(ki, k, BLOCK_T, BLOCK_I, BLOCK_D)), v, ACC)


@triton.jit
def _bwd_dkdv_kernel(q_ptr, k_ptr, v_ptr, g_ptr, dk_ptr, dv_ptr, H, T, d, dv, inv_d_ptr,
                     sqb, sqh, sqt, sqd, skb, skh, skt, skd, svb, svh, svt, svd,
                     sgb, sgh, sgt, sgd,
                     ACC: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr,
                     BLOCK_I: tl.constexpr, BLOCK_E: tl.constexpr):
    """Reverse scan with R = Σ_{later chunks} φ(q_t) g_tᵀ: partial dk (i-block, e-block) and
    partial dv (i-block; e-blocks are disjoint)."""
    bh, pi, pe = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    inv_d = tl.load(inv_d_ptr)  # 1/d in ACC: a Python float would reach the kernel as float32
    b, h = bh // H, bh % H
    b, h = b.to(tl.int64), h.to(tl.int64)  # base offsets past 2^31 elements
    qb, kb, vb, gb = b * sqb + h * sqh, b * skb + h * skh, b * svb + h * svh, b * sgb + h * sgh
    i0, e0 = pi * BLOCK_I, pe * BLOCK_E
    n_bh = tl.num_programs(0)
    dk_base = ((pi.to(tl.int64) * tl.num_programs(2) + pe) * n_bh + bh) * T * d
    dv_base = (pi.to(tl.int64) * n_bh + bh) * T * dv
    tt = tl.arange(0, BLOCK_T)
    anticausal = tt[:, None] <= tt[None, :]  # rows s, columns t: t >= s
    state = tl.zeros((BLOCK_I * BLOCK_D, BLOCK_E), dtype=ACC)
    n_chunks = tl.cdiv(T, BLOCK_T)
    for c in range(0, n_chunks):
        t0 = (n_chunks - 1 - c) * BLOCK_T
        q = load_tile(q_ptr, qb, t0, T, sqt, sqd, d, 0, ACC, BLOCK_T, BLOCK_D)
        k = load_tile(k_ptr, kb, t0, T, skt, skd, d, 0, ACC, BLOCK_T, BLOCK_D)
        v = load_tile(v_ptr, vb, t0, T, svt, svd, dv, e0, ACC, BLOCK_T, BLOCK_E)
        g = load_tile(g_ptr, gb, t0, T, sgt, sgd, dv, e0, ACC, BLOCK_T, BLOCK_E)
        qi = load_tile(q_ptr, qb, t0, T, sqt, sqd, d, i0, ACC, BLOCK_T, BLOCK_I)
        ki = load_tile(k_ptr, kb, t0, T, skt, skd, d, i0, ACC, BLOCK_T, BLOCK_I)
        dvt = dot(_phi(ki, k, BLOCK_T, BLOCK_I, BLOCK_D), state, ACC)
        rv = dot(v, tl.trans(state), ACC)  # (s, (i, j)) = Σ_e v_se R[(i, j), e]
        dk = 2 * _contract_i(rv, k, i0, ACC, BLOCK_I, BLOCK_D)
        if pi == 0:
            at = dot(k, tl.trans(q), ACC)  # (s, t) = k_s · q_t
            dpt = dot(v, tl.trans(g), ACC)  # (s, t) = v_s · g_t over this e-block
            dvt += dot(tl.where(anticausal, at * at, 0.0), g, ACC)
            dk += 2 * dot(tl.where(anticausal, at * dpt, 0.0), q, ACC)
        _store(dk_ptr, dk_base, t0, T, d, 0, dk * inv_d, BLOCK_T, BLOCK_D)
        _store(dv_ptr, dv_base, t0, T, dv, e0, dvt * inv_d, BLOCK_T, BLOCK_E)
        state += dot(tl.trans(_phi(qi, q, BLOCK_T, BLOCK_I, BLOCK_D)), g, ACC)


def blocks(d: int, dv: int, state_elements: int = STATE_ELEMENTS) -> tuple[int, int, int]:
    """(BLOCK_D, BLOCK_I, BLOCK_E): padded d, the i-rows of the state per program, d_v columns."""
    block_d = max(16, triton.next_power_of_2(d))
    block_e = max(16, min(64, triton.next_power_of_2(dv), 4096 // block_d))
    block_i = max(1, min(triton.next_power_of_2(d), state_elements // (block_d * block_e)))
    return block_d, block_i, block_e


def n_blocks(d: int, dv: int, state_elements: int = STATE_ELEMENTS) -> tuple[int, int]:
    """(i-blocks, e-blocks): the programs per (b, h), and the partial results summed."""
    _, block_i, block_e = blocks(d, dv, state_elements)
    return triton.cdiv(d, block_i), triton.cdiv(dv, block_e)


def halves(d: int, dv: int) -> int:
    """The state_elements that split the state into two i-blocks (for d >= 2)."""
    block_d, _, block_e = blocks(d, dv)
    return min(STATE_ELEMENTS, block_d * block_e * max(1, triton.next_power_of_2(d) // 2))


def _inv_d(q):
    """1/d as a one-element tensor in the accumulation dtype: a Python float argument would
    reach the kernels as float32, and round a float64 result's scale."""
    return torch.full((1,), 1.0 / q.shape[-1], dtype=accumulation_dtype(q.dtype),
                      device=q.device)


def _launch(kernel, inputs, outputs, state_elements):
    """One scan over every (b, h): inputs (q, k, v[, g]) read with their strides."""
    q, v = inputs[0], inputs[2]
    B, H, T, d = q.shape
    dv = v.shape[-1]
    block_d, block_i, block_e = blocks(d, dv, state_elements)
    grid = (B * H, *n_blocks(d, dv, state_elements))
    strides = [s for t in inputs for s in t.stride()]
    kernel[grid](*inputs, *outputs, H, T, d, dv, _inv_d(q), *strides,
                 ACC=acc_dtype(q.dtype), BLOCK_T=BLOCK_T, BLOCK_D=block_d,
                 BLOCK_I=block_i, BLOCK_E=block_e, num_warps=NUM_WARPS)


def _partials(q, n_parts, cols):
    """A contiguous (n_parts, B*H, T, cols) buffer in the accumulation dtype."""
    B, H, T, _ = q.shape
    return empty((n_parts, B * H, T, cols), accumulation_dtype(q.dtype), q.device)


def _total(parts, like):
    return parts.sum(0).view(*like.shape[:3], parts.shape[-1]).to(like.dtype)


def forward(q, k, v, state_elements=STATE_ELEMENTS):
    n_i, _ = n_blocks(q.shape[-1], v.shape[-1], state_elements)
    out = _partials(q, n_i, v.shape[-1])
    if out.numel():
        _launch(_fwd_kernel, (q, k, v), (out,), state_elements)
    return _total(out, q)


def backward(q, k, v, g, state_elements=STATE_ELEMENTS):
    d, dv = q.shape[-1], v.shape[-1]
    n_i, n_e = n_blocks(d, dv, state_elements)
    dq, dk = _partials(q, n_i * n_e, d), _partials(q, n_i * n_e, d)
    dvp = _partials(q, n_i, dv)
    if dq.numel():
        _launch(_bwd_dq_kernel, (q, k, v, g), (dq,), state_elements)
        _launch(_bwd_dkdv_kernel, (q, k, v, g), (dk, dvp), state_elements)
    return _total(dq, q), _total(dk, q), _total(dvp, q)


class _QuadraticAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, state_elements):
        ctx.save_for_backward(q, k, v)
        ctx.state_elements = state_elements
        return forward(q, k, v, state_elements)

    @staticmethod
    def backward(ctx, g):
        return *backward(*ctx.saved_tensors, g, ctx.state_elements), None


def quadratic_attention(q, k, v, state_elements: int = STATE_ELEMENTS):
    check_qkv(q, k, v)
    check_positive_int(state_elements, "state_elements")
    check_runnable(q)
    return _QuadraticAttention.apply(q, k, v, state_elements)


def quadratic_attention_split(q, k, v):
    """The state split into two i-blocks: even the spec's small d (>= 2) sums partial
    results from two programs, so every property checks the split."""
    return quadratic_attention(q, k, v, state_elements=halves(q.shape[-1], v.shape[-1]))
