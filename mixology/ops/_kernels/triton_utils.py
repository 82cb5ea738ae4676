"""Helpers every Triton kernel of mixology shares: device checks, accumulation dtype, and
bf16 rounding that matches CUDA under Triton's interpreter."""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

# Tests and `verify` set MIXOLOGY_POISON=1: outputs a kernel must write start as NaN, so a tile
# that no program writes fails every comparison instead of passing on leftover memory.
POISON_ENV = "MIXOLOGY_POISON"


def empty(shape, dtype: torch.dtype, device) -> torch.Tensor:
    """An output buffer for a kernel to fill: torch.empty, or NaN-filled under MIXOLOGY_POISON=1."""
    out = torch.empty(shape, dtype=dtype, device=device)
    if os.environ.get(POISON_ENV) == "1" and out.is_floating_point():
        out.fill_(float("nan"))
    return out


def empty_like(t: torch.Tensor) -> torch.Tensor:
    return empty(t.shape, t.dtype, t.device)


# Set by mixology.bench.gpu_check while it records launches instead of running them: ops then take
# meta tensors, and persistent grids are sized for this many SMs (the target GPU's).
CAPTURE_SM_COUNT: int | None = None


def check_runnable(x: torch.Tensor) -> None:
    """Refuse, with a clear error, to launch where Triton cannot run x's device."""
    if CAPTURE_SM_COUNT is not None and x.device.type == "meta":
        return
    interpret = os.environ.get("TRITON_INTERPRET") == "1"
    if x.device.type == "cpu" and not interpret:
        raise RuntimeError(
            "the triton implementation needs a CUDA tensor, or TRITON_INTERPRET=1 "
            "(set before importing triton) to run CPU tensors through Triton's interpreter"
        )
    if x.device.type not in ("cpu", "cuda"):
        raise RuntimeError(f"the triton implementation cannot run on {x.device}")


def acc_dtype(dtype: torch.dtype):
    """Accumulate in float32, or float64 for float64 inputs."""
    return tl.float64 if dtype == torch.float64 else tl.float32


@triton.jit
def load_tile(ptr, base, t0, T, stride_t, stride_c, n_cols, col0,
               ACC: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_C: tl.constexpr):
    """Rows t0 .. t0+BLOCK_T and columns col0 .. col0+BLOCK_C of a (.., T, n_cols) tensor at
    ``base`` with its strides, zero outside (T, n_cols), in ACC; offsets in 64 bits."""
    t = t0 + tl.arange(0, BLOCK_T)
    c = col0 + tl.arange(0, BLOCK_C)
    mask = (t[:, None] < T) & (c[None, :] < n_cols)
    return tl.load(ptr + base + t.to(tl.int64)[:, None] * stride_t
                   + c.to(tl.int64)[None, :] * stride_c,
                   mask=mask, other=0.0).to(ACC)


@triton.jit
def dot(a, b, ACC: tl.constexpr):
    """a @ b accumulated in ACC, exact float32 products (no TF32)."""
    return tl.dot(a, b, input_precision="ieee", out_dtype=ACC)


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


def row_tile(D: int, elements: int = 4096) -> tuple[int, int]:
    """(BLOCK_ROWS, BLOCK_D): whole rows of D (padded to a power of two) per program."""
    block_d = triton.next_power_of_2(max(D, 1))
    block_rows = max(1, min(16, elements // block_d))
    return block_rows, block_d


def num_warps(block_rows: int, block_d: int) -> int:
    """Warps per program: about 16 values of a tile a thread, 4 to 16 warps (as Liger-Kernel
    sizes them). 32 values a thread spilled on sm_90 (alibi, permute: found by gpu-check)."""
    return max(4, min(16, triton.next_power_of_2(block_rows * block_d // 512)))


def persistent_programs(n_tiles: int, device: torch.device) -> int:
    """Programs of a persistent grid over ``n_tiles`` row tiles: 4 per SM on CUDA; 4 under the
    interpreter, which runs programs one after another (few programs, long loops)."""
    if CAPTURE_SM_COUNT is not None and device.type == "meta":
        return min(n_tiles, 4 * CAPTURE_SM_COUNT)
    if device.type == "cuda":
        return min(n_tiles, 4 * torch.cuda.get_device_properties(device).multi_processor_count)
    return min(n_tiles, 4)


# Last in the file: the kernels above keep their line numbers, which their compile cache keys
# (and gpu-check's committed results) include.
from mixology.verify import interpreter  # noqa: E402

interpreter.speed_up()  # under TRITON_INTERPRET=1: the same results, launched faster
