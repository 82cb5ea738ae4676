"""Channel mixers (per-token FFNs): registration in one place."""

from mixology.registry import COMPILE_COST, register, register_op

_P = "mixology.ops.ffn"

register_op("feed_forward", "(x: (B, T, D), w1: (D, F), b1: (F,), w2: (F, D), b2: (D,), "
            "activation: relu|gelu|silu) -> (B, T, D)", "act(x W1 + b1) W2 + b2")
register_op("swiglu", "(x: (B, T, D), w_gate, w_up: (D, F), w_down: (F, D)) -> (B, T, D)",
            "(silu(x W_gate) ⊙ x W_up) W_down")
register_op("bilinear", "(x: (B, T, D), w1, w2: (D, F), w_out: (F, D)) -> (B, T, D)",
            "(x W1 ⊙ x W2) W_out, no activation")
for _op in ("feed_forward", "swiglu", "bilinear"):
    register(_op, "reference", f"{_P}.reference:{_op}", doc="einops")
    register(_op, "compiled", f"{_P}.compiled:{_op}", doc="torch.compile of the reference",
             cost=COMPILE_COST)
for _op in ("swiglu", "bilinear"):
    register(_op, "triton", f"{_P}.triton_gated:{_op}", needs="triton",
             doc="torch matmuls + one fused Triton kernel for the gate (fwd and bwd)")
