"""torch.compile of the references: a regression test for what the spec found."""

import pytest
import torch

from mixology import registry


@pytest.mark.parametrize("op", ["token_mix", "token_unmix"])
def test_compiled_gradient_of_an_expanded_input_is_the_references(op):
    """Inductor with dynamic shapes returned a wrong gradient for stride-0 inputs (found by the
    dev profile: token_mix/gradient_is_inverse_permutation [compiled], layout 'expanded');
    mixology.compiling materializes them first."""
    base = torch.randn(1, 8, 3, generator=torch.Generator().manual_seed(0))
    g = torch.randn(3, 8, 3, generator=torch.Generator().manual_seed(1))
    grads = []
    for impl in ("compiled", "reference"):
        x = base.expand(3, 8, 3).detach().requires_grad_()
        registry.get(op, impl).fn(x, 1).backward(g)
        grads.append(x.grad)
    assert torch.equal(grads[0], grads[1])
