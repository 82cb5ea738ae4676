"""The blocks over the Triton kernels: the fused TokenMixer (mix + residual + LayerNorm),
fused LayerNorm/RMSNorm, the fused SwiGLU gate, token mixing and quadratic attention in
Triton; the per-token FFN by baddbmm and softmax attention by SDPA (no Triton kernel of
ours)."""

from __future__ import annotations

from mixology.ops.blocks import reference

PARTS = None  # resolved on first call (the registry must be loaded)


def _parts():
    global PARTS
    if PARTS is None:
        PARTS = reference.components(
            token_mix="triton", token_mixer="triton", per_token_ffn="bmm", layer_norm="triton",
            rms_norm="triton", swiglu="triton", softmax_attention="sdpa",
            quadratic_attention="triton")
    return PARTS


def rankmixer_block(x, params, num_heads, activation="gelu", eps=1e-5):
    return reference.rankmixer_block(x, params, num_heads, activation, eps, parts=_parts())


def transformer_block(x, params, num_heads, mixer="softmax_attention", causal=False,
                      residual="pre", norm="layer", activation="gelu", eps=1e-5):
    return reference.transformer_block(x, params, num_heads, mixer, causal, residual, norm,
                                       activation, eps, parts=_parts())
