"""Where each output element of the token-mixing permutation comes from (shared by the kernels).

For one batch, let f be the flat index of an element in the head-major sequence
``rearrange(x, 'b t (h d) -> b (h t d)')``: f = h*T*d + t*d + j holds x[t, h*d + j].
Token mixing writes that sequence back as T rows of D, so output (s, c) holds f = s*D + c.
Unmixing is the inverse map.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def source_offsets(rows, cols, T, D, HEAD_DIM, stride_b, stride_t, stride_d,
                   INVERSE: tl.constexpr):
    """Offsets into a strided (B, T, D) input of the elements landing at (rows, cols).

    ``rows`` index the B*T output rows (int64), ``cols`` the D output columns.
    """
    b = rows // T
    s = rows % T
    if INVERSE:
        # output (t=s, col=h*d+j) <- flat f = h*T*d + s*d + j of the mixed tensor
        h = cols // HEAD_DIM
        f = h.to(tl.int64) * T * HEAD_DIM + s * HEAD_DIM + (cols % HEAD_DIM)
        src_t = f // D
        src_c = f % D
    else:
        # output (s, c) <- flat f = s*D + c = h*T*d + t*d + j of the head-major sequence
        f = s * D + cols
        seg = tl.cast(T, tl.int64) * HEAD_DIM
        rem = f % seg
        src_t = rem // HEAD_DIM
        src_c = (f // seg) * HEAD_DIM + rem % HEAD_DIM
    return b * stride_b + src_t * stride_t + src_c * stride_d
