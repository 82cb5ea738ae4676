"""The blocks over the Triton kernels: the fused TokenMixer (mix + residual + LayerNorm),
fused LayerNorm/RMSNorm, the FFN's fused bias + activation stage, the fused SwiGLU gate, token
mixing, quadratic and linear attention in Triton; the per-token FFN by baddbmm and softmax
attention by SDPA (no Triton kernel of ours)."""

from mixology.ops.blocks.reference import Composition

_BLOCKS = Composition(token_mix="triton", token_mixer="triton", per_token_ffn="bmm",
                      layer_norm="triton", rms_norm="triton", feed_forward="triton", swiglu="triton",
                      bilinear="triton", rope="triton", softmax_attention="sdpa",
                      quadratic_attention="triton", linear_attention="triton")
rankmixer_block, transformer_block = _BLOCKS.rankmixer_block, _BLOCKS.transformer_block
