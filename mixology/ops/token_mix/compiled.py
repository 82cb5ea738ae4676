"""``torch.compile`` of the token-mixing references (see mixology.ops._kernels.compiling)."""

from __future__ import annotations

from mixology.ops._kernels.compiling import compile_reference
from mixology.ops.token_mix import reference
from mixology.ops.token_mix.checks import check_mix_input, check_mixer_input


def _compiled(name: str):
    return compile_reference(getattr(reference, name))


def token_mix(x, num_heads):
    check_mix_input(x, num_heads)
    return _compiled("token_mix")(x, num_heads)


def token_unmix(y, num_heads):
    check_mix_input(y, num_heads, name="y")
    return _compiled("token_unmix")(y, num_heads)


def token_mixer(x, num_heads, weight, bias, eps=1e-5):
    check_mixer_input(x, num_heads, weight, bias, eps)
    return _compiled("token_mixer")(x, num_heads, weight, bias, eps)
