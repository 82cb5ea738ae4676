"""Where each output element of the token-mixing permutation comes from (shared by the kernels).

For one batch, let f be the flat index of an element in the head-major sequence
``rearrange(x, 'b t (h d) -> b (h t d)')``: f = h*T*d + t*d + j holds x[t, h*d + j].
Token mixing writes that sequence back as T rows of D, so output (s, c) holds f = s*D + c.
Unmixing is the inverse map.
"""

from __future__ import annotations

import os

import torch
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
        f = h * T * HEAD_DIM + s * HEAD_DIM + (cols % HEAD_DIM)
        src_t = f // D
        src_c = f % D
    else:
        # output (s, c) <- flat f = s*D + c = h*T*d + t*d + j of the head-major sequence
        f = s * D + cols
        seg = T * HEAD_DIM
        rem = f % seg
        src_t = rem // HEAD_DIM
        src_c = (f // seg) * HEAD_DIM + rem % HEAD_DIM
    return b * stride_b + src_t * stride_t + src_c * stride_d


def check_runnable(x: torch.Tensor) -> None:
    """Refuse, with a clear error, to launch where Triton cannot run x's device."""
    interpret = os.environ.get("TRITON_INTERPRET") == "1"
    if x.device.type == "cpu" and not interpret:
        raise RuntimeError(
            "the triton implementation needs a CUDA tensor, or TRITON_INTERPRET=1 "
            "(set before importing triton) to run CPU tensors through Triton's interpreter"
        )
    if x.device.type not in ("cpu", "cuda"):
        raise RuntimeError(f"the triton implementation cannot run on {x.device}")


def row_tile(D: int, elements: int = 4096) -> tuple[int, int]:
    """(BLOCK_ROWS, BLOCK_D): whole rows of D (padded to a power of two) per program."""
    block_d = triton.next_power_of_2(max(D, 1))
    block_rows = max(1, min(16, elements // block_d))
    return block_rows, block_d


def num_warps(block_rows: int, block_d: int) -> int:
    """Warps per program: about 16 elements a thread, 4 to 16 warps (as Liger-Kernel sizes them)."""
    return max(4, min(16, triton.next_power_of_2(block_rows * block_d // 512)))


def acc_dtype(dtype: torch.dtype):
    """Accumulate in float32, or float64 for float64 inputs."""
    return tl.float64 if dtype == torch.float64 else tl.float32


@triton.jit
def cast_out(y, dtype: tl.constexpr, EMULATE_BF16_RNE: tl.constexpr):
    """Cast ``y`` to the output dtype, rounding to nearest even.

    Triton's interpreter (3.x) truncates float32 -> bfloat16 casts (round toward zero) and
    ignores ``fp_downcast_rounding``, while CUDA rounds to nearest even. Under the interpreter
    the rounding is done here in integer arithmetic, so CPU results match the GPU bit for bit.
    """
    if EMULATE_BF16_RNE:
        u = y.to(tl.float32).to(tl.uint32, bitcast=True)
        rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
        quiet_nan = (u >> 16) | 0x40
        bits16 = tl.where(y != y, quiet_nan, rounded).to(tl.uint16)
        return bits16.to(tl.bfloat16, bitcast=True)
    else:
        return y.to(dtype)


def emulate_bf16_rne(dtype: torch.dtype) -> bool:
    return dtype == torch.bfloat16 and os.environ.get("TRITON_INTERPRET") == "1"
