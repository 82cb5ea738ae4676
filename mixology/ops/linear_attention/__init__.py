"""Linear attention: registration of the op and its implementations, in one place."""

from mixology.registry import COMPILE_COST, register, register_op

_P = "mixology.ops.linear_attention"

register_op("linear_attention",
            "(q, k: (B, H, T, d_k), v: (B, H, T, d_v), g: (B, H, T) | None, scale, "
            "initial_state: (B, H, d_k, d_v) | None, output_final_state) "
            "-> (o: (B, H, T, d_v), final_state: (B, H, d_k, d_v) | None)",
            "causal linear attention with a scalar log-decay per head and step (simple GLA; "
            "g=None: plain, constant g: retention)")
register("linear_attention", "reference", f"{_P}.reference:linear_attention",
         doc="einops, the O(T²) masked parallel form")
register("linear_attention", "recurrent", f"{_P}.recurrent:linear_attention",
         doc="token by token, the state in float32")
register("linear_attention", "chunked", f"{_P}.chunked:linear_attention",
         doc="intra-chunk parallel, inter-chunk state, chunks of 64")
register("linear_attention", "chunked_c4", f"{_P}.chunked:linear_attention_chunk4",
         doc="the same, chunks of 4 (every small case crosses chunk boundaries)")
register("linear_attention", "triton", f"{_P}.triton_chunk:linear_attention", needs="triton",
         doc="Triton chunked kernels, forward and backward, exponents relative to each chunk")
register("linear_attention", "compiled", f"{_P}.compiled:linear_attention",
         doc="torch.compile of the reference", cost=COMPILE_COST)


def gpu_check_calls(meta, sizes):
    """The Triton launches ``mixology gpu-check`` compiles: (op, shape, implementation, args),
    with ``meta(shape)`` a meta tensor in the dtype and layout being checked: plain, and with
    a decay, an initial state and the final state (every flag of the kernels set)."""
    for T in sizes.ts:
        for d in sizes.head_dims:
            q = meta((1, 2, T, d))
            yield "linear_attention", f"T={T} d={d}", "triton", [q, q, q]
            g, s0 = meta((1, 2, T), contiguous=True), meta((1, 2, d, d), contiguous=True)
            yield ("linear_attention", f"T={T} d={d} g s0", "triton",
                   [q, q, q, g, None, s0, True])
