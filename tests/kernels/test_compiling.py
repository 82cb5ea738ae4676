"""torch.compile of the references: a regression test for what the spec found."""

import pytest
import torch

from mixology import registry


@pytest.mark.parametrize("op", ["token_mix", "token_unmix"])
def test_compiled_gradient_of_an_expanded_input_is_the_references(op):
    """Inductor with dynamic shapes returned a wrong gradient for stride-0 inputs (found by the
    dev profile: token_mix/gradient_is_inverse_permutation [compiled], layout 'expanded');
    mixology.ops._kernels.compiling materializes them first."""
    base = torch.randn(1, 8, 3, generator=torch.Generator().manual_seed(0))
    g = torch.randn(3, 8, 3, generator=torch.Generator().manual_seed(1))
    grads = []
    for impl in ("compiled", "reference"):
        x = base.expand(3, 8, 3).detach().requires_grad_()
        registry.get(op, impl).fn(x, 1).backward(g)
        grads.append(x.grad)
    assert torch.equal(grads[0], grads[1])


def test_an_exhausted_recompile_budget_compiles_afresh_not_eagerly():
    """Past dynamo's recompile budget the compiled op resets the caches and compiles again:
    the `thorough` profile's long sweep failed a correct implementation before this. With a
    budget of 2, six dtype/size specialisations all run, each through a fresh compile (the
    frame count grows), and each matches the reference."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    from mixology import registry

    fn = registry.get("softmax_attention", "compiled").fn
    ref = registry.get("softmax_attention", "reference").fn
    q = torch.randn(1, 2, 3, 4)
    fn(q, q, q, True)  # compiles once, setting dynamo's budget (compile_reference)
    saved = torch._dynamo.config.recompile_limit
    torch._dynamo.config.recompile_limit = 2
    try:
        before = counters["stats"]["unique_graphs"]
        for dtype in (torch.float32, torch.float64, torch.bfloat16):
            for T in (1, 5):
                q = torch.randn(1, 2, T, 4, dtype=dtype)
                torch.testing.assert_close(fn(q, q, q, True), ref(q, q, q, True))
        assert counters["stats"]["unique_graphs"] > before  # compiled, not eager
    finally:
        torch._dynamo.config.recompile_limit = saved


def test_compiled_causal_attention_on_strided_inputs_is_the_references():
    """Inductor with dynamic shapes got causal softmax attention 1.8 wrong on every-other-row
    q, k, v with large scores (found by `thorough`: attn_large_scores [compiled], layout
    'strided'); compiled ops now take non-contiguous inputs as contiguous copies."""
    g = torch.Generator().manual_seed(2257)
    q, k, v = ((100 * torch.randn(1, 1, 14, 1, generator=g, dtype=torch.float64))[:, :, ::2]
               for _ in range(3))
    assert q.stride() == (14, 14, 2, 1) and not q.is_contiguous()
    fn = registry.get("softmax_attention", "compiled").fn
    ref = registry.get("softmax_attention", "reference").fn
    torch.testing.assert_close(fn(q, k, v, True, True), ref(q, k, v, True, True),
                               rtol=1e-12, atol=1e-12)
