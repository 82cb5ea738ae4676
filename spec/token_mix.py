"""The spec of RankMixer token mixing: ``token_mix``, its inverse ``token_unmix``, and the
TokenMixer block ``token_mixer`` = ``LayerNorm(x + token_mix(x))``.

- Token mixing is pure data movement: every property of ``token_mix`` and ``token_unmix`` is
  exact (bitwise), in every dtype; ``impl(x, num_heads)`` is the callable under test.
- ``token_mixer``'s ``impl(x, num_heads, weight, bias, eps)`` is compared with the reference
  by the tolerance policy (:mod:`mixology.numerics.tolerance`).
"""

from __future__ import annotations

import dataclasses

import torch
from hypothesis import strategies as st

from mixology.nn import TokenMixer
from mixology.ops.token_mix import reference as ref
from mixology.spec import prop, signature
from mixology.spec.helpers import assert_bitwise_equal, bits, expect_rejected, leaf
from mixology.spec.numerics import assert_matches_reference
from mixology.spec.strategies import (
    FLOATS,
    LAYOUTS,
    SPECIALS,
    BadInput,
    Drawn,
    boundary,
    case,
    dtype_of,
    kernel_tier,
    make_tensor,
    optional,
    other_dtypes,
    relayout,
    sized,
)

# --- cases -------------------------------------------------------------------------------

@case
class MixCase(Drawn):
    """One drawn input: ``x = case.x()`` of shape (B, T, D) and ``case.num_heads``."""

    B: int
    T: int
    D: int
    num_heads: int
    dtype: torch.dtype
    layout: str = "contiguous"
    seed: int = 0
    specials: tuple[tuple[int, float], ...] = optional(())  # (flat index, value) written into x
    scale: float = optional(1.0)  # x = offset + scale·N(0, 1) (large |mean| or large |x| for norms)
    offset: float = optional(0.0)
    eps: float = optional(1e-5)  # the norms' and the TokenMixer's eps, where the case draws it

    @property
    def head_dim(self) -> int:
        return self.D // self.num_heads

    def x(self) -> torch.Tensor:
        x = make_tensor((self.B, self.T, self.D), self.dtype, self.layout, self.gen(), self.device,
                        self.scale, self.offset)
        if self.specials and x.numel():
            x = x.clone()  # specials are written per element, so materialize expanded layouts
            flat = x.view(-1) if x.is_contiguous() else None
            for index, value in self.specials:
                i = index % x.numel()
                if flat is not None:
                    flat[i] = value
                else:
                    x[i // (self.T * self.D), (i // self.D) % self.T, i % self.D] = value
        return x

    def like(self, salt: int) -> torch.Tensor:
        """Another contiguous tensor of x's shape and dtype (an upstream gradient, a 2nd input)."""
        return make_tensor((self.B, self.T, self.D), self.dtype, "contiguous", self.gen(salt),
                           self.device)

    def params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """LayerNorm weight and bias of shape (D,): random, so a swapped or missing one shows."""
        g = self.gen(7)
        w = (1 + 0.5 * torch.randn(self.D, generator=g, dtype=torch.float64)).to(self.dtype)
        b = (0.5 * torch.randn(self.D, generator=g, dtype=torch.float64)).to(self.dtype)
        return w.to(self.device), b.to(self.device)


# eps values a case may draw (``epsilons=EPSILONS``): the default, and values large enough
# beside a row's variance that an implementation ignoring eps shows
EPSILONS = (1e-5, 1e-3, 0.1, 1.0)


def mix_cases(*, kernel=True, **kw):
    """Shapes (B, T, D = H * d), dtypes, memory layouts, an eps from ``epsilons`` and,
    optionally, NaN/Inf/-0.0/subnormals.
    In the kernel tier (``kernel=True``): see :func:`_kernel_mix`."""
    return sized(_mix_cases(kernel=kernel, **kw), kernel)


# (scale, offset) of x in the kernel tier: N(0, 1) twice as often as rows of |mean| >> std
# (cancellation in a variance) and rows whose Σx² overflows float16
MIX_MAGNITUDES = ((1.0, 0.0), (1.0, 0.0), (1.0, 1e4), (300.0, 0.0))


@st.composite
def _mix_cases(draw, *, kernel=True, dtypes=FLOATS, layouts=LAYOUTS, min_B=0, max_B=3, min_T=1,
               max_T=10, min_H=1, max_H=6, max_head_dim=6, heads_equal_tokens=False,
               num_heads=None, specials=False, kernel_max_T=257, magnitudes=True,
               epsilons=(1e-5,)):
    if kernel and kernel_tier():
        return draw(_kernel_mix(dtypes, layouts, min_B, min_T, heads_equal_tokens, num_heads,
                                specials, kernel_max_T, magnitudes, epsilons))
    if heads_equal_tokens:
        T = H = draw(st.integers(max(min_T, 1), max_T))
    else:
        T = draw(st.integers(min_T, max_T))
        H = num_heads if num_heads is not None else draw(st.integers(min_H, max_H))
    d = draw(st.integers(1, max_head_dim))
    B = draw(st.integers(min_B, max_B))
    return MixCase(B=B, T=T, D=H * d, num_heads=H, dtype=draw(dtype_of(dtypes)),
                   layout=draw(st.sampled_from(layouts)), seed=draw(st.integers(0, 2**31 - 1)),
                   specials=draw(_specials()) if specials else (),
                   eps=draw(st.sampled_from(epsilons)))


def _specials():
    return st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(SPECIALS)),
                    min_size=1, max_size=4).map(tuple)


@st.composite
def _kernel_mix(draw, dtypes, layouts, min_B, min_T, heads_equal_tokens, num_heads, specials,
                max_T, magnitudes, epsilons, max_elements=2**18):
    """Wide rows (D = H·d up to 4097, a few rows), many rows (B·T up to 3·max_T, narrow D), or
    H == T up to 33, each dim around a tile boundary."""
    B = draw(st.integers(max(min_B, 1), 3))
    if heads_equal_tokens:
        T = H = draw(boundary(max(min_T, 1), 33))
        d = draw(boundary(1, max(1, max_elements // (B * T * T))))
    else:
        H = num_heads if num_heads is not None else draw(boundary(1, 64))
        if draw(st.booleans()):  # wide rows
            T = draw(boundary(max(min_T, 1), 17))
            d = draw(boundary(1, max(1, 4097 // H)))
        else:  # many rows
            T = draw(boundary(max(min_T, 1), max_T))
            d = draw(boundary(1, max(1, min(67 // H, max_elements // (B * T * H)))))
    scale, offset = draw(st.sampled_from(MIX_MAGNITUDES if magnitudes else ((1.0, 0.0),)))
    return MixCase(B=B, T=T, D=H * d, num_heads=H, dtype=draw(dtype_of(dtypes)),
                   layout=draw(st.sampled_from(layouts)), seed=draw(st.integers(0, 2**31 - 1)),
                   specials=draw(_specials()) if specials else (), scale=scale, offset=offset,
                   eps=draw(st.sampled_from(epsilons)))


def edge_cases(**kw):
    """B == 0 or T == 1 (and both)."""
    return st.one_of(mix_cases(min_B=0, max_B=0, **kw), mix_cases(min_T=1, max_T=1, **kw))


def gradcheck_cases(**kw):
    """float64, small; T >= 2 and H >= 2 (with one token or one head mixing is the identity,
    and a backward that applies the wrong permutation would go unseen)."""
    kw.setdefault("min_T", 2)
    kw.setdefault("min_H", 2)
    kw.setdefault("max_T", 5)
    kw.setdefault("max_H", 3)
    kw.setdefault("max_head_dim", 3)
    # gradcheck perturbs elements one by one, so it refuses overlapping (expanded) inputs
    layouts = tuple(lay for lay in LAYOUTS if lay != "expanded")
    return mix_cases(dtypes=(torch.float64,), layouts=layouts, min_B=1, max_B=2, kernel=False,
                     **kw)


def bad_mix_inputs(arg_name: str = "x"):
    """Calls of ``fn(x, num_heads)`` that must raise TypeError/ValueError."""
    f32 = torch.randn(2, 3, 8)
    cases = [
        BadInput("x has ndim 2", (torch.randn(3, 8), 2), ValueError, (arg_name, "(B, T, D)")),
        BadInput("x has ndim 4", (torch.randn(2, 3, 8, 1), 2), ValueError, (arg_name, "(B, T, D)")),
        BadInput("D % num_heads != 0", (f32, 3), ValueError, ("num_heads", "D")),
        BadInput("num_heads == 0", (f32, 0), ValueError, ("num_heads",)),
        BadInput("num_heads is a float", (f32, 2.0), TypeError, ("num_heads",)),
        BadInput("num_heads is a bool", (f32, True), TypeError, ("num_heads",)),
        BadInput("x is int64", (torch.arange(48).view(2, 3, 8), 2), TypeError, (arg_name,)),
        BadInput("x is int32", (torch.zeros(2, 3, 8, dtype=torch.int32), 4), TypeError, (arg_name,)),
        BadInput("x is bool", (torch.zeros(2, 3, 8, dtype=torch.bool), 4), TypeError, (arg_name,)),
        BadInput("x is a list", ([[[1.0, 2.0]]], 1), TypeError, (arg_name,)),
    ]
    return st.sampled_from(cases)


def bad_mixer_inputs():
    """Calls of ``fn(x, num_heads, weight, bias, eps)`` that must raise TypeError/ValueError."""
    x, w, b = torch.randn(2, 3, 8), torch.ones(8), torch.zeros(8)
    cases = [BadInput(c.what, (*c.args, w, b, 1e-5), c.error, c.names)
             for c in bad_mix_inputs().elements if "list" not in c.what and "ndim 2" not in c.what]
    cases += [
        BadInput("weight has shape (D+1,)", (x, 2, torch.ones(9), b, 1e-5), ValueError, ("weight",)),
        BadInput("bias has shape (1, D)", (x, 2, w, torch.zeros(1, 8), 1e-5), ValueError, ("bias",)),
        BadInput("weight is float64", (x, 2, w.double(), b, 1e-5), TypeError, ("weight",)),
        BadInput("eps == 0", (x, 2, w, b, 0.0), ValueError, ("eps",)),
        BadInput("eps is a tensor", (x, 2, w, b, torch.tensor(1e-5)), TypeError, ("eps",)),
    ]
    return st.sampled_from(cases)


# --- properties --------------------------------------------------------------------------

MIX, UNMIX = "token_mix", "token_unmix"


def source_index(case) -> torch.Tensor:
    """Where each output element comes from: the reference applied to the flat indices."""
    idx = torch.arange(case.B * case.T * case.D, dtype=torch.float64).view(case.B, case.T, case.D)
    return ref.token_mix(idx, case.num_heads).long().view(-1)


@prop(MIX, mix_cases(), exact=True)
def shape_dtype_device(impl, case):
    """Output has x's shape, dtype and device."""
    x = case.x()
    y = impl(x, case.num_heads)
    assert isinstance(y, torch.Tensor), f"returned {type(y).__name__}"
    assert (y.shape, y.dtype, y.device) == (x.shape, x.dtype, x.device), (
        f"got {tuple(y.shape)} {y.dtype} {y.device}, expected {tuple(x.shape)} {x.dtype} {x.device}")


@prop(MIX, mix_cases(), exact=True)
def matches_reference_bitwise(impl, case):
    """Equals the einops reference bit for bit (data movement has no rounding)."""
    x = case.x()
    assert_bitwise_equal(impl(x, case.num_heads), ref.token_mix(x, case.num_heads), "token_mix")


@prop(MIX, mix_cases(specials=True), exact=True)
def exact_permutation(impl, case):
    """The multiset of bit patterns is unchanged (NaN, Inf, -0.0, subnormals included)."""
    x = case.x()
    y = impl(x, case.num_heads)
    assert y.shape == x.shape, f"shape {tuple(y.shape)} != {tuple(x.shape)}"
    got, want = bits(y).view(-1).sort().values, bits(x).view(-1).sort().values
    assert torch.equal(got.cpu(), want.cpu()), "output is not a permutation of the input's values"


@prop(MIX, mix_cases(specials=True), exact=True)
def nonfinite_follow_the_permutation(impl, case):
    """NaN, +-Inf and -0.0 land exactly where the permutation sends them."""
    x = case.x()
    y = impl(x, case.num_heads).reshape(-1)
    expected = x.reshape(-1)[source_index(case).to(x.device)]
    assert_bitwise_equal(y, expected, "y[i] == x[source(i)]")


@prop(MIX, mix_cases(), exact=True)
def unmix_inverts_mix(impl, case):
    """token_unmix(token_mix(x)) == x."""
    x = case.x()
    assert_bitwise_equal(ref.token_unmix(impl(x, case.num_heads), case.num_heads), x,
                         "unmix(mix(x))")


@prop(MIX, mix_cases(heads_equal_tokens=True, min_T=1), exact=True)
def involution_when_heads_equal_tokens(impl, case):
    """With H == T, mixing twice is the identity."""
    x = case.x()
    assert_bitwise_equal(impl(impl(x, case.num_heads), case.num_heads), x, "mix(mix(x))")


@prop(MIX, mix_cases(heads_equal_tokens=True, min_T=2, min_B=1), exact=True)
def full_mixing_when_heads_equal_tokens(impl, case):
    """With H == T, every output token depends on every input token (perturbation test)."""
    x = case.x().clone()
    y = impl(x, case.num_heads)
    for t in range(case.T):
        x2 = x.clone()
        x2[:, t, :] = torch.where(x2[:, t, :] == 1, 2.0, 1.0)  # a new value everywhere
        changed = (impl(x2, case.num_heads) != y).any(dim=-1)  # (B, T): which outputs moved
        assert changed.all(), (
            f"perturbing input token {t} leaves output tokens "
            f"{sorted(set((~changed).nonzero()[:, 1].tolist()))} unchanged: they do not mix")


@prop(MIX, mix_cases(num_heads=1), exact=True)
def one_head_is_identity(impl, case):
    """With H == 1 the head-major layout is the input layout: mixing is the identity."""
    x = case.x()
    assert_bitwise_equal(impl(x, 1), x, "mix(x, num_heads=1)")


@prop(MIX, mix_cases(min_B=2), exact=True)
def batch_independence(impl, case):
    """Each batch element is mixed on its own: mix(x)[i] == mix(x[i:i+1])[0]."""
    x = case.x()
    y = impl(x, case.num_heads)
    for i in range(case.B):
        assert_bitwise_equal(y[i], impl(x[i:i + 1], case.num_heads)[0], f"batch element {i}")


@prop(MIX, mix_cases(), exact=True)
def linearity(impl, case):
    """mix(a*x + b*z) == a*mix(x) + b*mix(z), exactly (a permutation commutes with arithmetic)."""
    x, z = case.x(), case.like(1)
    a, b = 0.75, -1.5
    lhs = impl(a * x + b * z, case.num_heads)
    rhs = a * impl(x, case.num_heads) + b * impl(z, case.num_heads)
    assert_bitwise_equal(lhs, rhs, "mix(a*x + b*z)")


@prop(MIX, mix_cases(), exact=True)
def gradient_is_inverse_permutation(impl, case):
    """x.grad == token_unmix(upstream gradient), bitwise, the upstream gradient in any memory
    layout."""
    x = leaf(case.x())
    g = relayout(case.like(2), case.upstream_layout)
    impl(x, case.num_heads).backward(g)
    assert x.grad is not None, "no gradient reached x"
    assert_bitwise_equal(x.grad, ref.token_unmix(g, case.num_heads), "x.grad")


@prop(MIX, gradcheck_cases(), cost=3)
def gradcheck_float64(impl, case):
    """torch.autograd.gradcheck in float64 (forward and backward agree numerically)."""
    x = leaf(case.x())
    torch.autograd.gradcheck(lambda t: impl(t, case.num_heads), (x,), raise_exception=True)


@prop(MIX, edge_cases(), exact=True)
def edge_shapes(impl, case):
    """B == 0 and T == 1 work, forward and backward, and match the reference."""
    x = leaf(case.x())
    y = impl(x, case.num_heads)
    assert_bitwise_equal(y, ref.token_mix(x, case.num_heads), "token_mix")
    y.backward(torch.ones_like(y))
    assert x.grad is not None and x.grad.shape == x.shape, "no gradient of x's shape"


@prop(MIX, bad_mix_inputs("x"), kind="contract")
def bad_input_raises(impl, case):
    """Wrong ndim, D % H != 0, integer dtypes, bad num_heads: ValueError/TypeError naming the
    argument, the same error class as the reference."""
    expect_rejected(impl, case, ref.token_mix)


# token_unmix: the inverse permutation, and the gradient of token_mix.

@prop(UNMIX, mix_cases(), exact=True,
      covers={"dtype (small)": FLOATS, "dtype (kernel)": FLOATS})
def unmix_matches_reference_bitwise(impl, case):
    """Equals the einops reference bit for bit, in every float dtype (the case's first): a
    permutation is exact in each."""
    for dtype in other_dtypes(case.dtype):
        y = dataclasses.replace(case, dtype=dtype).x()
        assert_bitwise_equal(impl(y, case.num_heads), ref.token_unmix(y, case.num_heads),
                             f"token_unmix in {str(dtype).removeprefix('torch.')}")


@prop(UNMIX, mix_cases(), exact=True)
def unmix_inverts_mix_both_ways(impl, case):
    """unmix(mix(x)) == x and mix(unmix(y)) == y."""
    x = case.x()
    assert_bitwise_equal(impl(ref.token_mix(x, case.num_heads), case.num_heads), x,
                         "unmix(mix(x))")
    assert_bitwise_equal(ref.token_mix(impl(x, case.num_heads), case.num_heads), x,
                         "mix(unmix(y))")


@prop(UNMIX, mix_cases(), exact=True)
def unmix_gradient_is_mix(impl, case):
    """y.grad == token_mix(upstream gradient), bitwise, the upstream gradient in any memory
    layout."""
    y = leaf(case.x())
    g = relayout(case.like(2), case.upstream_layout)
    impl(y, case.num_heads).backward(g)
    assert y.grad is not None, "no gradient reached y"
    assert_bitwise_equal(y.grad, ref.token_mix(g, case.num_heads), "y.grad")


@prop(UNMIX, gradcheck_cases(), cost=3)
def unmix_gradcheck_float64(impl, case):
    """torch.autograd.gradcheck in float64."""
    y = leaf(case.x())
    torch.autograd.gradcheck(lambda t: impl(t, case.num_heads), (y,), raise_exception=True)


@prop(UNMIX, edge_cases(), exact=True)
def unmix_edge_shapes(impl, case):
    """B == 0 and T == 1 work and match the reference."""
    y = case.x()
    assert_bitwise_equal(impl(y, case.num_heads), ref.token_unmix(y, case.num_heads),
                         "token_unmix")


@prop(UNMIX, bad_mix_inputs("y"), kind="contract")
def unmix_bad_input_raises(impl, case):
    """Bad input raises ValueError/TypeError naming the argument, like the reference."""
    expect_rejected(impl, case, ref.token_unmix)


# --- properties of the TokenMixer block ---------------------------------------------------

MIXER = "token_mixer"
EPS = 1e-5


def compare_with_reference(impl, case, *, grads: bool):
    w, b = case.params()
    assert_matches_reference(
        lambda x_, w_, b_: impl(x_, case.num_heads, w_, b_, case.eps),
        lambda x_, w_, b_: ref.token_mixer(x_, case.num_heads, w_, b_, case.eps),
        (case.x(), w, b), ("dx", "dweight", "dbias"),
        upstream=case.like(3).to(torch.float64) if grads else None,
        upstream_layout=case.upstream_layout)


@prop(MIXER, mix_cases())
def mixer_shape_dtype_device(impl, case):
    """Output has x's shape, dtype and device."""
    x = case.x()
    w, b = case.params()
    y = impl(x, case.num_heads, w, b, EPS)
    assert (y.shape, y.dtype, y.device) == (x.shape, x.dtype, x.device), (
        f"got {tuple(y.shape)} {y.dtype} {y.device}, expected {tuple(x.shape)} {x.dtype} {x.device}")


@prop(MIXER, mix_cases(epsilons=EPSILONS))
def mixer_forward_matches_reference(impl, case):
    """Forward within the tolerance policy of the float64 reference (all dtypes, layouts and
    every eps in EPSILONS)."""
    compare_with_reference(impl, case, grads=False)


@prop(MIXER, mix_cases(epsilons=EPSILONS), cost=2)
def mixer_gradients_match_reference(impl, case):
    """Gradients of x, LayerNorm weight and bias within the tolerance policy."""
    compare_with_reference(impl, case, grads=True)


@prop(MIXER, mix_cases(specials=True, dtypes=(torch.float32, torch.float64)))
def mixer_nonfinite_rows(impl, case):
    """A NaN/Inf reaches exactly the rows whose x + mix(x) contains it (row-wise LayerNorm)."""
    x = case.x()
    w, b = case.params()
    y = impl(x, case.num_heads, w, b, EPS)
    bad_rows = ~torch.isfinite(x + ref.token_mix(x, case.num_heads)).all(dim=-1)
    got_rows = ~torch.isfinite(y).all(dim=-1)
    assert torch.equal(got_rows.cpu(), bad_rows.cpu()), (
        f"non-finite output rows {got_rows.nonzero().tolist()}, "
        f"expected {bad_rows.nonzero().tolist()}")


@prop(MIXER, gradcheck_cases(), cost=4)
def mixer_gradcheck_float64(impl, case):
    """torch.autograd.gradcheck in float64 over x, weight and bias."""
    x = leaf(case.x())
    w, b = (leaf(p) for p in case.params())
    torch.autograd.gradcheck(lambda x_, w_, b_: impl(x_, case.num_heads, w_, b_, EPS),
                             (x, w, b), raise_exception=True)


@prop(MIXER, edge_cases())
def mixer_edge_shapes(impl, case):
    """B == 0 and T == 1 work, forward and backward, within the tolerance policy."""
    compare_with_reference(impl, case, grads=True)


@prop(MIXER, bad_mixer_inputs(), kind="contract")
def mixer_bad_input_raises(impl, case):
    """Bad x, num_heads, weight, bias or eps: ValueError/TypeError naming the argument."""
    expect_rejected(impl, case, ref.token_mixer)


@prop(MIXER, mix_cases(min_B=1, dtypes=(torch.float32,)))
def module_checks_tokens_and_hidden_dim(impl, case):
    """TokenMixer(num_tokens, hidden_dim, num_heads, impl=...) runs impl with its parameters
    and rejects x whose T or D differ from num_tokens/hidden_dim with a ValueError."""
    m = TokenMixer(case.T, case.D, case.num_heads, impl=impl, device=case.device)
    x = case.x()
    w, b = case.params()[:2]

    def through_the_module(x, w, b):
        with torch.no_grad():
            m.weight.copy_(w)
            m.bias.copy_(b)
        return m(x)

    # the policy's floor from the reference's rounding (a row of small variance amplifies
    # its mean's rounding: thorough found a correct kernel 4x past a magnitude-only floor)
    assert_matches_reference(through_the_module,
                             lambda x, w, b: ref.token_mixer(x, case.num_heads, w, b, m.eps),
                             [x, w, b], ("dx", "dweight", "dbias"), upstream=None)
    for shape in ((case.B, case.T + 1, case.D), (case.B, case.T, case.D + case.num_heads)):
        try:
            m(torch.zeros(shape, dtype=case.dtype, device=case.device))
        except ValueError as e:
            assert "num_tokens" in str(e) and "hidden_dim" in str(e), f"unclear error: {e}"
        else:
            raise AssertionError(f"TokenMixer(num_tokens={case.T}, hidden_dim={case.D}) "
                                 f"accepted x of shape {shape}")

# --- signatures: how the generic properties and the mutation operators call the ops ---

for _op, _name in ((MIX, "x"), (UNMIX, "y")):
    signature(_op, mix_cases(), tensors=lambda c: (c.x(),),
              call=lambda fn, c: lambda x: fn(x, c.num_heads), grads=(f"d{_name}",),
              upstream=lambda c: c.like(3).double(), inputs={_name: 0},
              options={"num_heads": 1}, tails={"D": (2, 32)})
signature(MIXER, mix_cases(epsilons=EPSILONS), tensors=lambda c: (c.x(), *c.params()),
          call=lambda fn, c: lambda x, w, b: fn(x, c.num_heads, w, b, c.eps),
          grads=("dx", "dweight", "dbias"), upstream=lambda c: c.like(3).double(),
          inputs={"x": 0, "weight": None, "bias": None}, options={"num_heads": 1, "eps": 1e-5},
          tails={"D": (2, 32)})
