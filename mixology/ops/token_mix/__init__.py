"""RankMixer token mixing: the registration of its three ops, in one place.

- ``token_mix(x, num_heads)`` / ``token_unmix(y, num_heads)``: the permutation and its inverse;
- ``token_mixer(x, num_heads, weight, bias, eps)``: the block ``LayerNorm(x + token_mix(x))``.
"""

from mixology.registry import COMPILE_COST, register, register_op

_P = "mixology.ops.token_mix"

register_op("token_mix", "(x: (B, T, D), num_heads) -> (B, T, D)",
            "RankMixer token mixing: heads laid out head-major, cut back into T tokens")
register_op("token_unmix", "(y: (B, T, D), num_heads) -> (B, T, D)",
            "inverse of token_mix (and its gradient)")
register_op("token_mixer", "(x: (B, T, D), num_heads, weight: (D,), bias: (D,), eps) -> (B, T, D)",
            "TokenMixer block: LayerNorm(x + token_mix(x))")

for _op in ("token_mix", "token_unmix", "token_mixer"):
    register(_op, "reference", f"{_P}.reference:{_op}", doc="einops")
    register(_op, "compiled", f"{_P}.compiled:{_op}", doc="torch.compile of the reference",
             cost=COMPILE_COST)

register("token_mix", "triton", f"{_P}.triton_permute:token_mix", needs="triton",
         doc="Triton gather kernel; backward = unmix kernel")
register("token_unmix", "triton", f"{_P}.triton_permute:token_unmix", needs="triton",
         doc="Triton gather kernel; backward = mix kernel")
register("token_mixer", "triton", f"{_P}.triton_fused:token_mixer", needs="triton",
         doc="one fused kernel: mix + residual + LayerNorm, fused backward")


def gpu_check_calls(meta, sizes):
    """The Triton launches ``mixology gpu-check`` compiles: (op, shape, implementation, args),
    with ``meta(shape)`` a meta tensor in the dtype and layout being checked."""
    for T in (1, 2, 4, 16, 17, 64, 127):
        for H in sorted({1, 2, T}):
            for head in (1, 3, 16, 64):
                D = H * head
                x = meta((2, T, D))
                w = meta((D,), contiguous=True)
                yield "token_mix", f"T={T} D={D} H={H}", "triton", [x, H]
                yield "token_unmix", f"T={T} D={D} H={H}", "triton", [x, H]
                yield "token_mixer", f"T={T} D={D} H={H}", "triton", [x, H, w, w, 1e-5]
