"""The public API: names, dispatch, the module, the registry."""

import os

import pytest
import torch

import mixology
from mixology import registry

DEVICE = os.environ["MIXOLOGY_DEVICE"]


@pytest.mark.parametrize("impl", registry.implementations("token_mixer", DEVICE))
def test_token_mixer_module_is_layernorm_of_x_plus_mix(impl):
    torch.manual_seed(0)
    m = mixology.TokenMixer(num_tokens=8, hidden_dim=64, num_heads=8, impl=impl, device=DEVICE)
    with torch.no_grad():
        m.weight.uniform_(0.5, 1.5)
        m.bias.normal_()
    x = torch.randn(4, 8, 64, device=DEVICE)
    want = torch.nn.functional.layer_norm(x + mixology.token_mix(x, 8), (64,), m.weight, m.bias)
    torch.testing.assert_close(m(x), want)
    m(x).sum().backward()
    assert m.weight.grad is not None and m.bias.grad is not None


@pytest.mark.parametrize("impl", registry.implementations("token_mix", DEVICE))
def test_functional_api_dispatches(impl):
    x = torch.randn(2, 4, 12, device=DEVICE)
    y = mixology.token_mix(x, 4, impl=impl)
    assert torch.equal(mixology.token_unmix(y, 4, impl=impl), x)
    # H == T: output token h is the concatenation of head h of every input token
    assert torch.equal(y[:, 1], x[:, :, 3:6].reshape(2, 12))


def test_unknown_names_are_value_errors():
    with pytest.raises(ValueError, match="known"):
        mixology.token_mix(torch.zeros(1, 1, 2), 1, impl="nope")
    with pytest.raises(ValueError, match="known ops"):
        mixology.implementations("nope")
    with pytest.raises(ValueError, match="num_heads=3 must divide hidden_dim=8"):
        mixology.TokenMixer(2, 8, 3)


def test_triton_is_listed_only_where_it_runs(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert "triton" not in mixology.implementations("token_mix", "cpu")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert "triton" in mixology.implementations("token_mix", "cpu")


def test_load_callable_errors():
    with pytest.raises(ValueError, match="package.module:function"):
        registry.load_callable("no_colon")


def test_rankmixer_model_is_embeddings_then_its_blocks():
    torch.manual_seed(0)
    vocab = [5, 7, 3, 4]
    m = mixology.RankMixer(vocab, d_model=8, num_layers=3, num_heads=4, ff=32, device=DEVICE,
                           dtype=torch.float64)
    ids = torch.stack([torch.randint(0, v, (6,)) for v in vocab], dim=1).to(DEVICE)
    x = torch.stack([m.embeddings[t].weight[ids[:, t]] for t in range(4)], dim=1)
    for block in m.blocks:
        x = mixology.registry.get("rankmixer_block").fn(x, dict(block.params), 4, "gelu", 1e-5)
    assert torch.equal(m(ids), x)
    D, F, T, L = 8, 32, 4, 3
    assert sum(p.numel() for p in m.parameters()) == sum(vocab) * D + L * (
        4 * D + T * (2 * D * F + F + D))
    with pytest.raises(ValueError, match=r"ids must have shape \(B, T=4\)"):
        m(ids[:, :3])
    with pytest.raises(TypeError, match="ids must be an int64"):
        m(ids.float())


def test_standard_transformer_block_has_12d2_plus_13d_parameters():
    """Attention 4(D² + D), FFN with biases and its LayerNorm 8D² + 7D at ff = 4D, and the
    attention's LayerNorm 2D."""
    D = 16
    b = mixology.TransformerBlock(D, 4, 4 * D)
    assert sum(p.numel() for p in b.parameters()) == 12 * D * D + 13 * D
    y = b(torch.randn(2, 5, D))
    assert y.shape == (2, 5, D)


@pytest.mark.parametrize("impl", registry.implementations("transformer_block", DEVICE))
def test_transformer_block_module_runs_every_configuration(impl):
    torch.manual_seed(0)
    x = torch.randn(2, 5, 8, device=DEVICE)
    for mixer, causal in (("softmax_attention", True), ("quadratic_attention", True),
                          ("linear_attention", True), ("token_mix", False)):
        for residual in ("pre", "post", "sandwich"):
            for norm, activation in (("layer", "gelu"), ("rms", "swiglu"), ("none", "relu")):
                kw = dict(mixer=mixer, causal=causal, residual=residual, norm=norm,
                          activation=activation, device=DEVICE)
                got = mixology.TransformerBlock(8, 2, 16, impl=impl, **kw)
                want = mixology.TransformerBlock(8, 2, 16, **kw)
                want.load_state_dict(got.state_dict())
                torch.testing.assert_close(got(x), want(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("impl", registry.implementations("feed_forward", DEVICE))
def test_feed_forward_module_drops_only_while_training(impl):
    torch.manual_seed(0)
    m = mixology.FeedForward(8, 32, dropout=0.5, impl=impl, device=DEVICE)
    w = m.params
    x = torch.randn(3, 4, 8, device=DEVICE)
    plain = registry.get("feed_forward", impl).fn(x, w["w1"], w["b1"], w["w2"], w["b2"])
    m.eval()
    assert torch.equal(m(x), plain)
    m.train()
    torch.manual_seed(1)
    a = m(x)
    torch.manual_seed(1)
    assert torch.equal(m(x), a)  # torch.manual_seed replays the mask
    assert not torch.equal(m(x), a)  # and the next call draws another
    assert not torch.equal(a, plain)
    assert sum(p.numel() for p in m.parameters()) == 2 * 8 * 32 + 32 + 8
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        mixology.FeedForward(8, 32, dropout=1.0)
