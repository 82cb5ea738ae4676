"""The blocks over torch's own fast paths: the per-token FFN by baddbmm, RMSNorm by
``F.rms_norm``, softmax attention by SDPA, quadratic attention in its chunked linear form."""

from __future__ import annotations

from mixology.ops.blocks import reference

PARTS = None  # resolved on first call (the registry must be loaded)


def _parts():
    global PARTS
    if PARTS is None:
        PARTS = reference.components(per_token_ffn="bmm", rms_norm="native",
                                     softmax_attention="sdpa", quadratic_attention="chunked")
    return PARTS


def rankmixer_block(x, params, num_heads, activation="gelu", eps=1e-5):
    return reference.rankmixer_block(x, params, num_heads, activation, eps, parts=_parts())


def transformer_block(x, params, num_heads, mixer="softmax_attention", causal=False,
                      residual="pre", norm="layer", activation="gelu", eps=1e-5):
    return reference.transformer_block(x, params, num_heads, mixer, causal, residual, norm,
                                       activation, eps, parts=_parts())
