"""``torch.compile`` of the positional-encoding references."""

from __future__ import annotations

from mixology.ops._kernels.compiling import compile_reference
from mixology.ops.positional import reference
from mixology.ops.positional.checks import check_rope_input


def rope(x, interleaved=False):
    check_rope_input(x, interleaved)
    return compile_reference(reference.rope)(x, interleaved)

