"""The lab's model: causal for every causal configuration, initial loss ln(vocab), tied
weights shared, the same logits from every implementation, presets, sampling."""

import math
import os

import pytest
import torch

from mixology import registry
from mixology.lab.model import PRESETS, CausalLM, ModelConfig, preset

DEVICE = os.environ["MIXOLOGY_DEVICE"]
TINY = dict(vocab_size=11, context=8, d_model=8, n_layers=2, n_heads=2, ff_mult=2)
CAUSAL_CONFIGS = [
    dict(mixer=m, positional=p, activation=a, residual=r, norm=n)
    for m, p, a, r, n in [
        ("softmax_attention", "learned", "gelu", "pre", "layer"),
        ("softmax_attention", "rope", "swiglu", "post", "rms"),
        ("softmax_attention", "alibi", "bilinear", "sandwich", "layer"),
        ("softmax_attention", "sinusoidal", "none", "pre", "none"),
        ("quadratic_attention", "rope", "bilinear", "pre", "none"),
        ("quadratic_attention", "none", "relu", "sandwich", "rms"),
    ]]


def _model(impl="reference", dtype=torch.float64, **kw):
    torch.manual_seed(0)
    return CausalLM(ModelConfig(**{**TINY, **kw, "impl": impl}), device=DEVICE, dtype=dtype)


@pytest.mark.parametrize("cfg", CAUSAL_CONFIGS, ids=lambda c: "-".join(c.values()))
def test_whole_model_is_causal(cfg):
    """Changing tokens s.. leaves the logits of positions ..s-1 bit for bit, and their
    gradient never reaches the embeddings of later tokens (∂logits_t/∂x_s = 0 for s > t)."""
    m = _model(**cfg)
    g = torch.Generator().manual_seed(1)
    idx = torch.randint(0, 11, (2, 8), generator=g).to(DEVICE)
    for s in (1, 4, 7):
        moved = idx.clone()
        moved[:, s:] = (moved[:, s:] + 1) % 11
        a, _ = m(idx)
        b, _ = m(moved)
        assert torch.equal(a[:, :s], b[:, :s]), (cfg, s)
    emb = m.tok_emb(idx).detach().requires_grad_()
    x = emb + (m.pos_emb[:8] if m.pos_emb is not None else 0)
    if cfg["positional"] == "sinusoidal":
        x = registry.get("sinusoidal", "reference").fn(x)
    for block in m.blocks:
        x = block(x)
    x[:, :4].sum().backward()
    assert not emb.grad[:, 4:].any()


def test_initial_loss_is_ln_vocab():
    """At init (std 0.02, final LayerNorm, tied weights) the logits have std σ ≈ 0.02·√d_model
    = 0.23 at d = 128, so the loss is ln V + σ²/2 ≈ ln V + 0.03; with tied weights the input
    token's own logit is larger (the residual stream carries its embedding: measured +0.05 in
    all). Bound: within 0.1 of ln 65; an init std of 1 (a common slip) gives a loss past 10."""
    torch.manual_seed(0)
    m = CausalLM(ModelConfig(vocab_size=65, d_model=128, n_heads=4, context=64), device=DEVICE)
    idx = torch.randint(0, 65, (8, 64), device=DEVICE)
    _, loss = m(idx, torch.randint(0, 65, (8, 64), device=DEVICE))
    assert abs(float(loss.detach()) - math.log(65)) < 0.1, float(loss.detach())


def test_tied_weights_are_one_tensor():
    m = _model()
    assert m.output_weight is m.tok_emb.weight and m.unembed is None
    n_tied = sum(p.numel() for p in m.parameters())
    untied = _model(tie_weights=False)
    assert sum(p.numel() for p in untied.parameters()) == n_tied + 11 * 8
    idx = torch.randint(0, 11, (2, 8), device=DEVICE)
    _, loss = m(idx, idx)
    loss.backward()
    assert m.tok_emb.weight.grad is not None  # both uses accumulate into the one tensor


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
