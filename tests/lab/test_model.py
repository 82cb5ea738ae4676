"""The lab's model: token_mix refused with the reason, the same logits from every
implementation, output projections, presets, sampling. (Causality, the initial loss and tied
weights are lab properties in spec/lab.py.)"""

import os

import pytest
import torch

from mixology import registry
from mixology.lab.model import PRESETS, CausalLM, ModelConfig, preset
from mixology.spec.lab import CAUSAL_CONFIGS

DEVICE = os.environ["MIXOLOGY_DEVICE"]
TINY = dict(vocab_size=11, context=8, d_model=8, n_layers=2, n_heads=2, ff_mult=2)
def _model(impl="reference", dtype=torch.float64, **kw):
    torch.manual_seed(0)
    return CausalLM(ModelConfig(**{**TINY, **kw, "impl": impl}), device=DEVICE, dtype=dtype)


def test_token_mix_is_refused_in_a_causal_model_with_the_reason():
    with pytest.raises(ValueError, match="mixer: 'token_mix' is not causal"):
        CausalLM(ModelConfig(**TINY, mixer="token_mix"))


@pytest.mark.parametrize("impl", registry.implementations("transformer_block", DEVICE))
def test_every_implementation_gives_the_reference_logits(impl):
    for cfg in CAUSAL_CONFIGS[:3]:
        want, _ = _model(**cfg)(torch.arange(8, device=DEVICE)[None] % 11)
        got, _ = _model(impl, **cfg)(torch.arange(8, device=DEVICE)[None] % 11)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_output_projections_scaled_or_zero():
    m = _model(dtype=torch.float32, d_model=64, n_heads=4, ff_mult=4, n_layers=8)
    wo = torch.cat([b.params["wo"].detach().flatten() for b in m.blocks])
    wq = torch.cat([b.params["wq"].detach().flatten() for b in m.blocks])
    assert abs(float(wo.std()) / float(wq.std()) - 1 / 4) < 0.05  # 1/sqrt(2·8)
    z = _model(output_init="zero")
    assert all(not b.params["wo"].any() and not b.params["w2"].any() for b in z.blocks)


def test_presets_and_sampling():
    for name in PRESETS:
        assert preset(name).n_layers >= 1
    assert preset("transformer_2L").activation == "bilinear"
    with pytest.raises(ValueError, match="preset: unknown"):
        preset("nope")
    m = _model(dtype=torch.float32)
    start = torch.zeros(2, 1, dtype=torch.long, device=DEVICE)
    a = m.generate(start, 12, temperature=0.8, top_k=5, generator=torch.Generator().manual_seed(3))
    b = m.generate(start, 12, temperature=0.8, top_k=5, generator=torch.Generator().manual_seed(3))
    assert a.shape == (2, 13) and torch.equal(a, b)
    greedy = m.generate(start, 1, top_k=1)
    logits, _ = m(start)
    assert torch.equal(greedy[:, 1], logits[:, -1].argmax(-1))
