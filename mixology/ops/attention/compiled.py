"""``torch.compile`` of the attention references (inputs checked eagerly, outside the graph)."""

from __future__ import annotations

from mixology.ops._kernels.compiling import compile_reference
from mixology.ops.attention import reference
from mixology.ops.attention.checks import check_qkv
from mixology.ops.checks import check_flag


def softmax_attention(q, k, v, causal=False, alibi=False):
    check_qkv(q, k, v)
    check_flag(causal, "causal")
    check_flag(alibi, "alibi")
    return compile_reference(reference.softmax_attention)(q, k, v, causal, alibi)


def quadratic_attention(q, k, v):
    check_qkv(q, k, v)
    return compile_reference(reference.quadratic_attention)(q, k, v)
