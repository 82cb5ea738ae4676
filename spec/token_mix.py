"""Properties of RankMixer token mixing (``token_mix``) and its inverse (``token_unmix``).

Token mixing is pure data movement: every property here is exact (bitwise), in every dtype.
``impl`` is the callable under test, ``impl(x, num_heads)``.
"""

from __future__ import annotations

import torch

from mixology.ops.token_mix import reference as ref
from mixology.spec import prop
from mixology.spec.helpers import assert_bitwise_equal, bits, expect_rejected, leaf
from mixology.spec.strategies import bad_mix_inputs, edge_cases, gradcheck_cases, mix_cases

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
    """x.grad == token_unmix(upstream gradient), bitwise."""
    x = leaf(case.x())
    g = case.like(2)
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

@prop(UNMIX, mix_cases(), exact=True)
def unmix_matches_reference_bitwise(impl, case):
    """Equals the einops reference bit for bit."""
    y = case.x()
    assert_bitwise_equal(impl(y, case.num_heads), ref.token_unmix(y, case.num_heads),
                         "token_unmix")


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
    """y.grad == token_mix(upstream gradient), bitwise."""
    y = leaf(case.x())
    g = case.like(2)
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
