"""Whole blocks, written once over their components: RankMixer and a MetaFormer-style
transformer block.

- ``rankmixer_block(x, params, num_heads, activation, eps)`` (arXiv 2507.15551, Post-LN):
  S = LayerNorm(x + token_mix(x)) (the ``token_mixer`` op), then LayerNorm(S + PFFN(S)).
- ``transformer_block(x, params, num_heads, mixer, causal, residual, norm, activation, eps,
  positional, feature_map)``: a token-mixing branch (softmax, quadratic or linear attention,
  or token mixing; linear attention with RetNet's fixed decays per head) and a
  channel-mixing branch (FFN, SwiGLU or bilinear; ``activation="none"``: no channel mixing,
  an attention-only block), each with a residual, wired Pre-LN, Post-LN or Sandwich:

      pre:       x = x + mix(N1(x));           x = x + ffn(N2(x))
      post:      x = N1(x + mix(x));           x = N2(x + ffn(x))
      sandwich:  x = x + N1'(mix(N1(x)));      x = x + N2'(ffn(N2(x)))

  mix(h) = (mixer of h's heads) W_o + b_o; attention mixers project q, k, v first (with biases).
  ``positional``: "none", "rope" (the ``rope`` op on q and k, rotate-half pairs) or "alibi"
  (softmax attention's ALiBi bias). ``feature_map`` (linear attention only): φ applied to q
  and k before the mixer (and before RoPE, so that the rotated φ(q)·φ(k) still depends on
  positions only through their distance): "none" (φ(x) = x), "elu" (φ(x) = elu(x) + 1,
  positive, Katharopoulos et al. 2020; fla's "elu") or "relu".

Each implementation is the same composition over other kernels: a ``components`` mapping
from op name to callable. Here every component is its op's einops reference.
"""

from __future__ import annotations

import torch
from einops import einsum, rearrange

from mixology import registry
from mixology.ops.blocks.checks import check_params
from mixology.ops.checks import check_choice, check_eps, check_flag
from mixology.ops.ffn.checks import check_activation
from mixology.ops.token_mix.checks import check_mix_input

COMPONENT_OPS = ("token_mix", "token_mixer", "per_token_ffn", "layer_norm", "rms_norm",
                 "feed_forward", "swiglu", "bilinear", "softmax_attention",
                 "quadratic_attention", "linear_attention", "rope")
MIXERS = ("softmax_attention", "quadratic_attention", "linear_attention", "token_mix")
CAUSAL_MIXERS = ("quadratic_attention", "linear_attention")
RESIDUALS = ("pre", "post", "sandwich")
NORMS = ("layer", "rms", "none")
BLOCK_ACTIVATIONS = ("relu", "gelu", "swish", "swiglu", "bilinear", "none")
POSITIONALS = ("none", "rope", "alibi")
FEATURE_MAPS = {"none": lambda t: t, "elu": lambda t: torch.nn.functional.elu(t) + 1,
                "relu": torch.relu}


def components(**impl_of_op: str) -> dict:
    """op -> callable: the named registered implementation, ``reference`` for the rest."""
    return {op: registry.get(op, impl_of_op.get(op, "reference")).fn for op in COMPONENT_OPS}


def _linear(x, w, b):
    return einsum(x, w, "b t i, i o -> b t o") + b


# --- RankMixer ---------------------------------------------------------------------------

def rankmixer_shapes(T: int, D: int, F: int) -> dict:
    """name -> (shape, text) of a RankMixer block's parameters."""
    return {"mix_norm_weight": ((D,), "(D,)"), "mix_norm_bias": ((D,), "(D,)"),
            "w1": ((T, D, F), "(T, D, F)"), "b1": ((T, F), "(T, F)"),
            "w2": ((T, F, D), "(T, F, D)"), "b2": ((T, D), "(T, D)"),
            "ffn_norm_weight": ((D,), "(D,)"), "ffn_norm_bias": ((D,), "(D,)")}


def check_rankmixer_input(x, params, num_heads, activation, eps):
    _, T, D, _ = check_mix_input(x, num_heads)
    check_activation(activation)
    check_eps(eps)
    check_params(x, params, rankmixer_shapes(T, D, _ffn_width(params, "w1", 3)))


def rankmixer_block(x, params, num_heads, activation="gelu", eps=1e-5, *, parts=None):
    check_rankmixer_input(x, params, num_heads, activation, eps)
    c, p = parts or REFERENCE.parts, params
    s = c["token_mixer"](x, num_heads, p["mix_norm_weight"], p["mix_norm_bias"], eps)
    f = c["per_token_ffn"](s, p["w1"], p["b1"], p["w2"], p["b2"], activation)
    return c["layer_norm"](s + f, p["ffn_norm_weight"], p["ffn_norm_bias"], eps)


# --- transformer block -------------------------------------------------------------------

def transformer_shapes(D: int, F: int, mixer: str, residual: str, norm: str,
                       activation: str) -> dict:
    """name -> (shape, text) of a transformer block's parameters for this configuration."""
    vec, mat = ((D,), "(D,)"), ((D, D), "(D, D)")
    shapes = {}
    if mixer != "token_mix":
        shapes |= {"wq": mat, "bq": vec, "wk": mat, "bk": vec, "wv": mat, "bv": vec}
    shapes |= {"wo": mat, "bo": vec}
    if activation == "swiglu":
        shapes |= {"w_gate": ((D, F), "(D, F)"), "w_up": ((D, F), "(D, F)"),
                   "w_down": ((F, D), "(F, D)")}
    elif activation == "bilinear":
        shapes |= {"w1": ((D, F), "(D, F)"), "w2": ((D, F), "(D, F)"),
                   "w_out": ((F, D), "(F, D)")}
    elif activation != "none":
        shapes |= {"w1": ((D, F), "(D, F)"), "b1": ((F,), "(F,)"), "w2": ((F, D), "(F, D)"),
                   "b2": vec}
    branches = ("1",) if activation == "none" else ("1", "2")
    names = tuple(f"norm{b}" for b in branches)
    if residual == "sandwich":
        names += tuple(f"norm{b}_post" for b in branches)
    for n in names if norm != "none" else ():
        shapes[f"{n}_weight"] = vec
        if norm == "layer":
            shapes[f"{n}_bias"] = vec
    return shapes


def check_transformer_input(x, params, num_heads, mixer, causal, residual, norm, activation,
                            eps, positional="none", feature_map="none"):
    _, _, D, d = check_mix_input(x, num_heads)
    check_choice(mixer, "mixer", MIXERS)
    check_flag(causal, "causal")
    check_choice(residual, "residual", RESIDUALS)
    check_choice(norm, "norm", NORMS)
    check_choice(activation, "activation", BLOCK_ACTIVATIONS)
    if mixer in CAUSAL_MIXERS and not causal:
        raise ValueError(f"causal must be True with mixer={mixer!r} (it is causal)")
    if mixer == "token_mix" and causal:
        raise ValueError("causal must be False with mixer='token_mix' (it mixes every token)")
    check_choice(positional, "positional", POSITIONALS)
    if positional == "alibi" and mixer != "softmax_attention":
        raise ValueError("positional='alibi' needs mixer='softmax_attention' (a bias on its "
                         "scores)")
    if positional == "rope" and mixer == "token_mix":
        raise ValueError("positional='rope' needs an attention mixer (it rotates q and k)")
    if positional == "rope" and d % 2:
        raise ValueError(f"positional='rope' needs an even head size, got D / num_heads = {d}")
    check_choice(feature_map, "feature_map", tuple(FEATURE_MAPS))
    if feature_map != "none" and mixer != "linear_attention":
        raise ValueError(f"feature_map={feature_map!r} needs mixer='linear_attention' (it maps "
                         "q and k of linear attention)")
    check_eps(eps)
    F = _ffn_width(params, "w_gate" if activation == "swiglu" else "w1", 2)
    check_params(x, params, transformer_shapes(D, F, mixer, residual, norm, activation))


def _ffn_width(params, name, ndim):
    """F, read off the first FFN weight (check_params then checks every shape against it)."""
    w = params.get(name) if isinstance(params, dict) else None
    return w.shape[-1] if isinstance(w, torch.Tensor) and w.ndim == ndim else 0


def norm_fn(c, norm, p, name, eps):
    """The block's norm ``name`` (e.g. "norm1") as a function of h; the identity for "none"."""
    if norm == "layer":
        return lambda h: c["layer_norm"](h, p[f"{name}_weight"], p[f"{name}_bias"], eps)
    if norm == "rms":
        return lambda h: c["rms_norm"](h, p[f"{name}_weight"], eps)
    return lambda h: h


def mix_branch(c, p, h, num_heads, mixer, causal, positional="none", feature_map="none"):
    """(mixer of h) W_o + b_o; attention mixers see h projected to q, k, v in heads (q and k
    mapped by the feature map, then rotated by RoPE, when asked)."""
    if mixer == "token_mix":
        return _linear(c["token_mix"](h, num_heads), p["wo"], p["bo"])
    q, k, v = (rearrange(_linear(h, p[f"w{n}"], p[f"b{n}"]), "b t (h d) -> b h t d",
                         h=num_heads) for n in "qkv")
    phi = FEATURE_MAPS[feature_map]
    q, k = phi(q), phi(k)
    if positional == "rope":
        q, k = c["rope"](q, False), c["rope"](k, False)
    if mixer == "softmax_attention":
        o = c["softmax_attention"](q, k, v, causal, positional == "alibi")
    elif mixer == "linear_attention":
        o, _ = c["linear_attention"](q, k, v, retention_decay(q))
    else:
        o = c["quadratic_attention"](q, k, v)
    return _linear(rearrange(o, "b h t d -> b t (h d)"), p["wo"], p["bo"])


def retention_decay(q: torch.Tensor) -> torch.Tensor:
    """RetNet's fixed multi-scale decays as log-decays g (B, H, T) for q (B, H, T, d): head h
    keeps 1 - 2^(-5-h) of its state a step (a window of 32 tokens for the first head, twice
    that for each next one), with no parameter to learn."""
    B, H, T, _ = q.shape
    h = torch.arange(H, dtype=torch.float64, device=q.device)
    g = torch.log1p(-(2.0 ** (-5.0 - h)))
    return g.to(q.dtype)[None, :, None].expand(B, H, T)


def ffn_branch(c, p, h, activation):
    if activation == "swiglu":
        return c["swiglu"](h, p["w_gate"], p["w_up"], p["w_down"])
    if activation == "bilinear":
        return c["bilinear"](h, p["w1"], p["w2"], p["w_out"])
    act = "silu" if activation == "swish" else activation
    return c["feed_forward"](h, p["w1"], p["b1"], p["w2"], p["b2"], act)


def _pre(x, mix, ffn, n):
    x = x + mix(n["norm1"](x))
    return x if ffn is None else x + ffn(n["norm2"](x))


def _post(x, mix, ffn, n):
    x = n["norm1"](x + mix(x))
    return x if ffn is None else n["norm2"](x + ffn(x))


def _sandwich(x, mix, ffn, n):
    x = x + n["norm1_post"](mix(n["norm1"](x)))
    return x if ffn is None else x + n["norm2_post"](ffn(n["norm2"](x)))


# residual style -> wiring of (x, mix branch, ffn branch, norms by name)
WIRING = {"pre": _pre, "post": _post, "sandwich": _sandwich}
NORM_NAMES = ("norm1", "norm2", "norm1_post", "norm2_post")


def transformer_block(x, params, num_heads, mixer="softmax_attention", causal=False,
                      residual="pre", norm="layer", activation="gelu", eps=1e-5,
                      positional="none", feature_map="none", *, parts=None):
    check_transformer_input(x, params, num_heads, mixer, causal, residual, norm, activation,
                            eps, positional, feature_map)
    c, p = parts or REFERENCE.parts, params
    n = {name: norm_fn(c, norm, p, name, eps) for name in NORM_NAMES}

    def mix(h):
        return mix_branch(c, p, h, num_heads, mixer, causal, positional, feature_map)

    def ffn(h):
        return ffn_branch(c, p, h, activation)

    return WIRING[residual](x, mix, None if activation == "none" else ffn, n)


class Composition:
    """The blocks over the named registered component implementations (``reference`` for the
    rest), resolved on first call: each block implementation is one of these."""

    def __init__(self, **impl_of_op: str):
        self.impl_of_op, self._parts = impl_of_op, None

    @property
    def parts(self) -> dict:
        if self._parts is None:  # the registry must be loaded first
            self._parts = components(**self.impl_of_op)
        return self._parts

    def rankmixer_block(self, x, params, num_heads, activation="gelu", eps=1e-5):
        return rankmixer_block(x, params, num_heads, activation, eps, parts=self.parts)

    def transformer_block(self, x, params, num_heads, mixer="softmax_attention", causal=False,
                          residual="pre", norm="layer", activation="gelu", eps=1e-5,
                          positional="none", feature_map="none"):
        return transformer_block(x, params, num_heads, mixer, causal, residual, norm,
                                 activation, eps, positional, feature_map, parts=self.parts)


REFERENCE = Composition()
