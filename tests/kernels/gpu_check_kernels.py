"""Kernels that gpu-check must flag (and one it must pass): tests/kernels/test_gpu_check.py compiles
them for sm_90 in a process without TRITON_INTERPRET."""

import triton
import triton.language as tl


@triton.jit
def spilling_kernel(out_ptr, BLOCK: tl.constexpr):
    """16384 live float32 values for one warp: 512 registers a thread, past any limit."""
    i = tl.arange(0, BLOCK)
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for k in range(8):
        acc = acc * 1.5 + tl.load(out_ptr + ((i * (k + 7)) % BLOCK))
    acc = tl.cumsum(acc, axis=0)
    tl.store(out_ptr + i, acc)


@triton.jit
def i32_offset_kernel(x_ptr, y_ptr, n, stride, BLOCK: tl.constexpr):
    """Row i at i * stride, a 32-bit product: wraps once the offset passes 2^31."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + i, tl.load(x_ptr + i * stride, mask=i < n), mask=i < n)


@triton.jit
def i64_offset_kernel(x_ptr, y_ptr, n, stride, BLOCK: tl.constexpr):
    """The same with the index widened first."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + i, tl.load(x_ptr + i.to(tl.int64) * stride, mask=i < n), mask=i < n)


@triton.jit
def copy_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    """A contiguous copy: 16-byte loads and stores."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + i, tl.load(x_ptr + i, mask=i < n), mask=i < n)


@triton.jit
def scaled_copy_kernel(x_ptr, y_ptr, scale, n, BLOCK: tl.constexpr):
    """y = x * scale with scale a Python float: bound as fp32, so a float64 launch rounds it."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(y_ptr + i, tl.load(x_ptr + i, mask=i < n) * scale, mask=i < n)
