"""Positional encodings: registration in one place."""

from mixology.registry import register, register_op

_P = "mixology.ops.positional"

register_op("rope", "(x: (B, H, T, d even), interleaved: bool) -> (B, H, T, d)",
            "rotary position embedding, rotate-half or interleaved pairs")
register("rope", "reference", f"{_P}.reference:rope", doc="einops")
register("rope", "compiled", f"{_P}.compiled:rope", doc="torch.compile of the reference")
