"""Linear attention as Triton kernels, chunked, forward and backward.

The same algorithm as ``chunked.py`` (read that first), with chunks of BLOCK_T tokens and every
exponent relative to its chunk (Γ: the log-decays cumulated from the chunk's start, all <= 0;
Γ_last at its end):

    o_t   = Σ_{s<=t in chunk} exp(Γ_t − Γ_s) (q_t·k_s) v_s + exp(Γ_t) q_t S       (times scale)
    S    <- exp(Γ_last) S + Σ_s exp(Γ_last − Γ_s) k_s v_sᵀ

A program owns one (b, h) and BLOCK_V columns of d_v: the state block S (d_k x BLOCK_V) stays
in registers while it scans the chunks in order. Backward, with do = scale · ∂L/∂o (the scale
applied in torch, so that no Python float reaches a kernel) and the state gradient R carried
from the end (∂L/∂final_state, or 0):

    dq_t = Σ_{s<=t} exp(Γ_t − Γ_s)(do_t·v_s) k_s + exp(Γ_t) do_t Sᵀ               (forward scan)
    dk_s = Σ_{t>=s} exp(Γ_t − Γ_s)(do_t·v_s) q_t + exp(Γ_last − Γ_s) v_s Rᵀ       (reverse scan)
    dv_s = Σ_{t>=s} exp(Γ_t − Γ_s)(q_t·k_s) do_t + exp(Γ_last − Γ_s) k_s R
    R   <- exp(Γ_last) R + Σ_t exp(Γ_t) q_tᵀ do_t,        ∂L/∂initial_state = R at the start

dq and dk sum over d_v, so each v-block writes its partial (in float32, float64 for float64
inputs) and torch adds them: deterministic, no atomics. The decays' gradient follows from the
others: with G the cumulative log-decay over the sequence, ∂L/∂G_t = q_t·dq_t − k_t·dk_t (plus
⟨∂L/∂S_T, S_T⟩ at the last token), and ∂L/∂g is its reverse cumulative sum (done in torch).
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
from mixology.ops.linear_attention.checks import check_linear_attention

BLOCK_T = 16  # tokens per chunk (tl.dot needs at least 16 on GPU)
# The state block a program keeps in registers: BLOCK_K x BLOCK_V <= STATE_ELEMENTS 4-byte
# elements (at least 16 columns), with NUM_WARPS warps; a float64 state has half as many.
# Sized by `gpu-check` (sm_90 and sm_80): at the sweep's d = 16, 32, 64 a 64 x 64 block with
# 4 warps spilled 392-984 bytes a thread, 2048 elements with 8 warps spill nothing; at the
# spec's sizes a float64 64 x 32 block spilled 104-184 bytes in the backward (d = 33).
STATE_ELEMENTS = 2048
NUM_WARPS = 8


@triton.jit
def _store(ptr, base, t0, T, n_cols, col0, val, BLOCK_T: tl.constexpr, BLOCK_C: tl.constexpr):
    """Store into a contiguous (.., T, n_cols) buffer."""
    t = t0 + tl.arange(0, BLOCK_T)
    c = col0 + tl.arange(0, BLOCK_C)
    tl.store(ptr + base + t.to(tl.int64)[:, None] * n_cols + c.to(tl.int64)[None, :], val,
             mask=(t[:, None] < T) & (c[None, :] < n_cols))


@triton.jit
def _decays(g_ptr, gbase, t0, T, sgt, HAS_G: tl.constexpr, ACC: tl.constexpr,
            BLOCK_T: tl.constexpr):
    """Γ (BLOCK_T,): g cumulated from the chunk's start (0 past T, so the tail keeps Γ_last),
    and Γ_last."""
    t = t0 + tl.arange(0, BLOCK_T)
    if HAS_G:
        g = tl.load(g_ptr + gbase + t.to(tl.int64) * sgt, mask=t < T, other=0.0).to(ACC)
    else:
        g = tl.zeros((BLOCK_T,), dtype=ACC)
    gamma = tl.cumsum(g, 0)
    # Γ_last read off the cumulative sum itself: tl.sum(g) rounds otherwise, and then
    # exp(Γ_last − Γ_s) at s = last is not exactly 1 (3e-12 off at g = -1000 in float64)
    last = tl.sum(tl.where(tl.arange(0, BLOCK_T) == BLOCK_T - 1, gamma, 0.0), 0)
    return gamma, last


@triton.jit
def _fwd_kernel(q_ptr, k_ptr, v_ptr, g_ptr, s0_ptr, o_ptr, sT_ptr, H, T, dk, dv,
                sqb, sqh, sqt, sqd, skb, skh, skt, skd, svb, svh, svt, svd, sgb, sgh, sgt,
                ssb, ssh, ssk, ssv,
                HAS_G: tl.constexpr, HAS_S0: tl.constexpr, STORE_S: tl.constexpr,
                ACC: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_K: tl.constexpr,
                BLOCK_V: tl.constexpr):
    bh, pv = tl.program_id(0), tl.program_id(1)
    b, h = (bh // H).to(tl.int64), (bh % H).to(tl.int64)  # base offsets past 2^31 elements
    qb, kb, vb = b * sqb + h * sqh, b * skb + h * skh, b * svb + h * svh
    v0 = pv * BLOCK_V
    tt = tl.arange(0, BLOCK_T)
    causal = tt[:, None] >= tt[None, :]
    if HAS_S0:
        state = load_tile(s0_ptr, b * ssb + h * ssh, 0, dk, ssk, ssv, dv, v0, ACC, BLOCK_K, BLOCK_V)
    else:
        state = tl.zeros((BLOCK_K, BLOCK_V), dtype=ACC)
    for t0 in range(0, T, BLOCK_T):
        q = load_tile(q_ptr, qb, t0, T, sqt, sqd, dk, 0, ACC, BLOCK_T, BLOCK_K)
        k = load_tile(k_ptr, kb, t0, T, skt, skd, dk, 0, ACC, BLOCK_T, BLOCK_K)
        v = load_tile(v_ptr, vb, t0, T, svt, svd, dv, v0, ACC, BLOCK_T, BLOCK_V)
        gamma, last = _decays(g_ptr, b * sgb + h * sgh, t0, T, sgt, HAS_G, ACC, BLOCK_T)
        decay = tl.where(causal, tl.exp(gamma[:, None] - gamma[None, :]), 0.0)
        out = dot(dot(q, tl.trans(k), ACC) * decay, v, ACC)
        out += tl.exp(gamma)[:, None] * dot(q, state, ACC)
        _store(o_ptr, bh.to(tl.int64) * T * dv, t0, T, dv, v0, out, BLOCK_T, BLOCK_V)
        state = tl.exp(last) * state + dot(tl.trans(k * tl.exp(last - gamma)[:, None]), v, ACC)
    if STORE_S:
        _store(sT_ptr, bh.to(tl.int64) * dk * dv, 0, dk, dv, v0, state, BLOCK_K, BLOCK_V)


@triton.jit
def _bwd_dq_kernel(q_ptr, k_ptr, v_ptr, g_ptr, s0_ptr, do_ptr, dq_ptr, H, T, dk, dv,
                   sqb, sqh, sqt, sqd, skb, skh, skt, skd, svb, svh, svt, svd, sgb, sgh, sgt,
                   ssb, ssh, ssk, ssv, sob, soh, sot, sod,
                   HAS_G: tl.constexpr, HAS_S0: tl.constexpr,
                   ACC: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_K: tl.constexpr,
                   BLOCK_V: tl.constexpr):
    """Forward scan with the state: this v-block's partial dq (q itself is not read)."""
    bh, pv = tl.program_id(0), tl.program_id(1)
    b, h = (bh // H).to(tl.int64), (bh % H).to(tl.int64)
    kb, vb, ob = b * skb + h * skh, b * svb + h * svh, b * sob + h * soh
    v0 = pv * BLOCK_V
    out_base = (pv.to(tl.int64) * tl.num_programs(0) + bh) * T * dk
    tt = tl.arange(0, BLOCK_T)
    causal = tt[:, None] >= tt[None, :]
    if HAS_S0:
        state = load_tile(s0_ptr, b * ssb + h * ssh, 0, dk, ssk, ssv, dv, v0, ACC, BLOCK_K, BLOCK_V)
    else:
        state = tl.zeros((BLOCK_K, BLOCK_V), dtype=ACC)
    for t0 in range(0, T, BLOCK_T):
        k = load_tile(k_ptr, kb, t0, T, skt, skd, dk, 0, ACC, BLOCK_T, BLOCK_K)
        v = load_tile(v_ptr, vb, t0, T, svt, svd, dv, v0, ACC, BLOCK_T, BLOCK_V)
        do = load_tile(do_ptr, ob, t0, T, sot, sod, dv, v0, ACC, BLOCK_T, BLOCK_V)
        gamma, last = _decays(g_ptr, b * sgb + h * sgh, t0, T, sgt, HAS_G, ACC, BLOCK_T)
        decay = tl.where(causal, tl.exp(gamma[:, None] - gamma[None, :]), 0.0)
        dq = dot(dot(do, tl.trans(v), ACC) * decay, k, ACC)
        dq += tl.exp(gamma)[:, None] * dot(do, tl.trans(state), ACC)
        _store(dq_ptr, out_base, t0, T, dk, 0, dq, BLOCK_T, BLOCK_K)
        state = tl.exp(last) * state + dot(tl.trans(k * tl.exp(last - gamma)[:, None]), v, ACC)


@triton.jit
def _bwd_dkdv_kernel(q_ptr, k_ptr, v_ptr, g_ptr, do_ptr, dsT_ptr, dk_ptr, dv_ptr, ds0_ptr,
                     H, T, dk, dv,
                     sqb, sqh, sqt, sqd, skb, skh, skt, skd, svb, svh, svt, svd, sgb, sgh, sgt,
                     sob, soh, sot, sod, srb, srh, srk, srv,
                     HAS_G: tl.constexpr, HAS_DST: tl.constexpr, STORE_DS0: tl.constexpr,
                     ACC: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_K: tl.constexpr,
                     BLOCK_V: tl.constexpr):
    """Reverse scan with the state gradient R: this v-block's partial dk, its columns of dv
    and of ∂L/∂initial_state."""
    bh, pv = tl.program_id(0), tl.program_id(1)
    b, h = (bh // H).to(tl.int64), (bh % H).to(tl.int64)
    qb, kb, vb, ob = b * sqb + h * sqh, b * skb + h * skh, b * svb + h * svh, b * sob + h * soh
    v0 = pv * BLOCK_V
    dk_base = (pv.to(tl.int64) * tl.num_programs(0) + bh) * T * dk
    tt = tl.arange(0, BLOCK_T)
    anticausal = tt[:, None] <= tt[None, :]  # rows s, columns t: t >= s
    if HAS_DST:
        r = load_tile(dsT_ptr, b * srb + h * srh, 0, dk, srk, srv, dv, v0, ACC, BLOCK_K, BLOCK_V)
    else:
        r = tl.zeros((BLOCK_K, BLOCK_V), dtype=ACC)
    n_chunks = tl.cdiv(T, BLOCK_T)
    for c in range(0, n_chunks):
        t0 = (n_chunks - 1 - c) * BLOCK_T
        q = load_tile(q_ptr, qb, t0, T, sqt, sqd, dk, 0, ACC, BLOCK_T, BLOCK_K)
        k = load_tile(k_ptr, kb, t0, T, skt, skd, dk, 0, ACC, BLOCK_T, BLOCK_K)
        v = load_tile(v_ptr, vb, t0, T, svt, svd, dv, v0, ACC, BLOCK_T, BLOCK_V)
        do = load_tile(do_ptr, ob, t0, T, sot, sod, dv, v0, ACC, BLOCK_T, BLOCK_V)
        gamma, last = _decays(g_ptr, b * sgb + h * sgh, t0, T, sgt, HAS_G, ACC, BLOCK_T)
        # (s, t) = exp(Γ_t − Γ_s) for t >= s
        decay = tl.where(anticausal, tl.exp(gamma[None, :] - gamma[:, None]), 0.0)
        w = tl.exp(last - gamma)[:, None]
        dkc = dot(dot(v, tl.trans(do), ACC) * decay, q, ACC) + w * dot(v, tl.trans(r), ACC)
        dvc = dot(dot(k, tl.trans(q), ACC) * decay, do, ACC) + w * dot(k, r, ACC)
        _store(dk_ptr, dk_base, t0, T, dk, 0, dkc, BLOCK_T, BLOCK_K)
        _store(dv_ptr, bh.to(tl.int64) * T * dv, t0, T, dv, v0, dvc, BLOCK_T, BLOCK_V)
        r = tl.exp(last) * r + dot(tl.trans(q * tl.exp(gamma)[:, None]), do, ACC)
    if STORE_DS0:
        _store(ds0_ptr, bh.to(tl.int64) * dk * dv, 0, dk, dv, v0, r, BLOCK_K, BLOCK_V)


def blocks(dk: int, dv: int, acc: torch.dtype = torch.float32) -> tuple[int, int]:
    """(BLOCK_K, BLOCK_V): d_k padded (every key dim in one program), the d_v columns of a
    state block within STATE_ELEMENTS of 4 bytes in the accumulation dtype ``acc``."""
    block_k = max(16, triton.next_power_of_2(dk))
    budget = STATE_ELEMENTS * 4 // torch.empty((), dtype=acc).element_size()
    return block_k, max(16, min(triton.next_power_of_2(dv), budget // block_k))


def _strides(t, n):
    return t.stride() if t is not None else (0,) * n


def _common(q, k, v, g):
    B, H, T, dk = q.shape
    dv = v.shape[-1]
    block_k, block_v = blocks(dk, dv, accumulation_dtype(q.dtype))
    grid = (B * H, triton.cdiv(dv, block_v))
    meta = dict(ACC=acc_dtype(q.dtype), BLOCK_T=BLOCK_T, BLOCK_K=block_k, BLOCK_V=block_v,
                num_warps=NUM_WARPS)
    strides = (*q.stride(), *k.stride(), *v.stride(), *_strides(g, 3))
    return grid, meta, strides


def forward(q, k, v, g, s0, want_state):
    """(o without the scale, the final state or None), in the accumulation dtype."""
    B, H, T, dk = q.shape
    dv = v.shape[-1]
    acc = accumulation_dtype(q.dtype)
    o = empty((B, H, T, dv), acc, q.device)
    sT = empty((B, H, dk, dv), acc, q.device) if want_state else None
    if B * H and dv and (T or want_state):
        grid, meta, strides = _common(q, k, v, g)
        _fwd_kernel[grid](q, k, v, g if g is not None else q, s0 if s0 is not None else q, o,
                          sT if sT is not None else o, H, T, dk, dv, *strides,
                          *_strides(s0, 4), HAS_G=g is not None, HAS_S0=s0 is not None,
                          STORE_S=want_state, **meta)
    elif sT is not None:
        sT.zero_()
        if s0 is not None:
            sT += s0
    return o, sT


def backward(q, k, v, g, s0, do, dsT):
    """(dq, dk, dv, dS0 or None) for ``do`` = scale · ∂L/∂o, in the accumulation dtype."""
    B, H, T, dk = q.shape
    dv = v.shape[-1]
    acc = accumulation_dtype(q.dtype)
    grid, meta, strides = _common(q, k, v, g)
    n_v = grid[1]
    dq, dkp = empty((n_v, B, H, T, dk), acc, q.device), empty((n_v, B, H, T, dk), acc, q.device)
    dvv = empty((B, H, T, dv), acc, q.device)
    ds0 = empty((B, H, dk, dv), acc, q.device) if s0 is not None else None
    if not (B * H and dv):  # nothing to scan: no gradient but the final state's, if any
        for t in (dq, dkp, dvv, ds0):
            if t is not None:
                t.zero_()
        if ds0 is not None and dsT is not None:
            ds0 += dsT
    else:
        if T:
            _bwd_dq_kernel[grid](q, k, v, g if g is not None else q,
                                 s0 if s0 is not None else q, do, dq, H, T, dk, dv, *strides,
                                 *_strides(s0, 4), *do.stride(), HAS_G=g is not None,
                                 HAS_S0=s0 is not None, **meta)
        _bwd_dkdv_kernel[grid](q, k, v, g if g is not None else q, do,
                               dsT if dsT is not None else q, dkp, dvv,
                               ds0 if ds0 is not None else dvv, H, T, dk, dv, *strides,
                               *do.stride(), *_strides(dsT, 4), HAS_G=g is not None,
                               HAS_DST=dsT is not None, STORE_DS0=ds0 is not None, **meta)
    return dq.sum(0), dkp.sum(0), dvv, ds0


class _LinearAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, g, s0, scale, want_state):
        o, sT = forward(q, k, v, g, s0, want_state)
        ctx.save_for_backward(q, k, v, g, s0, sT)
        ctx.scale = scale
        return (scale * o).to(q.dtype), sT

    @staticmethod
    def backward(ctx, do, dsT):
        q, k, v, g, s0, sT = ctx.saved_tensors
        acc = accumulation_dtype(q.dtype)
        do = ctx.scale * do.to(acc)
        dsT = dsT.to(acc) if dsT is not None and sT is not None else None
        dq, dk, dv, ds0 = backward(q, k, v, g, s0, do, dsT)
        dg = None
        if g is not None and ctx.needs_input_grad[3]:
            dG = (q.to(acc) * dq).sum(-1) - (k.to(acc) * dk).sum(-1)
            if dsT is not None and dG.shape[-1]:
                dG[..., -1] += (dsT * sT).sum((-1, -2))
            dg = dG.flip(-1).cumsum(-1).flip(-1).to(g.dtype)
        return (dq.to(q.dtype), dk.to(q.dtype), dv.to(q.dtype), dg,
                ds0.to(s0.dtype) if ds0 is not None else None, None, None)


def linear_attention(q, k, v, g=None, scale=None, initial_state=None,
                     output_final_state=False):
    """The chunked Triton kernels; arguments and results as the reference's."""
    _, _, _, _, _, scale = check_linear_attention(q, k, v, g, scale, initial_state,
                                                  output_final_state)
    check_runnable(q)
    return _LinearAttention.apply(q, k, v, g, initial_state, scale, output_final_state)
