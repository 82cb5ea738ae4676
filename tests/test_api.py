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
