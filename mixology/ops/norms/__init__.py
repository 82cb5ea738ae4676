"""Norms: registration of LayerNorm and RMSNorm, in one place."""

from mixology.registry import register, register_op

_P = "mixology.ops.norms"

register_op("layer_norm", "(x: (B, T, D), weight: (D,), bias: (D,), eps) -> (B, T, D)",
            "LayerNorm over the last dim (biased variance), affine")
register_op("rms_norm", "(x: (B, T, D), weight: (D,), eps) -> (B, T, D)",
            "RMSNorm over the last dim: x / sqrt(mean(x²) + eps) · weight")
for _op in ("layer_norm", "rms_norm"):
    register(_op, "reference", f"{_P}.reference:{_op}", doc="einops, fp32 accumulation")
    register(_op, "triton", f"{_P}.triton_norm:{_op}", needs="triton",
             doc="fused Triton forward and backward (partial dweight/dbias per program)")
register("rms_norm", "native", f"{_P}.native:rms_norm", doc="torch.nn.functional.rms_norm")
# Not registered: torch's F.layer_norm (native.py) fails ln_low_precision_accumulates_in_fp32
# on CPU (float16, D = 1, x ~ 300: ~7 ulps from the exact output, the bias). Check it with
# `python -m mixology verify --candidate layer_norm=mixology.ops.norms.native:layer_norm`.


def gpu_check_calls(meta, sizes):
    """The Triton launches ``mixology gpu-check`` compiles: (op, shape, implementation, args),
    with ``meta(shape)`` a meta tensor in the dtype and layout being checked."""
    for D in sizes.dims:
        x = meta((2, 3, D))
        w = meta((D,), contiguous=True)
        yield "layer_norm", f"D={D}", "triton", [x, w, w, 1e-5]
        yield "rms_norm", f"D={D}", "triton", [x, w, 1e-5]
