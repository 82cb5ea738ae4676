"""Properties of LayerNorm (``impl(x, weight, bias, eps)``) and RMSNorm
(``impl(x, weight, eps)``) over the last dim of x: (B, T, D).

Shared properties are written once and registered for both ops; the invariances each norm
promises (RMSNorm: scale; LayerNorm: scale and shift) are the norm's own.
"""

from __future__ import annotations

import functools

import torch
from hypothesis import strategies as st

from mixology.ops.norms import reference as ref
from mixology.spec import prop, prop_each, signature
from mixology.spec.helpers import expect_rejected, leaf
from mixology.spec.numerics import assert_matches_reference
from mixology.spec.strategies import BadInput
from mixology.spec.token_mix import EPSILONS, mix_cases

# --- cases -------------------------------------------------------------------------------

def bad_norm_inputs(rms: bool):
    """Calls of ``layer_norm(x, weight, bias, eps)`` / ``rms_norm(x, weight, eps)`` that must
    raise TypeError/ValueError."""
    x, w = torch.randn(2, 3, 4), torch.ones(4)

    def args(x_=x, w_=w, eps=1e-5):
        return (x_, w_, eps) if rms else (x_, w_, torch.zeros(4, dtype=w_.dtype), eps)

    cases = [
        BadInput("x has ndim 2", args(x_=x[0]), ValueError, ("x", "(B, T, D)")),
        BadInput("x is int64", args(x_=x.long()), TypeError, ("x",)),
        BadInput("weight has another D", args(w_=w[:3]), ValueError, ("weight", "(D,)")),
        BadInput("weight is float64", args(w_=w.double()), TypeError, ("weight",)),
        BadInput("eps == 0", args(eps=0.0), ValueError, ("eps",)),
        BadInput("eps is a string", args(eps="1e-5"), TypeError, ("eps",)),
    ]
    if not rms:
        cases.append(BadInput("bias has another D", (x, w, torch.zeros(5), 1e-5), ValueError,
                              ("bias", "(D,)")))
    return st.sampled_from(cases)


# --- properties --------------------------------------------------------------------------
LN, RMS = "layer_norm", "rms_norm"
EPS = 1e-5
EPS64 = torch.finfo(torch.float64).eps
CASES = dict(num_heads=1, max_head_dim=12)  # D = 1 .. 12


def _call(op, impl, eps=EPS):
    """impl as a function of the tensors: (x, weight, bias) or (x, weight)."""
    if op == LN:
        return lambda x, w, b: impl(x, w, b, eps)
    return lambda x, w: impl(x, w, eps)


def _tensors(op, case, x=None):
    w, b = case.params()
    x = case.x() if x is None else x
    return (x, w, b) if op == LN else (x, w)


def _names(op):
    return ("dx", "dweight", "dbias") if op == LN else ("dx", "dweight")


def _ref(op):
    return ref.layer_norm if op == LN else ref.rms_norm


_both = functools.partial(prop_each, {LN: "ln", RMS: "rms"})  # a property of both norms


@_both(mix_cases(**CASES))
def shape_dtype_device(op, impl, case):
    """Output has x's shape, dtype and device."""
    x = case.x()
    y = _call(op, impl)(*_tensors(op, case, x))
    assert (y.shape, y.dtype, y.device) == (x.shape, x.dtype, x.device), (
        f"got {tuple(y.shape)} {y.dtype}, expected {tuple(x.shape)} {x.dtype}")


@_both(mix_cases(epsilons=EPSILONS, **CASES), cost=2)
def matches_reference(op, impl, case):
    """Forward and the gradients of x, weight (and bias) within the tolerance policy (every eps
    in EPSILONS)."""
    assert_matches_reference(_call(op, impl, case.eps), _call(op, _ref(op), case.eps),
                             _tensors(op, case), _names(op), upstream=case.like(3).double(),
                             upstream_layout=case.upstream_layout)


@_both(mix_cases(dtypes=(torch.float64,), min_B=1, max_B=2, max_T=3, num_heads=1, kernel=False,
                 max_head_dim=5, layouts=("contiguous", "transposed", "strided")), cost=3)
def gradcheck_float64(op, impl, case):
    """torch.autograd.gradcheck in float64 over x, weight (and bias)."""
    torch.autograd.gradcheck(_call(op, impl), tuple(leaf(t) for t in _tensors(op, case)))


@_both(mix_cases(dtypes=(torch.float64, torch.float32, torch.bfloat16), **CASES))
def zero_input(op, impl, case):
    """eps at x = 0: the output is exactly bias (LayerNorm) or 0 (RMSNorm), not NaN, and the
    gradients are finite."""
    x = torch.zeros(case.B, case.T, case.D, dtype=case.dtype, device=case.device)
    tensors = [leaf(t) for t in _tensors(op, case, x)]
    y = _call(op, impl)(*tensors)
    want = (tensors[2].detach() if op == LN else torch.zeros_like(tensors[1])).expand_as(y)
    # == rather than bitwise: 0·w is -0.0 where w < 0, a correct sign either way
    bad = ~(y.detach() == want)
    assert not bad.any(), (f"norm of x = 0: {int(bad.sum())} elements differ, "
                           f"e.g. {y.detach()[bad][0].item()!r}")
    grads = torch.autograd.grad(y, tensors, case.like(3))
    for name, g in zip(_names(op), grads, strict=True):
        assert torch.isfinite(g).all(), f"{name} is not finite at x = 0"


@_both(mix_cases(dtypes=(torch.float16, torch.bfloat16), min_B=1, magnitudes=False, **CASES),
       kind="numerics")
def low_precision_accumulates_in_fp32(op, impl, case):
    """float16/bfloat16 rows of magnitude ~300 (Σx² ≈ 1e5·D overflows float16) are normalized
    as in float32: finite, and within the tolerance policy of the float32-accumulating
    reference (its own magnitudes: not scaled again by the kernel tier's)."""
    x = (case.x().float() * 100 + 300).to(case.dtype)
    y = _call(op, impl)(*_tensors(op, case, x))
    assert torch.isfinite(y).all(), "non-finite output: accumulated in the input dtype?"
    assert_matches_reference(_call(op, impl), _call(op, _ref(op)), _tensors(op, case, x),
                             _names(op), upstream=None)


@_both(mix_cases(dtypes=(torch.float64, torch.float32), min_B=1, **CASES), kind="numerics")
def rows_with_large_mean(op, impl, case):
    """Rows 1e4 + N(0, 1) (|mean| ten thousand times the spread, float32 and float64) within the
    tolerance policy, forward and gradients: a one-pass variance E[x²] - E[x]² cancels there
    and is off by O(1), or NaN."""
    x = case.x() + 1e4
    assert_matches_reference(_call(op, impl), _call(op, _ref(op)), _tensors(op, case, x),
                             _names(op), upstream=case.like(3).double())


@_both(mix_cases(dtypes=(torch.float64,), min_B=1, min_T=1, magnitudes=False, **CASES))
def output_statistics(op, impl, case):
    """With weight 1 and bias 0 (float64): LayerNorm rows have mean 0 and biased variance
    var/(var + eps); RMSNorm rows have mean square ms/(ms + eps). Within 16·eps64·(max|x| /
    sqrt(var + eps))^k: rounding x (or x - mean) is amplified by 1/std (k = 1 for the mean, 2
    for the second moment)."""
    x = case.x()
    ones = torch.ones(case.D, dtype=x.dtype, device=x.device)
    args = (x, ones, torch.zeros_like(ones)) if op == LN else (x, ones)
    y = _call(op, impl)(*args)
    amax = x.abs().amax(-1)
    if op == LN:
        var = x.var(dim=-1, unbiased=False)
        amp = amax / (var + EPS).sqrt()
        means = y.mean(-1).abs()
        assert (means <= 16 * EPS64 * amp).all(), f"row means {means.max():.3e}"
        got, want = y.var(dim=-1, unbiased=False), var / (var + EPS)
    else:
        ms = (x * x).mean(-1)
        amp = amax / (ms + EPS).sqrt()
        got, want = (y * y).mean(-1), ms / (ms + EPS)
    assert ((got - want).abs() <= 16 * EPS64 * (1 + amp**2)).all(), (
        f"second moment off by {(got - want).abs().max():.3e}")


@prop(RMS, mix_cases(dtypes=(torch.float64,), min_B=1, **CASES))
def rms_scale_invariant(impl, case):
    """RMSNorm(c·x) = RMSNorm(x) for c > 0 (c = 4, 1/4, 1000; eps = 1e-30 so that eps does not
    break the invariance), float64 within 16·eps64 relative to |weight|."""
    x, w = _tensors(RMS, case)
    base = impl(x, w, 1e-30)
    for c in (4.0, 0.25, 1000.0):
        err = (impl(c * x, w, 1e-30) - base).abs().max()
        assert err <= 16 * EPS64 * w.abs().max(), f"RMSNorm({c}·x) - RMSNorm(x) = {err:.3e}"


@prop(LN, mix_cases(dtypes=(torch.float64,), min_B=1, **CASES))
def ln_scale_and_shift_invariant(impl, case):
    """LayerNorm(c·x + s) = LayerNorm(x) for c > 0 and a scalar shift s (c = 4, 1/4, 1000;
    s = 3; eps = 1e-30), float64 within 64·eps64·(1 + (max|x| + |s|/c)/std)·|weight|: the
    values and the shift cost the mean's rounding, relative to the row's spread (rows of
    |mean| >> std included)."""
    x, w, b = _tensors(LN, case)
    base = impl(x, w, b, 1e-30)
    std = x.std(dim=-1, unbiased=False, keepdim=True).clamp_min(1e-300)
    amax = x.abs().amax(dim=-1, keepdim=True)
    for c in (4.0, 0.25, 1000.0):
        err = (impl(c * x + 3.0, w, b, 1e-30) - base).abs()
        tol = 64 * EPS64 * (1 + (amax + 3.0 / c) / std) * w.abs().max()
        assert (err <= tol).all(), f"LayerNorm({c}·x + 3) - LayerNorm(x) = {err.max():.3e}"


@prop(LN, bad_norm_inputs(rms=False), kind="contract")
def ln_bad_input_raises(impl, case):
    """Bad x, weight, bias or eps: ValueError/TypeError naming the argument."""
    expect_rejected(impl, case, ref.layer_norm)


@prop(RMS, bad_norm_inputs(rms=True), kind="contract")
def rms_bad_input_raises(impl, case):
    """Bad x, weight or eps: ValueError/TypeError naming the argument."""
    expect_rejected(impl, case, ref.rms_norm)

# --- signatures: how the generic properties and the mutation operators call the ops ---

for _op in (LN, RMS):
    signature(_op, mix_cases(epsilons=EPSILONS, **CASES),
              tensors=functools.partial(_tensors, _op),
              call=lambda fn, c, _op=_op: _call(_op, fn, c.eps), grads=_names(_op),
              upstream=lambda c: c.like(3).double(),
              inputs={"x": 0, "weight": None, **({"bias": None} if _op == LN else {})},
              options={"eps": 1e-5}, tails={"D": (2, 64)}, accumulates=True)
