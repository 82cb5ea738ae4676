"""Properties of the TokenMixer block ``LayerNorm(x + token_mix(x))`` (op ``token_mixer``).

``impl(x, num_heads, weight, bias, eps)`` is the callable under test. Numerical comparisons
follow the tolerance policy of :mod:`mixology.numerics.tolerance`.
"""

from __future__ import annotations

import torch

from mixology.nn import TokenMixer
from mixology.ops.token_mix import reference as ref
from mixology.spec import prop
from mixology.spec.helpers import expect_rejected, leaf
from mixology.spec.numerics import assert_matches_reference
from mixology.spec.strategies import bad_mixer_inputs, edge_cases, gradcheck_cases, mix_cases

OP = "token_mixer"
EPS = 1e-5


def compare_with_reference(impl, case, *, grads: bool):
    w, b = case.params()
    assert_matches_reference(
        lambda x_, w_, b_: impl(x_, case.num_heads, w_, b_, EPS),
        lambda x_, w_, b_: ref.token_mixer(x_, case.num_heads, w_, b_, EPS),
        (case.x(), w, b), ("dx", "dweight", "dbias"),
        upstream=case.like(3).to(torch.float64) if grads else None)


@prop(OP, mix_cases())
def mixer_shape_dtype_device(impl, case):
    """Output has x's shape, dtype and device."""
    x = case.x()
    w, b = case.params()
    y = impl(x, case.num_heads, w, b, EPS)
    assert (y.shape, y.dtype, y.device) == (x.shape, x.dtype, x.device), (
        f"got {tuple(y.shape)} {y.dtype} {y.device}, expected {tuple(x.shape)} {x.dtype} {x.device}")


@prop(OP, mix_cases())
def mixer_forward_matches_reference(impl, case):
    """Forward within the tolerance policy of the float64 reference (all dtypes and layouts)."""
    compare_with_reference(impl, case, grads=False)


@prop(OP, mix_cases(), cost=2)
def mixer_gradients_match_reference(impl, case):
    """Gradients of x, LayerNorm weight and bias within the tolerance policy."""
    compare_with_reference(impl, case, grads=True)


@prop(OP, mix_cases(specials=True, dtypes=(torch.float32, torch.float64)))
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


@prop(OP, gradcheck_cases(), cost=4)
def mixer_gradcheck_float64(impl, case):
    """torch.autograd.gradcheck in float64 over x, weight and bias."""
    x = leaf(case.x())
    w, b = (leaf(p) for p in case.params())
    torch.autograd.gradcheck(lambda x_, w_, b_: impl(x_, case.num_heads, w_, b_, EPS),
                             (x, w, b), raise_exception=True)


@prop(OP, edge_cases())
def mixer_edge_shapes(impl, case):
    """B == 0 and T == 1 work, forward and backward, within the tolerance policy."""
    compare_with_reference(impl, case, grads=True)


@prop(OP, bad_mixer_inputs(), kind="contract")
def mixer_bad_input_raises(impl, case):
    """Bad x, num_heads, weight, bias or eps: ValueError/TypeError naming the argument."""
    expect_rejected(impl, case, ref.token_mixer)


@prop(OP, mix_cases(min_B=1, dtypes=(torch.float32,)))
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
