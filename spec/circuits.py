"""Properties of the circuits of attention-only models (mixology/lab/circuits.py), float64.

Each is a plain function ``fn()`` (registered by ``@circuit_property``) over random small
models of every attention-only configuration: softmax or quadratic attention, 1 or 2 layers,
learned, RoPE or no positions, every parameter (biases too) drawn at random. The model's own
forward and its own attention op (through lab.tracing's trace) are the oracles.
``tests/lab/test_lab_spec.py`` shows they hold, that each of ``CIRCUIT_MUTANTS`` is rejected and
that each property rejects one.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch

from mixology.lab import circuits, tracing
from mixology.lab.model import CausalLM, ModelConfig
from mixology.registry import patched

CIRCUIT_PROPERTIES: dict[str, Callable[[], None]] = {}


def circuit_property(fn):
    CIRCUIT_PROPERTIES[fn.__name__] = fn
    return fn


CONFIGS = [dict(mixer=mx, n_layers=n, positional=pos) for mx, n, pos in itertools.product(
    ("softmax_attention", "quadratic_attention"), (1, 2), ("learned", "rope", "none"))]


def attention_only(seed: int = 0, **kw) -> CausalLM:
    """A random attention-only model (V=13, T=6, D=8, 2 heads), every parameter N(0, 0.5²)
    (biases and the learned positions too, so every path carries weight)."""
    cfg = ModelConfig(**{**dict(vocab_size=13, context=6, d_model=8, n_heads=2, norm="none",
                                activation="none", final_norm=False, tie_weights=False), **kw})
    m = CausalLM(cfg, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return m


def _idx(m: CausalLM, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, m.config.vocab_size, (2, m.config.context),
                         generator=torch.Generator().manual_seed(seed))


@circuit_property
def path_expansion_reconstructs_the_logits():
    """Direct path + one term per head (+ per pair of heads and the bias paths for two
    layers) sums to the model's logits, within 1e-10 of their scale, in every config."""
    for cfg in CONFIGS:
        m = attention_only(**cfg)
        idx = _idx(m)
        with torch.no_grad():
            want, _ = m(idx)
            paths = circuits.path_expansion(m, idx)
        got = sum(paths.values())
        err = float((got - want).abs().max() / want.abs().max())
        assert err <= 1e-10, f"{cfg}: the paths miss the logits by {err:.2e} of their scale"
        if cfg["n_layers"] == 2:
            assert "L0H1->L1H0" in paths  # the virtual heads are there


@circuit_property
def pattern_from_the_qk_circuit_is_the_models():
    """Every layer's pattern computed from the QK circuit (bilinear form, RoPE offsets,
    1/√d or square/d, causal mask) equals the pattern the model's attention op computes."""
    for cfg in CONFIGS:
        m = attention_only(**cfg)
        idx = _idx(m)
        with torch.no_grad():  # the model's own ops, its attention re-run with v = I
            seen = [t["pattern"] for t in tracing.trace(m, idx)[0]]
            mine = circuits.layer_patterns(m, idx)
        for layer, (a, b) in enumerate(zip(mine, seen, strict=True)):
            err = float((a - b).abs().max() / b.abs().max())
            assert err <= 1e-10, f"{cfg}: layer {layer}'s pattern off by {err:.2e}"


@circuit_property
def factored_svd_is_the_svd_of_the_product():
    """The QK and OV circuits' SVD from their factors equals the SVD of the explicit V x V
    product: the same singular values, and U S Vh rebuilds the product."""
    m = attention_only(n_layers=1, mixer="softmax_attention", positional="learned")
    m.requires_grad_(False)
    for fm in (circuits.qk_circuit(m, 0, 1), circuits.ov_circuit(m, 0, 0)):
        full = fm.full()
        u, s, vh = fm.svd()
        want = torch.linalg.svdvals(full)[:len(s)]
        assert torch.allclose(s, want, rtol=1e-10, atol=1e-12 * float(want[0])), (s, want)
        assert torch.allclose(u @ torch.diag(s) @ vh, full, atol=1e-10 * float(s[0]))
        eig = fm.eigenvalues()
        full_eig = torch.linalg.eigvals(full)
        top = full_eig[full_eig.abs().argsort(descending=True)][:len(eig)]
        assert torch.allclose(eig.abs().sort().values, top.abs().sort().values,
                              rtol=1e-8, atol=1e-10 * float(s[0]))


@circuit_property
def qk_circuit_is_symmetric_only_when_w_q_is_w_k():
    """The seed calls the QK circuit symmetric: it is not in general (a random head's is far
    from it), it is when W_Q' = W_K'; quadratic attention's 4-index score is symmetric under
    exchanging its two copies whatever the weights."""
    m = attention_only(n_layers=1, mixer="quadratic_attention", positional="none")
    m.requires_grad_(False)
    M = circuits.qk_circuit(m, 0, 0).full()
    asym = float((M - M.mT).norm() / M.norm())
    assert asym > 0.1, f"a random QK circuit is symmetric (asymmetry {asym:.3f})"
    p = m.blocks[0].params
    with torch.no_grad():
        p["wk"].copy_(p["wq"])
        p["bk"].copy_(p["bq"])
    M = circuits.qk_circuit(m, 0, 0).full()
    assert torch.allclose(M, M.mT, rtol=0, atol=1e-12 * float(M.abs().max()))
    m = attention_only(n_layers=1, mixer="quadratic_attention", positional="none", seed=3)
    m.requires_grad_(False)
    tokens = torch.arange(5)
    S = circuits.quadratic_tensor(m, 0, 1, tokens)
    assert torch.allclose(S, S.permute(1, 0, 3, 2), rtol=0, atol=1e-12 * float(S.abs().max()))
    M = circuits.qk_circuit(m, 0, 1).full()[tokens][:, tokens]
    d = m.config.d_model // m.config.n_heads
    diag = torch.einsum("iikk->ik", S)
    assert torch.allclose(diag, M * M / d, rtol=1e-12), "S[i,i,k,k] is not the score"


# --- mutants ------------------------------------------------------------------------------

def ov_factors_in_the_wrong_order():
    """A head's OV term computed W_O then W_V (x W_Oᵀ W_Vᵀ, the transposed map)."""
    def ov_factors(p, sl):
        w_o_t = torch.cat([p["wo"][sl].mT, p["bv"][sl][None]])
        return w_o_t, p["wv"][:, sl].mT
    return patched(circuits, ov_factors=ov_factors)


def positions_dropped_from_the_direct_path():
    """The direct path is W_E[tok] W_Uᵀ: the learned positions' own logits are lost."""
    def direct_path(m, idx):
        return m.tok_emb.weight[idx] @ m.output_weight.mT
    return patched(circuits, direct_path=direct_path)


def quadratic_score_without_one_over_d():
    """Quadratic attention's score from the circuit as (q·k)², the 1/d forgotten."""
    return patched(circuits, quadratic_score=lambda form, d: form * form)


def svd_of_the_factors_swapped():
    """The factored SVD taken of B A (d x d) instead of A B: right for the eigenvalues,
    wrong for the singular values."""
    def svd(self):
        u, s, vh = torch.linalg.svd(self.B @ self.A)
        return self.A @ u, s, vh @ self.B
    return patched(circuits.FactoredMatrix, svd=svd)


def qk_circuit_with_w_q_twice():
    """The QK circuit's key side built from W_Q' (a copy-paste slip): always symmetric."""
    def qk_circuit(m, layer, head):
        p, sl = m.blocks[layer].params, circuits.head_slices(m)[head]
        e = circuits._ones(m.tok_emb.weight)
        q = e @ circuits._aug(p["wq"], p["bq"])[:, sl]
        return circuits.FactoredMatrix(q, q.mT)
    return patched(circuits, qk_circuit=qk_circuit)


CIRCUIT_MUTANTS = {f.__name__: f for f in (
    ov_factors_in_the_wrong_order, positions_dropped_from_the_direct_path,
    quadratic_score_without_one_over_d, svd_of_the_factors_swapped,
    qk_circuit_with_w_q_twice)}
