"""Attention: registration of softmax attention and quadratic attention, in one place."""

from mixology.registry import COMPILE_COST, register, register_op

_P = "mixology.ops.attention"

register_op("softmax_attention",
            "(q, k: (B, H, T, d), v: (B, H, T, d_v), causal: bool, alibi: bool) -> (B, H, T, d_v)",
            "multi-head softmax attention, optional causal mask and ALiBi bias")
register("softmax_attention", "reference", f"{_P}.reference:softmax_attention", doc="einops")
register("softmax_attention", "sdpa", f"{_P}.sdpa:softmax_attention",
         doc="torch scaled_dot_product_attention")
register("softmax_attention", "compiled", f"{_P}.compiled:softmax_attention",
         doc="torch.compile of the reference", cost=COMPILE_COST)

register_op("quadratic_attention", "(q, k: (B, H, T, d), v: (B, H, T, d_v)) -> (B, H, T, d_v)",
            "causal attention with scores (q·k)²/d and no softmax")
register("quadratic_attention", "reference", f"{_P}.reference:quadratic_attention",
         doc="einops, O(T²)")
register("quadratic_attention", "chunked", f"{_P}.chunked:quadratic_attention",
         doc="linear time: φ(x)=x⊗x prefix state, chunks of 64")
register("quadratic_attention", "chunked_c4", f"{_P}.chunked:quadratic_attention_chunk4",
         doc="the same, chunks of 4 (every small case crosses chunk boundaries)")
register("quadratic_attention", "triton", f"{_P}.triton_quadratic:quadratic_attention",
         needs="triton", doc="Triton kernels of the linear form, forward and backward")
register("quadratic_attention", "triton_split",
         f"{_P}.triton_quadratic:quadratic_attention_split", needs="triton",
         doc="the same kernels, the state split one i-row per program")
register("quadratic_attention", "compiled", f"{_P}.compiled:quadratic_attention",
         doc="torch.compile of the reference", cost=COMPILE_COST)


def gpu_check_calls(meta, sizes):
    """The Triton launches ``mixology gpu-check`` compiles: (op, shape, implementation, args),
    with ``meta(shape)`` a meta tensor in the dtype and layout being checked."""
    for T in sizes.ts:
        for d in sizes.head_dims:
            q = meta((1, 2, T, d))
            for name in ("triton", "triton_split"):
                yield "quadratic_attention", f"T={T} d={d}", name, [q, q, q]
