"""Positional encodings: registration in one place."""

from mixology.registry import COMPILE_COST, register, register_op

_P = "mixology.ops.positional"

register_op("rope", "(x: (B, H, T, d even), interleaved: bool) -> (B, H, T, d)",
            "rotary position embedding, rotate-half or interleaved pairs")
register("rope", "reference", f"{_P}.reference:rope", doc="einops")
register("rope", "compiled", f"{_P}.compiled:rope", doc="torch.compile of the reference",
         cost=COMPILE_COST)
register("rope", "triton", f"{_P}.triton_rope:rope", needs="triton",
         doc="one fused Triton kernel (tables in, rotation in fp32); backward = inverse rotation")

# ALiBi and sinusoidal: the reference and one fused Triton kernel each (a compiled version of
# an elementwise add would only re-check inductor).
register_op("alibi", "(scores: (B, H, T, T), causal: bool) -> (B, H, T, T)",
            "ALiBi: scores plus the per-head bias -m_h·(t - s), |t - s| when not causal")
register("alibi", "reference", f"{_P}.reference:alibi", doc="torch")
register("alibi", "triton", f"{_P}.triton_additive:alibi", needs="triton",
         doc="fused: the bias made in the kernel, one pass over the scores")

register_op("sinusoidal", "(x: (B, T, D even)) -> (B, T, D)",
            "x plus the sinusoidal position encoding, sin/cos interleaved")
register("sinusoidal", "reference", f"{_P}.reference:sinusoidal", doc="einops")
register("sinusoidal", "triton", f"{_P}.triton_additive:sinusoidal", needs="triton",
         doc="fused: tables interleaved and added in one pass")


def gpu_check_calls(meta, sizes):
    """The Triton launches ``mixology gpu-check`` compiles: (op, shape, implementation, args),
    with ``meta(shape)`` a meta tensor in the dtype and layout being checked."""
    for D in sizes.dims:
        if D % 2 == 0:
            yield "sinusoidal", f"D={D}", "triton", [meta((2, 3, D))]
    for T in sizes.ts:
        for d in sizes.head_dims:
            if d % 2 == 0:
                for inter in (False, True):
                    yield "rope", f"T={T} d={d}", "triton", [meta((1, 2, T, d)), inter]
        for causal in (False, True):
            yield "alibi", f"T={T}", "triton", [meta((1, 2, T, T)), causal]
