"""Plausible buggy blocks. The spec must reject every one of them.

Each is the reference composition (reference.py's branches and checks) rewired or with one
component swapped for a buggy one."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mixology.ops.blocks import reference as ref
from mixology.ops.ffn.mutants import pffn_weights_shared_across_tokens
from mixology.ops.token_mix.mutants import permute_back
from mixology.registry import mutant

TB, RM = "transformer_block", "rankmixer_block"


# --- transformer block ---------------------------------------------------------------------

def _block(x, params, num_heads, mixer, causal, residual, norm, activation, eps,
           positional="none", feature_map="none", *, wiring=None, parts=None, check=True):
    """The reference block; ``wiring`` replaces the residual style's wiring (reference.WIRING),
    ``parts`` overrides components; unchecked, an unknown residual style runs Sandwich."""
    if check:
        ref.check_transformer_input(x, params, num_heads, mixer, causal, residual, norm,
                                    activation, eps, positional, feature_map)
    c = ref.components() | (parts or {})
    p = params
    n = {k: ref.norm_fn(c, norm, p, k, eps) for k in ref.NORM_NAMES}

    def mix(h):
        return ref.mix_branch(c, p, h, num_heads, mixer, causal, positional, feature_map)

    def ffn(h):
        return ref.ffn_branch(c, p, h, activation)

    return (wiring or ref.WIRING.get(residual, ref.WIRING["sandwich"]))(
        x, mix, None if activation == "none" else ffn, n)


_pre = ref.WIRING["pre"]


@mutant(TB)
def block_post_ln_wired_as_pre_ln(
        x, params, num_heads, mixer="softmax_attention", causal=False, residual="pre",
        norm="layer", activation="gelu", eps=1e-5, positional="none", feature_map="none"):
    """residual='post' runs the Pre-LN wiring (norms inside the branches)."""
    return _block(x, params, num_heads, mixer, causal, residual, norm, activation, eps,
                  positional, feature_map, wiring=_pre if residual == "post" else None)


@mutant(TB)
def block_sandwich_without_output_norms(
        x, params, num_heads, mixer="softmax_attention", causal=False, residual="pre",
        norm="layer", activation="gelu", eps=1e-5, positional="none", feature_map="none"):
    """residual='sandwich' forgets the norms on the branch outputs (it runs Pre-LN)."""
    return _block(x, params, num_heads, mixer, causal, residual, norm, activation, eps,
                  positional, feature_map, wiring=_pre if residual == "sandwich" else None)


@mutant(TB)
def block_ffn_residual_missing(
        x, params, num_heads, mixer="softmax_attention", causal=False, residual="pre",
        norm="layer", activation="gelu", eps=1e-5, positional="none", feature_map="none"):
    """The FFN branch replaces the stream instead of adding to it (Pre-LN)."""
    def wiring(x, mix, ffn, n):
        x = x + mix(n["norm1"](x))
        return ffn(n["norm2"](x))

    return _block(x, params, num_heads, mixer, causal, residual, norm, activation, eps,
                  positional, feature_map,
                  wiring=wiring if residual == "pre" and activation != "none" else None)


def _non_causal_softmax(q, k, v, causal, alibi):
    return ref.components()["softmax_attention"](q, k, v, False, alibi)


@mutant(TB)
def block_causal_flag_dropped(
        x, params, num_heads, mixer="softmax_attention", causal=False, residual="pre",
        norm="layer", activation="gelu", eps=1e-5, positional="none", feature_map="none"):
    """The block forgets to pass causal=True to softmax attention."""
    return _block(x, params, num_heads, mixer, causal, residual, norm, activation, eps,
                  positional, feature_map, parts={"softmax_attention": _non_causal_softmax})


def _rms_over_tokens(h, weight, eps):
    """RMSNorm reduced over dim 1 (tokens) instead of the last dim."""
    return h * torch.rsqrt((h * h).mean(dim=1, keepdim=True) + eps) * weight


@mutant(TB)
def block_norm_over_tokens(
        x, params, num_heads, mixer="softmax_attention", causal=False, residual="pre",
        norm="layer", activation="gelu", eps=1e-5, positional="none", feature_map="none"):
    """RMSNorm reduces over the token axis (dim=1 for dim=-1): leaks the future into the past."""
    return _block(x, params, num_heads, mixer, causal, residual, norm, activation, eps,
                  positional, feature_map, parts={"rms_norm": _rms_over_tokens})


@mutant(TB)
def block_heads_split_by_view(
        x, params, num_heads, mixer="softmax_attention", causal=False, residual="pre",
        norm="layer", activation="gelu", eps=1e-5, positional="none", feature_map="none"):
    """Splits q, k, v into heads with .view(B, H, T, d) on (B, T, D) memory (no transpose)."""
    def attention(q, k, v, *flags):
        B, H, T, d = q.shape
        q, k, v = (t.transpose(1, 2).reshape(B, T, H * d).view(B, H, T, d) for t in (q, k, v))
        real = ref.components()["softmax_attention" if flags else "quadratic_attention"]
        o = real(q, k, v, *flags)
        return o.reshape(B, T, H, d).transpose(1, 2)  # undone the same wrong way

    return _block(x, params, num_heads, mixer, causal, residual, norm, activation, eps,
                  positional, feature_map,
                  parts={"softmax_attention": attention, "quadratic_attention": attention})


@mutant(TB)
def block_linear_attention_without_decay(
        x, params, num_heads, mixer="softmax_attention", causal=False, residual="pre",
        norm="layer", activation="gelu", eps=1e-5, positional="none", feature_map="none"):
    """Linear attention's decays dropped (g = None): every head keeps every past token."""
    def linear_attention(q, k, v, g=None, *rest):
        return ref.components()["linear_attention"](q, k, v, None, *rest)

    return _block(x, params, num_heads, mixer, causal, residual, norm, activation, eps,
                  positional, feature_map, parts={"linear_attention": linear_attention})


@mutant(TB)
def block_output_bias_ignored(
        x, params, num_heads, mixer="softmax_attention", causal=False, residual="pre",
        norm="layer", activation="gelu", eps=1e-5, positional="none", feature_map="none"):
    """The mixing branch's output projection drops b_o."""
    p = dict(params)
    if isinstance(p.get("bo"), torch.Tensor):
        p["bo"] = torch.zeros_like(p["bo"]).detach()
    ref.check_transformer_input(x, params, num_heads, mixer, causal, residual, norm,
                                activation, eps, positional, feature_map)
    return _block(x, p, num_heads, mixer, causal, residual, norm, activation, eps,
                  positional, feature_map)


@mutant(TB)
def block_detached_norm_weight(
        x, params, num_heads, mixer="softmax_attention", causal=False, residual="pre",
        norm="layer", activation="gelu", eps=1e-5, positional="none", feature_map="none"):
    """norm1's weight enters detached: it is used but never trained."""
    p = dict(params)
    if isinstance(p.get("norm1_weight"), torch.Tensor):
        p["norm1_weight"] = p["norm1_weight"].detach()
    return _block(x, p, num_heads, mixer, causal, residual, norm, activation, eps,
                  positional, feature_map)


@mutant(TB)
def block_squeezes_singletons(
        x, params, num_heads, mixer="softmax_attention", causal=False, residual="pre",
        norm="layer", activation="gelu", eps=1e-5, positional="none", feature_map="none"):
    """Calls .squeeze() on the output: the wrong shape when B or T is 1."""
    return _block(x, params, num_heads, mixer, causal, residual, norm, activation, eps,
                  positional, feature_map).squeeze()


@mutant(TB)
def block_unchecked(
        x, params, num_heads, mixer="softmax_attention", causal=False, residual="pre",
        norm="layer", activation="gelu", eps=1e-5, positional="none", feature_map="none"):
    """No checks of the configuration: an unknown residual style runs Sandwich, bad params
    fail inside a component."""
    return _block(x, params, num_heads, mixer, causal, residual, norm, activation, eps,
                  positional, feature_map, check=False)


def _real(op):
    return ref.components()[op]


@mutant(TB)
def block_rope_pairs_interleaved(
        x, params, num_heads, mixer="softmax_attention", causal=False, residual="pre",
        norm="layer", activation="gelu", eps=1e-5, positional="none", feature_map="none"):
    """positional='rope' rotates interleaved pairs (2i, 2i+1) where the block's convention is
    rotate-half (i, i + d/2): a checkpoint-convention mix-up."""
    return _block(x, params, num_heads, mixer, causal, residual, norm, activation, eps,
                  positional, feature_map, parts={"rope": lambda h, inter: _real("rope")(h, True)})


@mutant(TB)
def block_feature_map_after_rope(
        x, params, num_heads, mixer="softmax_attention", causal=False, residual="pre",
        norm="layer", activation="gelu", eps=1e-5, positional="none", feature_map="none"):
    """Linear attention's feature map is applied after RoPE rotates q and k: φ(R_t q)·φ(R_s k)
    then depends on the positions t and s themselves, not only on their distance."""
    if positional != "rope" or feature_map == "none":
        return _block(x, params, num_heads, mixer, causal, residual, norm, activation, eps,
                      positional, feature_map)
    ref.check_transformer_input(x, params, num_heads, mixer, causal, residual, norm,
                                activation, eps, positional, feature_map)
    phi = ref.FEATURE_MAPS[feature_map]
    return _block(x, params, num_heads, mixer, causal, residual, norm, activation, eps,
                  positional, "none", parts={"rope": lambda h, inter: phi(_real("rope")(h, inter))})


@mutant(TB)
def block_alibi_dropped(
        x, params, num_heads, mixer="softmax_attention", causal=False, residual="pre",
        norm="layer", activation="gelu", eps=1e-5, positional="none", feature_map="none"):
    """positional='alibi' is accepted but never reaches softmax attention."""
    def attention(q, k, v, causal, alibi):
        return _real("softmax_attention")(q, k, v, causal, False)

    return _block(x, params, num_heads, mixer, causal, residual, norm, activation, eps,
                  positional, feature_map, parts={"softmax_attention": attention})


@mutant(TB)
def block_bilinear_squares_one_projection(
        x, params, num_heads, mixer="softmax_attention", causal=False, residual="pre",
        norm="layer", activation="gelu", eps=1e-5, positional="none", feature_map="none"):
    """The bilinear FFN uses W1 for both factors, (x W1)² W_out: W2 is never read."""
    def bilinear(h, w1, w2, w_out):
        return _real("bilinear")(h, w1, w1, w_out)

    return _block(x, params, num_heads, mixer, causal, residual, norm, activation, eps,
                  positional, feature_map, parts={"bilinear": bilinear})


# --- RankMixer block -----------------------------------------------------------------------

def _rankmixer(x, params, num_heads, activation, eps, *, token_mixer=None, pffn=None,
               order="mix_first", pffn_residual=True, second_norm=True, roll=False):
    ref.check_rankmixer_input(x, params, num_heads, activation, eps)
    c, p = ref.components(), params
    tm = token_mixer or c["token_mixer"]
    ffn = pffn or c["per_token_ffn"]

    def mixing(h):
        return tm(h, num_heads, p["mix_norm_weight"], p["mix_norm_bias"], eps)

    def channel(h):
        f = ffn(h, p["w1"], p["b1"], p["w2"], p["b2"], activation)
        if roll:
            f = f.roll(1, dims=1)
        s = h + f if pffn_residual else f
        return c["layer_norm"](s, p["ffn_norm_weight"], p["ffn_norm_bias"], eps) \
            if second_norm else s

    return channel(mixing(x)) if order == "mix_first" else mixing(channel(x))


def _identity_token_mixer(x, num_heads, weight, bias, eps):
    return F.layer_norm(x + permute_back(x, num_heads), (x.shape[-1],), weight, bias, eps)


@mutant(RM)
def rankmixer_permutes_back(x, params, num_heads, activation="gelu", eps=1e-5):
    """Its token mixing permutes back (the seed design's identity): nothing is mixed."""
    return _rankmixer(x, params, num_heads, activation, eps, token_mixer=_identity_token_mixer)


@mutant(RM)
def rankmixer_pffn_residual_missing(x, params, num_heads, activation="gelu", eps=1e-5):
    """LayerNorm(PFFN(S)) without the residual S."""
    return _rankmixer(x, params, num_heads, activation, eps, pffn_residual=False)


@mutant(RM)
def rankmixer_pffn_before_token_mixer(x, params, num_heads, activation="gelu", eps=1e-5):
    """The per-token FFN sublayer runs before the token mixer."""
    return _rankmixer(x, params, num_heads, activation, eps, order="ffn_first")


@mutant(RM)
def rankmixer_second_norm_skipped(x, params, num_heads, activation="gelu", eps=1e-5):
    """S + PFFN(S), the final LayerNorm forgotten."""
    return _rankmixer(x, params, num_heads, activation, eps, second_norm=False)


@mutant(RM)
def rankmixer_pffn_weights_shared(x, params, num_heads, activation="gelu", eps=1e-5):
    """Its PFFN gives every token token 0's weights."""
    return _rankmixer(x, params, num_heads, activation, eps,
                      pffn=pffn_weights_shared_across_tokens)


@mutant(RM)
def rankmixer_pffn_output_rolled(x, params, num_heads, activation="gelu", eps=1e-5):
    """The PFFN's outputs are added one token off (an off-by-one in the token index)."""
    return _rankmixer(x, params, num_heads, activation, eps, roll=True)


@mutant(RM)
def rankmixer_fp32_output(x, params, num_heads, activation="gelu", eps=1e-5):
    """Computes in float32 and returns float32 for low-precision inputs."""
    if x.dtype in (torch.float16, torch.bfloat16) and isinstance(params, dict):
        x, params = x.float(), {k: v.float() for k, v in params.items()}
    return _rankmixer(x, params, num_heads, activation, eps)


@mutant(RM)
def rankmixer_detached_ffn_norm(x, params, num_heads, activation="gelu", eps=1e-5):
    """The final LayerNorm's weight enters detached: used but never trained."""
    p = dict(params) if isinstance(params, dict) else params
    if isinstance(p, dict) and isinstance(p.get("ffn_norm_weight"), torch.Tensor):
        p["ffn_norm_weight"] = p["ffn_norm_weight"].detach()
    return _rankmixer(x, p, num_heads, activation, eps)


@mutant(RM)
def rankmixer_unchecked(x, params, num_heads, activation="gelu", eps=1e-5):
    """No checks of params: a missing entry raises KeyError, bad shapes fail in a component."""
    c, p = ref.components(), params
    s = c["token_mixer"](x, num_heads, p["mix_norm_weight"], p["mix_norm_bias"], eps)
    f = torch.einsum("btd,tdf->btf", s, p["w1"]) + p["b1"]
    f = torch.einsum("btf,tfd->btd", F.gelu(f), p["w2"]) + p["b2"]
    return F.layer_norm(s + f, (x.shape[-1],), p["ffn_norm_weight"], p["ffn_norm_bias"], eps)
