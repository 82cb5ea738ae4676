"""``torch.compile`` of the positional-encoding references."""

from __future__ import annotations

from mixology.compiling import compile_reference
from mixology.ops.positional import reference
from mixology.validate import check_alibi_input, check_rope_input, check_sinusoidal_input


def rope(x, interleaved=False):
    check_rope_input(x, interleaved)
    return compile_reference(reference.rope)(x, interleaved)


def alibi(scores, causal=False):
    check_alibi_input(scores, causal)
    return compile_reference(reference.alibi)(scores, causal)


def sinusoidal(x):
    check_sinusoidal_input(x)
    return compile_reference(reference.sinusoidal)(x)
