"""Circuits of attention-only lab models (Elhage et al., "A Mathematical Framework for
Transformer Circuits"), exact, in the lab's row-vector convention (x W, logits = x W_Uᵀ).

An attention-only model (no norm, no channel mixer, no final norm) is
    x0 = W_E[tok] + W_pos[t]                        (W_pos: learned positions, else 0)
    x_{l+1} = x_l + Σ_h A^{l,h} (x_l W_V^h + b_V^h) W_O^h + b_O^l
    logits = x_L W_Uᵀ
with A^{l,h} the pattern of head h in layer l. Every linear map with a bias is kept as one
augmented matrix acting on [x, 1], so the circuits are exact with biases:
- QK circuit of a head: the bilinear form (u, w) -> [u,1] W_Q' W_K'ᵀ [w,1]ᵀ / √d (softmax) or
  its square / d (quadratic attention: the 4-index contraction of the form with itself),
  RoPE inserting the rotation of the offset between the two factors; over the vocabulary,
  E' W_Q' W_K'ᵀ E'ᵀ as a FactoredMatrix (never formed unless asked).
- OV circuit of a head: [x,1] W_V' W_O^h, over the vocabulary E' W_V' W_O^h W_Uᵀ, factored.
- The path expansion of the logits: the direct path x0 W_Uᵀ, one term per head of layer 1,
  and for two layers, one per head of layer 2 on x0, one per pair of heads (the virtual
  heads: layer-1 head h then layer-2 head h'), and the bias paths; their sum is the
  model's logits (a property checks it to 1e-10 in float64).

``QK_SYMMETRY``: a QK circuit is not symmetric in general (the seed calls it symmetric); it
is when W_Q' = W_K' and there is no RoPE. The square of quadratic attention's form is
symmetric under exchanging its two copies, whatever the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from einops import einsum, rearrange

from mixology import registry
from mixology.lab.model import CausalLM


@dataclass
class FactoredMatrix:
    """M = A @ B kept as its factors (A: (m, k), B: (k, n)); SVD and products from them."""

    A: torch.Tensor
    B: torch.Tensor

    @property
    def shape(self) -> tuple[int, int]:
        return self.A.shape[0], self.B.shape[1]

    def full(self) -> torch.Tensor:
        return self.A @ self.B

    def svd(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(U, S, Vh) of A B with only min(m, k, n) singular values, from QR of the factors
        and the SVD of the small core: never forms the m x n product."""
        qa, ra = torch.linalg.qr(self.A)
        qb, rb = torch.linalg.qr(self.B.mT)
        u, s, vh = torch.linalg.svd(ra @ rb.mT)
        return qa @ u, s, vh @ qb.mT

    def eigenvalues(self) -> torch.Tensor:
        """The nonzero eigenvalues of A B (square): those of the small B A."""
        return torch.linalg.eigvals(self.B @ self.A)


def is_attention_only(cfg) -> bool:
    return (cfg.activation == "none" and cfg.norm == "none" and not cfg.final_norm
            and cfg.mixer in ("softmax_attention", "quadratic_attention"))


def check_attention_only(m: CausalLM) -> None:
    c = m.config
    if not is_attention_only(c):
        raise ValueError("model: circuits need an attention-only model (activation='none', "
                         "norm='none', final_norm=False, softmax or quadratic attention); got "
                         f"activation={c.activation!r}, norm={c.norm!r}, "
                         f"final_norm={c.final_norm}, mixer={c.mixer!r}")
    if c.positional in ("sinusoidal", "alibi"):
        raise ValueError(f"model: positional={c.positional!r} is not supported by the circuits "
                         "(learned, rope or none)")


def _aug(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[W; b]: the map x -> x W + b as one matrix acting on [x, 1]."""
    return torch.cat([w, b[None]], dim=0)


def _ones(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)


def head_slices(m: CausalLM) -> list[slice]:
    d = m.config.d_model // m.config.n_heads
    return [slice(h * d, (h + 1) * d) for h in range(m.config.n_heads)]


def embed(m: CausalLM, idx: torch.Tensor) -> torch.Tensor:
    """x0 = W_E[tok] + W_pos[t]: the residual stream entering layer 1."""
    x = m.tok_emb.weight[idx]
    return x + m.pos_emb[:idx.shape[1]] if m.pos_emb is not None else x


def direct_path(m: CausalLM, idx: torch.Tensor) -> torch.Tensor:
    """The logits of the embedding alone: (W_E[tok] + W_pos[t]) W_Uᵀ."""
    return embed(m, idx) @ m.output_weight.mT


def _rope(m: CausalLM, q: torch.Tensor) -> torch.Tensor:
    if m.config.positional != "rope":
        return q
    return registry.get("rope", "reference").fn(q, False)


def scores(m: CausalLM, layer: int, x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, S) attention scores of ``layer`` from its QK circuit, the bilinear form
    [x_t,1] W_Q'^h (R_t R_sᵀ) W_K'^hᵀ [x_s,1]ᵀ, scaled (1/√d) or squared (/d)."""
    p = m.blocks[layer].params
    d = m.config.d_model // m.config.n_heads
    q = rearrange(_ones(x) @ _aug(p["wq"], p["bq"]), "b t (h d) -> b h t d", d=d)
    k = rearrange(_ones(x) @ _aug(p["wk"], p["bk"]), "b t (h d) -> b h t d", d=d)
    form = einsum(_rope(m, q), _rope(m, k), "b h t d, b h s d -> b h t s")
    if m.config.mixer == "quadratic_attention":
        return quadratic_score(form, d)
    return form / math.sqrt(d)


def quadratic_score(form: torch.Tensor, d: int) -> torch.Tensor:
    """Quadratic attention's score from the QK form: (q·k)²/d (the form contracted with its
    copy; over the vocabulary, the 4-index ``quadratic_tensor``)."""
    return form * form / d


def pattern(m: CausalLM, layer: int, x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, S) attention pattern of ``layer`` on its input ``x``, from the QK circuit."""
    s = scores(m, layer, x)
    T = x.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
    if m.config.mixer == "quadratic_attention":
        return s * causal
    return s.masked_fill(~causal, float("-inf")).softmax(dim=-1)


def head_outputs(m: CausalLM, layer: int, x: torch.Tensor, a: torch.Tensor,
                 source: torch.Tensor | None = None, with_bias: bool = True) -> torch.Tensor:
    """(H, B, T, D): head h's write A^h ([source,1] W_V'^h) W_O^h, ``source`` defaulting to
    ``x`` (the pattern ``a`` is given: the path expansion takes it from the model);
    ``with_bias=False`` leaves out the value bias (a path that starts past the embedding)."""
    p = m.blocks[layer].params
    src = x if source is None else source
    outs = []
    for h, sl in enumerate(head_slices(m)):
        w_v, w_o = ov_factors(p, sl)
        if not with_bias:
            w_v = torch.cat([w_v[:-1], torch.zeros_like(w_v[-1:])])
        outs.append(einsum(a[:, h], _ones(src) @ w_v, "b t s, b s e -> b t e") @ w_o)
    return torch.stack(outs)


def ov_factors(p, sl: slice) -> tuple[torch.Tensor, torch.Tensor]:
    """(W_V'^h (D+1, d), W_O^h (d, D)) of the head whose channels are ``sl``: its OV map
    is [x,1] -> [x,1] W_V'^h W_O^h."""
    return _aug(p["wv"], p["bv"])[:, sl], p["wo"][sl]


def layer_patterns(m: CausalLM, idx: torch.Tensor) -> list[torch.Tensor]:
    """The model's own pattern of every layer on ``idx`` (the residual stream run through)."""
    x, out = embed(m, idx), []
    for layer in range(m.config.n_layers):
        a = pattern(m, layer, x)
        out.append(a)
        x = x + head_outputs(m, layer, x, a).sum(0) + m.blocks[layer].params["bo"]
    return out


def path_expansion(m: CausalLM, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """The logits of ``idx`` as a sum of paths, each (B, T, V): "direct"; "L0H{h}" (a
    layer-1 head on the embedding); "L0bias" (b_O); for two layers "L1H{h}" (a layer-2 head
    on the embedding), "L0H{h}->L1H{g}" (virtual heads), "L0bias->L1H{g}" and "L1bias".
    The patterns are the model's (layer_patterns)."""
    check_attention_only(m)
    if m.config.n_layers > 2:
        raise ValueError(f"model: the path expansion is written for 1 or 2 layers, got "
                         f"{m.config.n_layers}")
    x0 = embed(m, idx)
    pats = layer_patterns(m, idx)
    W_U = m.output_weight
    paths = {"direct": direct_path(m, idx)}
    p0 = m.blocks[0].params
    first = head_outputs(m, 0, x0, pats[0])
    for h in range(m.config.n_heads):
        paths[f"L0H{h}"] = first[h] @ W_U.mT
    paths["L0bias"] = (p0["bo"] @ W_U.mT).expand_as(paths["direct"])
    if m.config.n_layers == 2:
        p1 = m.blocks[1].params
        on_x0 = head_outputs(m, 1, x0, pats[1])  # value bias counted here, once
        for g in range(m.config.n_heads):
            paths[f"L1H{g}"] = on_x0[g] @ W_U.mT
        for h in range(m.config.n_heads):
            virtual = head_outputs(m, 1, x0, pats[1], source=first[h], with_bias=False)
            for g in range(m.config.n_heads):
                paths[f"L0H{h}->L1H{g}"] = virtual[g] @ W_U.mT
        bias_in = p0["bo"].expand_as(x0)
        through = head_outputs(m, 1, x0, pats[1], source=bias_in, with_bias=False)
        for g in range(m.config.n_heads):
            paths[f"L0bias->L1H{g}"] = through[g] @ W_U.mT
        paths["L1bias"] = (p1["bo"] @ W_U.mT).expand_as(paths["direct"])
    return paths


# --- circuits over the vocabulary -------------------------------------------------------

def qk_circuit(m: CausalLM, layer: int, head: int) -> FactoredMatrix:
    """E' W_Q'^h W_K'^hᵀ E'ᵀ (V x V, unscaled, no RoPE offset): the bilinear form between a
    query token and a key token through the embedding (layer 1's direct QK circuit)."""
    p, sl = m.blocks[layer].params, head_slices(m)[head]
    e = _ones(m.tok_emb.weight)
    return FactoredMatrix(e @ _aug(p["wq"], p["bq"])[:, sl],
                          (e @ _aug(p["wk"], p["bk"])[:, sl]).mT)


def ov_circuit(m: CausalLM, layer: int, head: int) -> FactoredMatrix:
    """E' W_V'^h W_O^h W_Uᵀ (V x V): the logits a source token writes through the head."""
    w_v, w_o = ov_factors(m.blocks[layer].params, head_slices(m)[head])
    return FactoredMatrix(_ones(m.tok_emb.weight) @ w_v, w_o @ m.output_weight.mT)


def quadratic_tensor(m: CausalLM, layer: int, head: int, tokens: torch.Tensor) -> torch.Tensor:
    """Quadratic attention's score as a 4-index tensor over ``tokens`` (n of them):
    S[i, j, k, l] = M[i, k] M[j, l] / d with M the QK circuit, so that the score of query i
    and key k is S[i, i, k, k]; it is symmetric under exchanging the two copies
    (i, k) <-> (j, l) whatever the weights."""
    qk = qk_circuit(m, layer, head)
    a, b = qk.A[tokens], qk.B[:, tokens]
    d = m.config.d_model // m.config.n_heads
    return einsum(a, b, a, b, "i r, r k, j s, s l -> i j k l") / d


# --- what `mixology circuits RUN_DIR` prints and draws ----------------------------------

def _char(c: str) -> str:
    return repr(c)[1:-1] if not c.isprintable() or c == " " else c


def _top_pairs(full: torch.Tensor, chars, n: int) -> str:
    flat = full.flatten().topk(n).indices
    V = full.shape[1]
    return "  ".join(f"{_char(chars[int(i) // V])}->{_char(chars[int(i) % V])} "
                     f"{float(full.flatten()[i]):+.2f}" for i in flat)


def summary(m: CausalLM, chars, top: int = 5) -> str:
    """Per layer and head: the top singular values of QK and OV, and their top token pairs
    (QK: query -> key the head attends to most through the embedding; OV: source token ->
    the logit it raises most)."""
    check_attention_only(m)
    m = m.double().requires_grad_(False)
    c = m.config
    lines = [f"attention-only model: {c.n_layers} layer(s) x {c.n_heads} heads, "
             f"{c.mixer}, positional={c.positional}, vocab {c.vocab_size}",
             "QK is E' W_Q' W_K'ᵀ E'ᵀ (layer 1's direct QK circuit; RoPE adds a rotation per "
             "offset, not shown); OV is E' W_V' W_O W_Uᵀ"]
    for layer in range(c.n_layers):
        for head in range(c.n_heads):
            qk, ov = qk_circuit(m, layer, head), ov_circuit(m, layer, head)
            sq, so = qk.svd()[1][:top], ov.svd()[1][:top]
            lines += [f"L{layer}H{head}",
                      "  QK singular values: " + " ".join(f"{float(v):.3g}" for v in sq),
                      "  QK top query->key:  " + _top_pairs(qk.full(), chars, top),
                      "  OV singular values: " + " ".join(f"{float(v):.3g}" for v in so),
                      "  OV top source->out: " + _top_pairs(ov.full(), chars, top)]
    return "\n".join(lines)


def heatmaps(m: CausalLM, chars, out_dir) -> list:
    """One PNG per layer and head: its QK and OV circuits over the vocabulary."""

    # matplotlib loads only to draw, with the Agg backend set before pyplot
    import matplotlib

    matplotlib.use("Agg")
    # matplotlib loads only to draw, with the Agg backend set before pyplot
    import matplotlib.pyplot as plt

    check_attention_only(m)
    m = m.double().requires_grad_(False)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = [_char(ch) for ch in chars]
    paths = []
    for layer in range(m.config.n_layers):
        for head in range(m.config.n_heads):
            fig, axes = plt.subplots(1, 2, figsize=(13, 6))
            for ax, (name, fm, ylab, xlab) in zip(axes, (
                    ("QK", qk_circuit(m, layer, head), "query token", "key token"),
                    ("OV", ov_circuit(m, layer, head), "source token", "output logit")),
                    strict=True):
                full = fm.full().numpy()
                lim = abs(full).max()
                im = ax.imshow(full, cmap="RdBu_r", vmin=-lim, vmax=lim)
                ax.set_title(f"L{layer}H{head} {name} circuit")
                ax.set_xlabel(xlab)
                ax.set_ylabel(ylab)
                ax.set_xticks(range(len(labels)), labels, fontsize=5)
                ax.set_yticks(range(len(labels)), labels, fontsize=5)
                fig.colorbar(im, ax=ax, shrink=0.7)
            fig.tight_layout()
            path = out / f"L{layer}H{head}.png"
            fig.savefig(path, dpi=100)
            plt.close(fig)
            paths.append(path)
    return paths
