"""``torch.compile`` of the norm references (inputs checked eagerly, outside the graph)."""

from __future__ import annotations

from mixology.compiling import compile_reference
from mixology.ops.norms import reference
from mixology.validate import check_norm_input


def layer_norm(x, weight, bias, eps=1e-5):
    check_norm_input(x, weight, bias, eps)
    return compile_reference(reference.layer_norm)(x, weight, bias, eps)


def rms_norm(x, weight, eps=1e-5):
    check_norm_input(x, weight, None, eps, has_bias=False)
    return compile_reference(reference.rms_norm)(x, weight, eps)
