"""The blocks over torch's own fast paths: the per-token FFN by baddbmm, RMSNorm by
``F.rms_norm``, softmax attention by SDPA, quadratic and linear attention in their chunked
forms."""

from mixology.ops.blocks.reference import Composition

_BLOCKS = Composition(per_token_ffn="bmm", rms_norm="native", softmax_attention="sdpa",
                      quadratic_attention="chunked", linear_attention="chunked")
rankmixer_block, transformer_block = _BLOCKS.rankmixer_block, _BLOCKS.transformer_block
