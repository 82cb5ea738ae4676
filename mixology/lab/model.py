"""A causal character language model made of the registry's ops (as plain as nanoGPT's).

    tokens -> embedding (+ learned | sinusoidal position) -> N x transformer_block
           -> final norm -> unembedding (tied to the embedding, or its own)

Every block is ``mixology.TransformerBlock``: the registered ``transformer_block`` op (its
``impl``: reference | native | triton) with the config's mixer, norm, residual style,
channel mixer and position encoding (rope and alibi live inside attention; linear attention
with its feature map). The final norm and
the sinusoidal encoding are the registered ops too; nothing here re-implements them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from mixology import registry
from mixology.lab.data import IGNORE
from mixology.nn import TransformerBlock
from mixology.ops.blocks.reference import FEATURE_MAPS

POSITIONALS = ("learned", "sinusoidal", "rope", "alibi", "none")
OUTPUT_PARAMS = ("wo", "w2", "w_down", "w_out")  # each branch's output projection


@dataclass
class ModelConfig:
    vocab_size: int = 65
    context: int = 64
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    ff_mult: int = 4  # channel mixer width F = ff_mult * d_model
    mixer: str = "softmax_attention"  # | quadratic_attention | linear_attention (token_mix
    # is not causal)
    positional: str = "learned"  # learned | sinusoidal | rope | alibi | none
    feature_map: str = "none"  # linear attention's φ on q and k: none | elu (elu + 1) | relu
    norm: str = "layer"  # layer | rms | none
    residual: str = "pre"  # pre | post | sandwich
    activation: str = "gelu"  # relu | gelu | swish | swiglu | bilinear | none (attention-only)
    final_norm: bool = True
    tie_weights: bool = True
    init_std: float = 0.02
    output_init: str = "scaled"  # "scaled": output projections N(0, std/sqrt(2 L)); "zero"
    eps: float = 1e-5
    impl: str = "reference"  # the transformer_block / norm / sinusoidal implementation

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        return config_from_dict(cls, d)


def config_from_dict(cls, d: dict):
    """``cls(**d)`` for a config dataclass, refusing an unknown key by name."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"config: unknown key {unknown[0]!r}; known: {sorted(known)}")
    return cls(**d)


def check_config(c: ModelConfig) -> None:
    if c.mixer == "token_mix":
        raise ValueError(
            "mixer: 'token_mix' is not causal: every output token mixes every input token "
            "(token_mix is a permutation across the sequence; the spec's "
            "full_mixing_when_heads_equal_tokens shows it), so a causal language model "
            "would read the future. Use it in non-causal models (mixology.TokenMixer).")
    if c.positional not in POSITIONALS:
        raise ValueError(f"positional: expected one of {POSITIONALS}, got {c.positional!r}")
    if c.feature_map not in FEATURE_MAPS:
        raise ValueError(f"feature_map: expected one of {tuple(FEATURE_MAPS)}, got "
                         f"{c.feature_map!r}")
    if c.feature_map != "none" and c.mixer != "linear_attention":
        raise ValueError(f"feature_map: {c.feature_map!r} maps linear attention's q and k; "
                         f"mixer is {c.mixer!r} (use feature_map=none)")
    if c.output_init not in ("scaled", "zero"):
        raise ValueError(f"output_init: expected 'scaled' or 'zero', got {c.output_init!r}")
    for name in ("vocab_size", "context", "d_model", "n_layers", "n_heads", "ff_mult"):
        if not isinstance(getattr(c, name), int) or getattr(c, name) < 1:
            raise ValueError(f"{name}: expected a positive int, got {getattr(c, name)!r}")
    if c.d_model % c.n_heads:
        raise ValueError(f"n_heads: {c.n_heads} does not divide d_model {c.d_model}")


def make_block(c: ModelConfig, layer: int, impl=None, **kw) -> TransformerBlock:
    """Block ``layer`` of the model: causal, with the config's choices (``impl``: a
    transformer_block implementation, name or callable, other than the config's)."""
    inner = c.positional if c.positional in ("rope", "alibi") else "none"
    return TransformerBlock(c.d_model, c.n_heads, c.ff_mult * c.d_model, mixer=c.mixer,
                            causal=True, residual=c.residual, norm=c.norm,
                            activation=c.activation, eps=c.eps, positional=inner,
                            feature_map=c.feature_map, impl=impl or c.impl, **kw)


def unembedding(c: ModelConfig, tok_emb: nn.Embedding, **kw) -> nn.Parameter | None:
    """The unembedding's own matrix, or None when tied (the output uses the embedding)."""
    return None if c.tie_weights else nn.Parameter(torch.zeros(c.vocab_size, c.d_model, **kw))


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the targets that are not padding (``IGNORE``), in float32
    at least: ``logits (B, T, V)``, ``targets (B, T)``."""
    logits = logits.reshape(-1, logits.shape[-1])
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    return F.cross_entropy(logits, targets.reshape(-1), ignore_index=IGNORE)


class CausalLM(nn.Module):
    """``forward(idx: (B, T) long, targets: (B, T) | None) -> (logits (B, T, V), loss)``;
    targets equal to ``IGNORE`` are padding (no loss)."""

    def __init__(self, config: ModelConfig, device=None, dtype=None):
        super().__init__()
        check_config(config)
        c = self.config = config
        kw = dict(device=device, dtype=dtype)
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model, **kw)
        self.pos_emb = (nn.Parameter(torch.zeros(c.context, c.d_model, **kw))
                        if c.positional == "learned" else None)
        self.blocks = nn.ModuleList(make_block(c, layer, **kw) for layer in range(c.n_layers))
        self.norm_weight = self.norm_bias = None
        if c.final_norm and c.norm != "none":
            self.norm_weight = nn.Parameter(torch.ones(c.d_model, **kw))
            if c.norm == "layer":
                self.norm_bias = nn.Parameter(torch.zeros(c.d_model, **kw))
        self.unembed = unembedding(c, self.tok_emb, **kw)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Embeddings and matrices N(0, init_std²), biases 0, norm gains 1; each branch's
        output projection N(0, (init_std/√(2L))²) or zero (config.output_init)."""
        c = self.config
        nn.init.normal_(self.tok_emb.weight, std=c.init_std)
        if self.pos_emb is not None:
            nn.init.normal_(self.pos_emb, std=c.init_std)
        if self.unembed is not None:
            nn.init.normal_(self.unembed, std=c.init_std)
        out_std = c.init_std / math.sqrt(2 * c.n_layers) if c.output_init == "scaled" else 0.0
        for block in self.blocks:
            for name, p in block.params.items():
                with torch.no_grad():
                    if name.endswith("_weight"):
                        p.fill_(1.0)
                    elif p.ndim == 1:
                        p.zero_()
                    elif name in OUTPUT_PARAMS and not (name == "w2" and
                                                        c.activation == "bilinear"):
                        p.normal_(0.0, out_std) if out_std else p.zero_()
                    else:
                        p.normal_(0.0, c.init_std)

    @property
    def output_weight(self) -> torch.Tensor:
        return self.tok_emb.weight if self.unembed is None else self.unembed

    def _op(self, name):
        impls = registry.implementations(name, self.tok_emb.weight.device.type)
        return registry.get(name, self.config.impl if self.config.impl in impls
                            else "reference").fn

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        """The residual stream entering block 1: token embedding + position encoding."""
        c = self.config
        if idx.shape[1] > c.context:
            raise ValueError(f"idx: {idx.shape[1]} tokens, more than the context {c.context}")
        x = self.tok_emb(idx)
        if self.pos_emb is not None:
            x = x + self.pos_emb[:idx.shape[1]]
        elif c.positional == "sinusoidal":
            x = self._op("sinusoidal")(x)
        return x

    def unembed_stream(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from the residual stream leaving the last block: final norm, unembedding."""
        c = self.config
        if self.norm_weight is not None:
            x = (self._op("layer_norm")(x, self.norm_weight, self.norm_bias, c.eps)
                 if c.norm == "layer" else self._op("rms_norm")(x, self.norm_weight, c.eps))
        return x @ self.output_weight.t()

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        x = self.embed(idx)
        for block in self.blocks:
            x = block(x)
        logits = self.unembed_stream(x)
        return logits, None if targets is None else lm_loss(logits, targets)

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, new_tokens: int, *, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None):
        """Append ``new_tokens`` sampled tokens to ``idx: (B, T)`` (the last ``context``
        tokens as the window), at ``temperature``, from the ``top_k`` most likely."""
        if temperature <= 0:
            raise ValueError(f"temperature: expected > 0, got {temperature}")
        for _ in range(new_tokens):
            logits, _ = self(idx[:, -self.config.context:])
            logits = logits[:, -1, :].float() / temperature
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
        return idx


PRESETS: dict[str, dict] = {
    # nanoGPT's shakespeare-char recipe, for a GPU
    "shakespeare-char": dict(context=256, d_model=384, n_layers=6, n_heads=6),
    # its CPU variant: 4 layers, 4 heads, 128 wide, context 64 (batch 12, 2000 steps)
    "shakespeare-char-cpu": dict(context=64, d_model=128, n_layers=4, n_heads=4),
    # the bilinear-transformer seed's toy models: quadratic attention, bilinear MLPs, RoPE,
    # no norm
    "attention_only_1L": dict(n_layers=1, mixer="quadratic_attention", positional="rope",
                              norm="none", activation="none", final_norm=False),
    "attention_only_2L": dict(n_layers=2, mixer="quadratic_attention", positional="rope",
                              norm="none", activation="none", final_norm=False),
    "transformer_1L": dict(n_layers=1, mixer="quadratic_attention", positional="rope",
                           norm="none", activation="bilinear", final_norm=False),
    "transformer_2L": dict(n_layers=2, mixer="quadratic_attention", positional="rope",
                           norm="none", activation="bilinear", final_norm=False),
}


def preset(name: str, **overrides) -> ModelConfig:
    if name not in PRESETS:
        raise ValueError(f"preset: unknown {name!r}; known: {', '.join(PRESETS)}")
    return ModelConfig.from_dict({**PRESETS[name], **overrides})
