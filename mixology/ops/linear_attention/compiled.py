"""``torch.compile`` of the linear-attention reference's parallel form (inputs checked
eagerly, outside the graph). A missing g or initial state enters as zeros and the final state
is always computed, and inputs enter in the accumulation dtype, so that one graph serves
every call in float32, float16 and bfloat16 (and one float64's): exp(0) = 1 and a zero state
add nothing, exactly, and the reference casts to that dtype first."""

from __future__ import annotations

from mixology.numerics.dtypes import accumulation_dtype
from mixology.ops._kernels.compiling import compile_reference
from mixology.ops.linear_attention import reference
from mixology.ops.linear_attention.checks import check_linear_attention


def linear_attention(q, k, v, g=None, scale=None, initial_state=None,
                     output_final_state=False):
    """The reference, compiled; arguments and results as the reference's."""
    B, H, T, dk, dv, scale = check_linear_attention(q, k, v, g, scale, initial_state,
                                                    output_final_state)
    dtype, acc = q.dtype, accumulation_dtype(q.dtype)
    # the reference's first step, eagerly: float16/bfloat16 inputs share float32's graph
    q, k, v = q.to(acc), k.to(acc), v.to(acc)
    g = g.to(acc) if g is not None else q.new_zeros(B, H, T)
    s = initial_state.to(acc) if initial_state is not None else q.new_zeros(B, H, dk, dv)
    o, final = compile_reference(reference.parallel_form)(q, k, v, g, scale, s, True)
    return o.to(dtype), (final if output_final_state else None)
