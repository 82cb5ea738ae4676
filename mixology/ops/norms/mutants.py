"""Plausible buggy LayerNorm/RMSNorm implementations. The spec must reject every one."""

from __future__ import annotations

import torch

from mixology.ops._kernels.launch_mutants import fixed_row_tile, floor_grid, input_dtype_accumulator
from mixology.ops.norms.checks import check_norm_input
from mixology.registry import mutant

LN, RMS = "layer_norm", "rms_norm"


def _norm(x, weight, bias, eps, *, rms=False, subtract_mean=None, unbiased=False,
          eps_outside=False, acc_in_input_dtype=False, detach_stats=False, use_weight=True):
    check_norm_input(x, weight, bias, eps, has_bias=not rms)
    xf = x if acc_in_input_dtype else x.to(torch.float64 if x.dtype == torch.float64
                                           else torch.float32)
    center = (not rms) if subtract_mean is None else subtract_mean
    mean = xf.mean(-1, keepdim=True) if center else torch.zeros_like(xf[..., :1])
    xc = xf - mean
    D = x.shape[-1]
    second = (xc * xc).sum(-1, keepdim=True) / (max(D - 1, 1) if unbiased else D)
    if detach_stats:
        second = second.detach()
    rstd = 1 / (second.sqrt() + eps) if eps_outside else torch.rsqrt(second + eps)
    y = xc * rstd * (weight.to(xf.dtype) if use_weight else 1)
    if not rms:
        y = y + bias.to(xf.dtype)
    return y.to(x.dtype)


@mutant(LN)
def ln_unbiased_variance(x, weight, bias, eps=1e-5):
    """Variance divided by D - 1 (torch.var's default) instead of D."""
    return _norm(x, weight, bias, eps, unbiased=True)


@mutant(LN)
def ln_eps_outside_sqrt(x, weight, bias, eps=1e-5):
    """1 / (sqrt(var) + eps) instead of 1 / sqrt(var + eps)."""
    return _norm(x, weight, bias, eps, eps_outside=True)


@mutant(LN)
def ln_detached_variance(x, weight, bias, eps=1e-5):
    """The variance is detached: the gradient misses its term."""
    return _norm(x, weight, bias, eps, detach_stats=True)


@mutant(LN)
def ln_forgets_mean(x, weight, bias, eps=1e-5):
    """LayerNorm without subtracting the mean (an RMSNorm plus bias)."""
    return _norm(x, weight, bias, eps, subtract_mean=False)


@mutant(LN)
def ln_unchecked(x, weight, bias, eps=1e-5):
    """No input checks: a bad weight shape broadcasts or fails inside torch."""
    xf = x.float()
    m = xf.mean(-1, keepdim=True)
    v = ((xf - m) ** 2).mean(-1, keepdim=True)
    return ((xf - m) * torch.rsqrt(v + eps) * weight + bias).to(x.dtype)


@mutant(RMS)
def rms_subtracts_mean(x, weight, eps=1e-5):
    """RMSNorm that subtracts the mean first (a LayerNorm without bias)."""
    return _norm(x, weight, None, eps, rms=True, subtract_mean=True)


@mutant(RMS)
def rms_eps_outside_sqrt(x, weight, eps=1e-5):
    """1 / (rms + eps) instead of 1 / sqrt(ms + eps)."""
    return _norm(x, weight, None, eps, rms=True, eps_outside=True)


@mutant(RMS)
def rms_missing_weight(x, weight, eps=1e-5):
    """Forgets to multiply by the weight."""
    return _norm(x, weight, None, eps, rms=True, use_weight=False)


@mutant(RMS)
def rms_returns_float32(x, weight, eps=1e-5):
    """Returns the float32 accumulator without casting back to x's dtype."""
    check_norm_input(x, weight, None, eps, has_bias=False)
    xf = x.float() if x.dtype != torch.float64 else x
    return xf * torch.rsqrt((xf * xf).mean(-1, keepdim=True) + eps) * weight.to(xf.dtype)


@mutant(RMS)
def rms_unchecked(x, weight, eps=1e-5):
    """No input checks."""
    xf = x.float()
    return (xf * torch.rsqrt((xf * xf).mean(-1, keepdim=True) + eps) * weight).to(x.dtype)


@mutant(LN)
def ln_squeezes_singletons(x, weight, bias, eps=1e-5):
    """Calls .squeeze() on the result: the wrong shape when B or T is 1."""
    return _norm(x, weight, bias, eps).squeeze()


# --- kernel scale: only show past one tile, or on rows whose mean dwarfs their spread ------

@mutant(RMS)
def rms_sum_of_squares_first_tile(x, weight, eps=1e-5):
    """Σx² over the first 16 columns only (a reduction that forgot to loop over tiles)."""
    check_norm_input(x, weight, None, eps, has_bias=False)
    xf = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    ms = (xf[..., :16] ** 2).sum(-1, keepdim=True) / x.shape[-1]
    return (xf * torch.rsqrt(ms + eps) * weight.to(xf.dtype)).to(x.dtype)


@mutant(LN)
def ln_one_pass_variance(x, weight, bias, eps=1e-5):
    """Variance as E[x²] - E[x]² in float32 (one pass): cancels on rows with |mean| >> std."""
    check_norm_input(x, weight, bias, eps)
    xf = x.to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    mean = xf.mean(-1, keepdim=True)
    var = (xf * xf).mean(-1, keepdim=True) - mean * mean
    y = (xf - mean) * torch.rsqrt(var + eps) * weight.to(xf.dtype) + bias.to(xf.dtype)
    return y.to(x.dtype)


@mutant(RMS, needs="triton")
def rms_triton_first_tile_only(x, weight, eps=1e-5):
    """The Triton RMSNorm with BLOCK_D capped at 16: Σx² of the first tile, the rest unwritten."""
    # triton is optional: loaded where a kernel runs
    from mixology.ops.norms import triton_norm

    with fixed_row_tile(triton_norm):
        return triton_norm.rms_norm(x, weight, eps)


@mutant(LN, needs="triton")
def ln_triton_tail_rows_unwritten(x, weight, bias, eps=1e-5):
    """The Triton LayerNorm launched on n_rows // BLOCK_ROWS programs: the last rows unwritten."""
    # triton is optional: loaded where a kernel runs
    from mixology.ops.norms import triton_norm

    with floor_grid(triton_norm):
        return triton_norm.layer_norm(x, weight, bias, eps)


@mutant(LN, needs="triton")
def ln_triton_accumulates_in_input_dtype(x, weight, bias, eps=1e-5):
    """The Triton LayerNorm with its mean and variance accumulated in float16/bfloat16."""
    # triton is optional: loaded where a kernel runs
    from mixology.ops.norms import triton_norm

    with input_dtype_accumulator(triton_norm):
        return triton_norm.layer_norm(x, weight, bias, eps)
