"""Linear attention as its recurrence, one token at a time, the state in the accumulation
dtype (float32 for float16/bfloat16 inputs): the same function as the parallel reference.

    S_t = exp(g_t) S_{t-1} + k_t v_tᵀ,   o_t = scale · q_t S_t,   S_0 = initial_state
"""

from __future__ import annotations

import torch
from einops import einsum

from mixology.numerics.dtypes import accumulation_dtype
from mixology.ops.linear_attention.checks import check_linear_attention, zeros_state


def linear_attention(q, k, v, g=None, scale=None, initial_state=None,
                     output_final_state=False):
    """The recurrent form; arguments and results as the reference's."""
    B, H, T, dk, dv, scale = check_linear_attention(q, k, v, g, scale, initial_state,
                                                    output_final_state)
    dtype, acc = q.dtype, accumulation_dtype(q.dtype)
    q, k, v = q.to(acc), k.to(acc), v.to(acc)
    S = zeros_state(q, dv) if initial_state is None else initial_state.to(acc)
    outs = []
    for t in range(T):
        if g is not None:
            S = g[:, :, t].to(acc).exp()[..., None, None] * S
        S = S + einsum(k[:, :, t], v[:, :, t], "b h d, b h e -> b h d e")
        outs.append(scale * einsum(q[:, :, t], S, "b h d, b h d e -> b h e"))
    o = torch.stack(outs, dim=2) if outs else v.new_zeros(B, H, 0, dv)
    return o.to(dtype), (S if output_final_state else None)
