"""Properties of the channel mixers: ``feed_forward(x, w1, b1, w2, b2, activation)``,
``swiglu(x, w_gate, w_up, w_down)`` and ``bilinear(x, w1, w2, w_out)``."""

from __future__ import annotations

import torch

from mixology.ops.ffn import reference as ref
from spec import prop
from spec.helpers import assert_bitwise_equal, expect_rejected, leaf
from spec.numerics import assert_matches_reference
from spec.strategies import LAYOUTS, bad_ffn_inputs, ffn_cases

OPS = ("feed_forward", "swiglu", "bilinear")
NAMES = {"feed_forward": ("dx", "dw1", "db1", "dw2", "db2"),
         "swiglu": ("dx", "dw_gate", "dw_up", "dw_down"), "bilinear": ("dx", "dw1", "dw2", "dw_out")}


def _tensors(op, case, x=None):
    x = case.x() if x is None else x
    D, F = case.D, case.F
    if op == "feed_forward":
        return (x, case.matrix(D, F, 1), case.vector(F, 2), case.matrix(F, D, 3),
                case.vector(D, 4))
    return (x, case.matrix(D, F, 1), case.matrix(D, F, 2), case.matrix(F, D, 3))


def _fn(op, impl, case):
    if op == "feed_forward":
        return lambda *t: impl(*t, case.activation)
    return impl


def _each(cases, **kw):
    """Register one property function for every channel mixer."""
    def register(fn):
        for op in OPS:
            def check(impl, case, _op=op):
                fn(_op, impl, case)

            check.__doc__ = fn.__doc__
            prop(op, cases, name=f"{op.split('_')[0]}_{fn.__name__}", **kw)(check)
        return fn

    return register


@_each(ffn_cases())
def shape_dtype_device(op, impl, case):
    """Output (B, T, D) in x's dtype and device."""
    x = case.x()
    y = _fn(op, impl, case)(*_tensors(op, case, x))
    assert (y.shape, y.dtype, y.device) == (x.shape, x.dtype, x.device), (
        f"got {tuple(y.shape)} {y.dtype}, expected {tuple(x.shape)} {x.dtype}")


@_each(ffn_cases(), cost=2)
def matches_reference(op, impl, case):
    """Forward and the gradients of x and every weight and bias within the tolerance policy
    (all dtypes, layouts, activations)."""
    assert_matches_reference(_fn(op, impl, case), _fn(op, getattr(ref, op), case),
                             _tensors(op, case), NAMES[op], upstream=case.upstream())


@_each(ffn_cases(dtypes=(torch.float64,), min_B=1, max_B=1, max_T=2, max_D=3, max_F=3,
                 layouts=tuple(lay for lay in LAYOUTS if lay != "expanded")), cost=3)
def gradcheck_float64(op, impl, case):
    """torch.autograd.gradcheck in float64 over x and every weight and bias."""
    torch.autograd.gradcheck(_fn(op, impl, case), tuple(leaf(t) for t in _tensors(op, case)))


@_each(ffn_cases(dtypes=(torch.float64, torch.float32), min_B=1, min_T=2))
def tokens_independent(op, impl, case):
    """A channel mixer acts on each token alone: permuting the tokens permutes the output
    (within the tolerance policy: a matmul may block rows differently)."""
    perm = torch.randperm(case.T, generator=torch.Generator().manual_seed(case.seed))
    fn = _fn(op, impl, case)

    def permuted(x, *w):
        return fn(x[:, perm], *w)[:, perm.argsort()]

    assert_matches_reference(permuted, _fn(op, getattr(ref, op), case), _tensors(op, case), (),
                             upstream=None)


@_each(ffn_cases(dtypes=(torch.float64, torch.float32, torch.bfloat16)), exact=True)
def zero_output_projection(op, impl, case):
    """With the output projection zero the layer outputs exactly its output bias (b2 for
    feed_forward, 0 otherwise): nothing bypasses W2."""
    t = list(_tensors(op, case))
    t[3] = torch.zeros_like(t[3])
    y = _fn(op, impl, case)(*t)
    want = t[4] if op == "feed_forward" else y.new_zeros(case.D)
    bad = ~(y == want.expand_as(y))
    assert not bad.any(), f"{int(bad.sum())} outputs differ from the output bias"


@prop("bilinear", ffn_cases(dtypes=(torch.float64, torch.float32, torch.bfloat16)), exact=True)
def bilinear_symmetric(impl, case):
    """x W1 ⊙ x W2 commutes: swapping W1 and W2 gives the same output bit for bit."""
    x, w1, w2, wo = _tensors("bilinear", case)
    assert_bitwise_equal(impl(x, w2, w1, wo), impl(x, w1, w2, wo), "bilinear(W2, W1)")


@prop("bilinear", ffn_cases(dtypes=(torch.float64, torch.float32)), exact=True)
def bilinear_homogeneous_of_degree_two(impl, case):
    """No activation: bilinear(2x) = 4·bilinear(x) bit for bit (powers of two scale exactly).
    Both on contiguous x: 2·x of an expanded x is contiguous, and a matmul may round a
    broadcast input differently (seen on the Triton path, whose matmuls are torch's)."""
    x, w1, w2, wo = _tensors("bilinear", case)
    x = x.contiguous()
    assert_bitwise_equal(impl(2 * x, w1, w2, wo), 4 * impl(x, w1, w2, wo), "bilinear(2x)")


@prop("swiglu", ffn_cases(dtypes=(torch.float64,)))
def swiglu_gate_is_silu(impl, case):
    """The gate, not the up projection, goes through silu: with an up projection that feeds
    x_0 to every hidden unit and an output that reads hidden unit 0, output feature 0 is
    silu(x·w_gate[:, 0])·x_0 (float64, within 8 eps relative)."""
    x, wg, _, _ = _tensors("swiglu", case)
    e = torch.zeros(case.D, case.F, dtype=x.dtype, device=x.device)
    e[0, :] = 1.0  # up projection: every hidden unit gets x_0
    e_out = torch.zeros(case.F, case.D, dtype=x.dtype, device=x.device)
    e_out[0, 0] = 1.0  # output feature 0 reads hidden unit 0
    y = impl(x, wg, e, e_out)[..., 0]
    a = x @ wg[:, 0]
    want = torch.nn.functional.silu(a) * x[..., 0]
    assert ((y - want).abs() <= 8 * torch.finfo(x.dtype).eps * (1 + want.abs())).all(), (
        f"hidden unit 0 is not silu(x·w_gate)·x_0: max diff {(y - want).abs().max():.3e}")


for _op in OPS:
    def _bad(impl, case, _op=_op):
        expect_rejected(impl, case, getattr(ref, _op))

    _bad.__doc__ = "Bad x, weights, biases or activation: ValueError/TypeError naming it."
    prop(_op, bad_ffn_inputs(_op), name=f"{_op.split('_')[0]}_bad_input_raises")(_bad)
