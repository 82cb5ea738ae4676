"""Channel mixers (FFNs applied to every token, and the per-token FFN): registration in one place."""

from mixology.registry import COMPILE_COST, register, register_op

_P = "mixology.ops.ffn"

register_op("feed_forward", "(x: (B, T, D), w1: (D, F), b1: (F,), w2: (F, D), b2: (D,), "
            "activation: relu|gelu|silu, dropout: float in [0, 1), seed: int|None) -> (B, T, D)",
            "(act(x W1 + b1) ⊙ dropout mask) W2 + b2")
register_op("swiglu", "(x: (B, T, D), w_gate, w_up: (D, F), w_down: (F, D)) -> (B, T, D)",
            "(silu(x W_gate) ⊙ x W_up) W_down")
register_op("bilinear", "(x: (B, T, D), w1, w2: (D, F), w_out: (F, D)) -> (B, T, D)",
            "(x W1 ⊙ x W2) W_out, no activation")
for _op in ("feed_forward", "swiglu", "bilinear"):
    register(_op, "reference", f"{_P}.reference:{_op}", doc="einops")
    register(_op, "compiled", f"{_P}.compiled:{_op}", doc="torch.compile of the reference",
             cost=COMPILE_COST)
register("feed_forward", "triton", f"{_P}.triton_ffn:feed_forward", needs="triton",
         doc="torch matmuls + one fused Triton kernel for bias, activation and dropout mask")
for _op in ("swiglu", "bilinear"):
    register(_op, "triton", f"{_P}.triton_gated:{_op}", needs="triton",
             doc="torch matmuls + one fused Triton kernel for the gate (fwd and bwd)")

register_op("per_token_ffn",
            "(x: (B, T, D), w1: (T, D, F), b1: (T, F), w2: (T, F, D), b2: (T, D), "
            "activation: relu|gelu|silu) -> (B, T, D)",
            "RankMixer's PFFN: token t has its own FFN, act(x_t W1[t] + b1[t]) W2[t] + b2[t]")
register("per_token_ffn", "reference", f"{_P}.reference:per_token_ffn", doc="einsum over (T, D, F)")
register("per_token_ffn", "bmm", f"{_P}.bmm:per_token_ffn",
         doc="two torch.baddbmm, tokens as the batch")
register("per_token_ffn", "compiled", f"{_P}.compiled:per_token_ffn",
         doc="torch.compile of the reference", cost=COMPILE_COST)


def gpu_check_calls(meta, sizes):
    """The Triton launches ``mixology gpu-check`` compiles: (op, shape, implementation, args),
    with ``meta(shape)`` a meta tensor in the dtype and layout being checked."""
    for D in sizes.dims:
        x = meta((2, 3, D))
        for F in {max(1, D // 2), 4 * D} if D <= 1025 else {D}:
            w1, w2 = meta((D, F), contiguous=True), meta((F, D), contiguous=True)
            b1, b2 = meta((F,), contiguous=True), meta((D,), contiguous=True)
            yield "feed_forward", f"D={D} F={F}", "triton", [x, w1, b1, w2, b2, "gelu"]
            yield "swiglu", f"D={D} F={F}", "triton", [x, w1, w1, w2]
            yield "bilinear", f"D={D} F={F}", "triton", [x, w1, w1, w2]
