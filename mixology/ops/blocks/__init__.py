"""Whole blocks (RankMixer, transformer): registration in one place.

A block's implementations are one composition (reference.py) over different component
kernels: ``reference`` (every component's einops reference), ``native`` (torch's fast paths)
and ``triton`` (our Triton kernels where they exist).
"""

from mixology.registry import register, register_op

_P = "mixology.ops.blocks"

register_op("rankmixer_block",
            "(x: (B, T, D), params: {mix_norm_weight/bias: (D,), w1: (T, D, F), b1: (T, F), "
            "w2: (T, F, D), b2: (T, D), ffn_norm_weight/bias: (D,)}, num_heads, activation, "
            "eps) -> (B, T, D)",
            "RankMixer block: S = LN(x + token_mix(x)); LN(S + PFFN(S))")
register_op("transformer_block",
            "(x: (B, T, D), params: dict, num_heads, mixer: softmax_attention|"
            "quadratic_attention|linear_attention|token_mix, causal, residual: pre|post|sandwich, "
            "norm: layer|rms|none, activation: relu|gelu|swish|swiglu|bilinear|none, eps, "
            "positional: none|rope|alibi, feature_map: none|elu|relu (linear_attention)) -> "
            "(B, T, D)",
            "MetaFormer block: token-mixing and channel-mixing branches with residuals "
            "(activation none: attention-only)")
for _op in ("rankmixer_block", "transformer_block"):
    register(_op, "reference", f"{_P}.reference:{_op}", doc="einops components")
    register(_op, "native", f"{_P}.native:{_op}",
             doc="torch fast paths: baddbmm PFFN, F.rms_norm, SDPA, chunked quadratic and "
             "linear attention")
    register(_op, "triton", f"{_P}.triton_kernels:{_op}", needs="triton", cost=2,
             doc="fused Triton TokenMixer, norms, SwiGLU gate, quadratic and linear attention")
