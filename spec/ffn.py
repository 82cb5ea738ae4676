"""Properties of the channel mixers: ``feed_forward(x, w1, b1, w2, b2, activation)``,
``swiglu(x, w_gate, w_up, w_down)``, ``bilinear(x, w1, w2, w_out)`` and the per-token FFN
``per_token_ffn(x, w1, b1, w2, b2, activation)`` (weights stacked per token: (T, D, F) ...)."""

from __future__ import annotations

import dataclasses
import functools
import math

import torch
from hypothesis import strategies as st

from mixology.ops.ffn import reference as ref
from mixology.ops.ffn.checks import ACTIVATIONS
from mixology.spec import prop, prop_each, signature
from mixology.spec.helpers import assert_bitwise_equal, expect_rejected, leaf
from mixology.spec.numerics import assert_matches_reference
from mixology.spec.strategies import (
    FLOATS,
    LAYOUTS,
    BadInput,
    TokensCase,
    boundary,
    case,
    dtype_of,
    kernel_tier,
    sized,
)

# --- cases -------------------------------------------------------------------------------

@case
class FfnCase(TokensCase):
    """x: (B, T, D) from ``case.x()``, weights (D, F) / (F, D) and biases from ``case.params``."""

    B: int
    T: int
    D: int
    F: int
    dtype: torch.dtype
    layout: str = "contiguous"
    seed: int = 0
    activation: str = "gelu"
    dropout: float = 0.0  # feed_forward's hidden dropout, its mask seeded with ``seed``

    def matrix(self, rows: int, cols: int, salt: int) -> torch.Tensor:
        w = torch.randn(rows, cols, generator=self.gen(salt), dtype=torch.float64) / rows**0.5
        return w.to(self.dtype).to(self.device)

    def vector(self, n: int, salt: int) -> torch.Tensor:
        v = 0.5 * torch.randn(n, generator=self.gen(salt), dtype=torch.float64)
        return v.to(self.dtype).to(self.device)

    def per_token(self, *shape: int, salt: int) -> torch.Tensor:
        """One weight (rows, cols) or bias (n,) per token: shape (T, *shape), scaled as above."""
        t = torch.randn(self.T, *shape, generator=self.gen(salt), dtype=torch.float64)
        t = t / shape[0] ** 0.5 if len(shape) == 2 else 0.5 * t
        return t.to(self.dtype).to(self.device)


def ffn_cases(*, kernel=True, **kw):
    """In the kernel tier: D and F around tile boundaries (D up to 1025, F up to 4097, T·D·F at
    most 2^20: the per-token FFN has a matrix per token), up to 17 tokens."""
    return sized(_ffn_cases(kernel=kernel, **kw), kernel)


@st.composite
def _ffn_cases(draw, *, kernel=True, dtypes=FLOATS, layouts=LAYOUTS, min_B=0, max_B=2, min_T=1,
               max_T=6, max_D=8, max_F=12, dropouts=(0.0,)):
    if kernel and kernel_tier():
        T = draw(boundary(max(min_T, 1), 17))
        D = draw(boundary(1, 1025))
        F = draw(boundary(1, max(1, min(4097, 2**20 // (D * T)))))
        return FfnCase(B=draw(st.integers(max(min_B, 1), 2)), T=T, D=D, F=F,
                       dtype=draw(dtype_of(dtypes)), layout=draw(st.sampled_from(layouts)),
                       seed=draw(st.integers(0, 2**31 - 1)),
                       activation=draw(st.sampled_from(ACTIVATIONS)),
                       dropout=draw(st.sampled_from(dropouts)))
    return FfnCase(B=draw(st.integers(min_B, max_B)), T=draw(st.integers(min_T, max_T)),
                   D=draw(st.integers(1, max_D)), F=draw(st.integers(1, max_F)),
                   dtype=draw(dtype_of(dtypes)), layout=draw(st.sampled_from(layouts)),
                   seed=draw(st.integers(0, 2**31 - 1)),
                   activation=draw(st.sampled_from(ACTIVATIONS)),
                   dropout=draw(st.sampled_from(dropouts)))


def bad_ffn_inputs(op: str):
    """Calls of the channel mixers that must raise TypeError/ValueError."""
    pffn = op == "per_token_ffn"
    x = torch.randn(2, 3, 4)
    lead = (3,) if pffn else ()  # the per-token FFN has one weight per token (T = 3)
    a, b = torch.randn(*lead, 4, 6), torch.randn(*lead, 6, 4)
    b1, b2 = torch.zeros(*lead, 6), torch.zeros(*lead, 4)

    def args(x_=x, w1=a, w2=b, bias1=b1, act="gelu", dropout_seed=()):
        if op in ("feed_forward", "per_token_ffn"):
            return (x_, w1, bias1, w2, b2, act, *dropout_seed)
        return (x_, w1, a, w2)

    first = "w1" if op != "swiglu" else "w_gate"
    last = {"swiglu": "w_down", "bilinear": "w_out"}.get(op, "w2")
    t_ = "T, " if pffn else ""
    cases = [
        BadInput("x has ndim 2", args(x_=x[0]), ValueError, ("x", "(B, T, D)")),
        BadInput("x is int64", args(x_=x.long()), TypeError, ("x",)),
        BadInput("first weight has another D", args(w1=a[..., :3, :]), ValueError,
                 (first, f"({t_}D, F)")),
        BadInput("last weight has another F", args(w2=b[..., :5, :]), ValueError,
                 (last, f"({t_}F, D)")),
        BadInput("first weight is float64", args(w1=a.double()), TypeError, (first,)),
    ]
    if pffn:
        cases += [BadInput("weights for another T", args(w1=a[:2]), ValueError, ("w1", "(T, D, F)")),
                  BadInput("b1 shared by all tokens", args(bias1=b1[0]), ValueError,
                           ("b1", "(T, F)"))]
    if op in ("feed_forward", "per_token_ffn"):
        cases += [BadInput("b1 has another F", args(bias1=b1[..., :5]), ValueError,
                           ("b1", "(T, F)" if pffn else "(F,)")),
                  BadInput("unknown activation", args(act="tanh"), ValueError, ("activation",)),
                  BadInput("activation is None", args(act=None), TypeError, ("activation",))]
    if op == "feed_forward":
        cases += [BadInput("dropout 1", args(dropout_seed=(1.0, 0)), ValueError,
                           ("dropout", "[0, 1)")),
                  BadInput("dropout -0.1", args(dropout_seed=(-0.1, 0)), ValueError,
                           ("dropout", "[0, 1)")),
                  BadInput("dropout is a str", args(dropout_seed=("0.1", 0)), TypeError,
                           ("dropout",)),
                  BadInput("seed is a float", args(dropout_seed=(0.1, 1.5)), TypeError,
                           ("seed",))]
    return st.sampled_from(cases)


# --- properties --------------------------------------------------------------------------
OPS = ("feed_forward", "swiglu", "bilinear", "per_token_ffn")
WITH_ACTIVATION = ("feed_forward", "per_token_ffn")
PREFIX = {"feed_forward": "feed", "swiglu": "swiglu", "bilinear": "bilinear",
          "per_token_ffn": "pffn"}  # property names: f"{PREFIX[op]}_{name}"
NAMES = {"feed_forward": ("dx", "dw1", "db1", "dw2", "db2"),
         "per_token_ffn": ("dx", "dw1", "db1", "dw2", "db2"),
         "swiglu": ("dx", "dw_gate", "dw_up", "dw_down"), "bilinear": ("dx", "dw1", "dw2", "dw_out")}


def _tensors(op, case, x=None):
    x = case.x() if x is None else x
    D, F = case.D, case.F
    if op == "feed_forward":
        return (x, case.matrix(D, F, 1), case.vector(F, 2), case.matrix(F, D, 3),
                case.vector(D, 4))
    if op == "per_token_ffn":
        return (x, case.per_token(D, F, salt=1), case.per_token(F, salt=2),
                case.per_token(F, D, salt=3), case.per_token(D, salt=4))
    return (x, case.matrix(D, F, 1), case.matrix(D, F, 2), case.matrix(F, D, 3))


def _fn(op, impl, case):
    if case.dropout:  # feed_forward with hidden dropout, its mask seeded by the case
        return lambda *t: impl(*t, case.activation, case.dropout, case.seed)
    if op in WITH_ACTIVATION:
        return lambda *t: impl(*t, case.activation)
    return impl


_each = functools.partial(prop_each, PREFIX)  # a property of every channel mixer


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
                             _tensors(op, case), NAMES[op], upstream=case.upstream(),
                             upstream_layout=case.upstream_layout)


@_each(ffn_cases(dtypes=(torch.float64,), min_B=1, max_B=1, max_T=2, max_D=3, max_F=3, kernel=False,
                 layouts=tuple(lay for lay in LAYOUTS if lay != "expanded")), cost=3)
def gradcheck_float64(op, impl, case):
    """torch.autograd.gradcheck in float64 over x and every weight and bias."""
    torch.autograd.gradcheck(_fn(op, impl, case), tuple(leaf(t) for t in _tensors(op, case)))


@_each(ffn_cases(dtypes=(torch.float64, torch.float32), min_B=1, min_T=2))
def tokens_independent(op, impl, case):
    """A channel mixer acts on each token alone: permuting the tokens (and, for the per-token
    FFN, their weights with them) permutes the output (within the tolerance policy: a matmul
    may block rows differently)."""
    perm = torch.randperm(case.T, generator=torch.Generator().manual_seed(case.seed))
    fn = _fn(op, impl, case)

    def permuted(x, *w):
        if op == "per_token_ffn":
            w = [t[perm.to(t.device)] for t in w]
        return fn(x[:, perm], *w)[:, perm.argsort()]

    assert_matches_reference(permuted, _fn(op, getattr(ref, op), case), _tensors(op, case), (),
                             upstream=None)


@_each(ffn_cases(dtypes=(torch.float64, torch.float32, torch.bfloat16)), exact=True)
def zero_output_projection(op, impl, case):
    """With the output projection zero the layer outputs exactly its output bias (b2 for
    feed_forward and per_token_ffn, 0 otherwise): nothing bypasses W2."""
    t = list(_tensors(op, case))
    t[3] = torch.zeros_like(t[3])
    y = _fn(op, impl, case)(*t)
    want = t[4] if op in WITH_ACTIVATION else y.new_zeros(case.D)
    bad = ~(y == want.expand_as(y))
    assert not bad.any(), f"{int(bad.sum())} outputs differ from the output bias"


@prop("bilinear", ffn_cases(dtypes=(torch.float64, torch.float32, torch.bfloat16)))
def bilinear_symmetric(impl, case):
    """x W1 ⊙ x W2 commutes: swapping W1 and W2 gives the output of the reference on the
    unswapped weights, forward and gradients within the tolerance policy (not bit for bit: a
    fused or split-K matmul rounds each factor where its position puts it)."""
    def swapped(x, a, b, o):
        return impl(x, b, a, o)

    assert_matches_reference(swapped, ref.bilinear, _tensors("bilinear", case),
                             NAMES["bilinear"], upstream=case.upstream())


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
    silu(x·w_gate[:, 0])·x_0 (float64): within 8 eps relative, plus what the dot product
    x·w_gate[:, 0] may round to in any order (D eps of its terms for the implementation and for
    this check each, Higham's bound), carried through silu' (|silu'| < 1.1) and x_0."""
    x, wg, _, _ = _tensors("swiglu", case)
    e = torch.zeros(case.D, case.F, dtype=x.dtype, device=x.device)
    e[0, :] = 1.0  # up projection: every hidden unit gets x_0
    e_out = torch.zeros(case.F, case.D, dtype=x.dtype, device=x.device)
    e_out[0, 0] = 1.0  # output feature 0 reads hidden unit 0
    y = impl(x, wg, e, e_out)[..., 0]
    a = x @ wg[:, 0]
    want = torch.nn.functional.silu(a) * x[..., 0]
    eps = torch.finfo(x.dtype).eps
    dot = 2 * case.D * eps * (x.abs() @ wg[:, 0].abs())
    bound = 8 * eps * (1 + want.abs()) + 1.1 * dot * x[..., 0].abs()
    assert ((y - want).abs() <= bound).all(), (
        f"hidden unit 0 is not silu(x·w_gate)·x_0: max diff {(y - want).abs().max():.3e}")


# --- feed_forward's dropout ----------------------------------------------------------------
# The op's mask is reference.dropout_mask's; only feed_dropout_matches_reference needs that.
# The others hold for a kernel with its own random source (Philox in the kernel, say).
DROPOUTS = (0.1, 0.5, 0.9)


def _dropout_probe(impl, case, seed):
    """4·32·32 hidden units that are all act(1) (W1 = 0, b1 = 1), read one to one (W2 = I) onto
    the output bias 1: an output is 1 where its unit was dropped, 1 + act(1)/(1 - p) where kept."""
    kw = dict(dtype=case.dtype, device=case.device)
    n = 32
    ones = torch.ones(n, **kw)
    return impl(torch.zeros(4, n, n, **kw), torch.zeros(n, n, **kw), ones, torch.eye(n, **kw),
                ones, case.activation, case.dropout, seed)


@prop("feed_forward", ffn_cases(dropouts=(0.0, *DROPOUTS)), exact=True)
def feed_dropout_rate_and_scale(impl, case):
    """Hidden dropout: a unit is dropped (the output bias is not) with probability p, drawn
    independently for every batch row, token and hidden unit (6 sigma), and a kept unit is
    scaled by 1/(1 - p) (4 eps); p = 0 drops nothing."""
    p = case.dropout
    y = _dropout_probe(impl, case, case.seed).double()
    kept = ref.ACT[case.activation](torch.ones((), dtype=torch.float64)).item() / (1 - p)
    dropped = y == 1
    off = ~dropped & ((y - 1 - kept).abs() > 4 * torch.finfo(case.dtype).eps * (1 + kept))
    assert not off.any(), (f"{int(off.sum())} outputs are neither 1 (unit dropped) nor "
                           f"1 + act(1)/(1 - p) = {1 + kept:.4f} (kept), e.g. {y[off][0]:.4f}")
    n, mean = y.numel(), y.numel() * p
    sd = math.sqrt(n * p * (1 - p))
    assert abs(int(dropped.sum()) - mean) <= 6 * sd, (
        f"{int(dropped.sum())} of {n} units dropped at p={p}: expected {mean:.0f} ± {6 * sd:.0f}")
    q = p**2 + (1 - p) ** 2  # two independent units agree (both kept or both dropped)
    for axis, what in enumerate(("batch row", "token", "hidden unit")):
        agree = (dropped == dropped.roll(1, axis)).double().mean().item()
        assert agree <= q + 6 * math.sqrt(q * (1 - q) / n), (
            f"neighbouring {what}s' masks agree on {agree:.1%} of units; independent masks "
            f"agree on {q:.1%}")


@prop("feed_forward", ffn_cases(dropouts=DROPOUTS), exact=True)
def feed_dropout_seed_replays(impl, case):
    """The same seed draws the same mask (the output repeats bit for bit); the next seed draws
    another."""
    y = _dropout_probe(impl, case, case.seed)
    assert_bitwise_equal(_dropout_probe(impl, case, case.seed), y, "a second call, same seed")
    assert not torch.equal(_dropout_probe(impl, case, case.seed + 1), y), (
        "seed and seed + 1 drop the same units")


@prop("feed_forward", ffn_cases(dropouts=DROPOUTS), cost=2)
def feed_dropout_matches_reference(impl, case):
    """With the reference's mask (reference.dropout_mask from the seed): forward and every
    gradient within the tolerance policy (all dtypes, layouts, activations)."""
    assert_matches_reference(_fn("feed_forward", impl, case), _fn("feed_forward", ref.feed_forward,
                             case), _tensors("feed_forward", case), NAMES["feed_forward"],
                             upstream=case.upstream())


@prop("feed_forward", ffn_cases(dtypes=(torch.float64,), min_B=1, max_B=1, max_T=2, max_D=3,
                                max_F=3, layouts=tuple(lay for lay in LAYOUTS if lay != "expanded"),
                                dropouts=(0.5,), kernel=False), cost=3)
def feed_dropout_gradcheck_float64(impl, case):
    """gradcheck in float64 at p = 0.5, one seed: the backward drops the units the forward
    dropped, with the same scale."""
    fn = _fn("feed_forward", impl, case)
    torch.autograd.gradcheck(fn, tuple(leaf(t) for t in _tensors("feed_forward", case)))


def _token_ffns(x, w1, b1, w2, b2, activation):
    """The per-token FFN written as what it is: T independent feed_forward layers."""
    return torch.stack([ref.feed_forward(x[:, t:t + 1], w1[t], b1[t], w2[t], b2[t], activation)
                        [:, 0] for t in range(x.shape[1])], dim=1)


@prop("per_token_ffn", ffn_cases(), cost=2)
def pffn_equals_loop_of_token_ffns(impl, case):
    """Equals a loop of T independent FFNs, token t through feed_forward with W1[t], b1[t],
    W2[t], b2[t]: forward and every gradient, within the tolerance policy."""
    assert_matches_reference(_fn("per_token_ffn", impl, case),
                             lambda *t: _token_ffns(*t, case.activation),
                             _tensors("per_token_ffn", case), NAMES["per_token_ffn"],
                             upstream=case.upstream())


@prop("per_token_ffn", ffn_cases(dtypes=(torch.float64, torch.float32, torch.bfloat16), min_B=1,
                                 min_T=2), exact=True)
def pffn_token_sees_only_its_input_and_weights(impl, case):
    """Output token t depends on input token t and weights t only: replacing every other
    token's input and weights leaves it bit for bit, and a gradient flowing into token t
    alone reaches no other token's input or weights (exact zeros)."""
    fn = _fn("per_token_ffn", impl, case)
    tensors = _tensors("per_token_ffn", case)
    t = case.seed % case.T
    others = torch.arange(case.T) != t
    other = _tensors("per_token_ffn", dataclasses.replace(case, seed=case.seed + 1))
    mask = others.to(case.device)
    # both calls on contiguous copies: a matmul may round another memory layout differently
    tensors = [a.contiguous() for a in tensors]
    moved = [torch.where(mask.view(1, -1, 1), other[0], tensors[0]).contiguous()]
    moved += [torch.where(mask.view(-1, *[1] * (w.ndim - 1)), w2, w)
              for w, w2 in zip(tensors[1:], other[1:], strict=True)]
    assert_bitwise_equal(fn(*moved)[:, t], fn(*tensors)[:, t], f"token {t} after the others moved")
    leaves = [leaf(a) for a in tensors]
    upstream = torch.zeros(case.B, case.T, case.D, dtype=case.dtype, device=case.device)
    upstream[:, t] = 1
    fn(*leaves).backward(upstream)
    for name, a in zip(NAMES["per_token_ffn"], leaves, strict=True):
        g = a.grad[:, others] if name == "dx" else a.grad[others]
        bad = g != 0
        assert not bad.any(), f"{name}: {int(bad.sum())} nonzero entries off token {t}"


for _op in OPS:
    def _bad(impl, case, _op=_op):
        expect_rejected(impl, case, getattr(ref, _op))

    _bad.__doc__ = "Bad x, weights, biases or activation: ValueError/TypeError naming it."
    prop(_op, bad_ffn_inputs(_op), name=f"{PREFIX[_op]}_bad_input_raises", kind="contract")(_bad)

# --- signatures: how the generic properties and the mutation operators call the ops ---

_WEIGHTS = {"feed_forward": ("w1", "b1", "w2", "b2"), "swiglu": ("w_gate", "w_up", "w_down"),
            "bilinear": ("w1", "w2", "w_out"), "per_token_ffn": ("w1", "b1", "w2", "b2")}
_OPTIONS = {"feed_forward": {"activation": "relu", "dropout": 0.0, "seed": None},
            "per_token_ffn": {"activation": "relu"}}
for _op in OPS:
    signature(_op, ffn_cases(), tensors=functools.partial(_tensors, _op),
              call=lambda fn, c, _op=_op: _fn(_op, fn, c), grads=NAMES[_op],
              upstream=lambda c: c.upstream(),
              inputs={"x": 0, **dict.fromkeys(_WEIGHTS[_op])}, options=_OPTIONS.get(_op, {}),
              tails={"D": (2, 1024)},
              choices={"activation": ACTIVATIONS} if "activation" in _OPTIONS.get(_op, {})
              else {})
