"""Timing GPU (and CPU) work, and the device ceilings a run is measured against.

A *round* runs the op K times back to back and then synchronizes the device (on CUDA
``torch.cuda.synchronize``), so the host clock brackets exactly K calls' worth of GPU work;
K is chosen so a round lasts >= ~2 ms (launch and sync overhead amortized). pytest-benchmark
runs warm-up rounds, then many rounds, and reports the median; the per-call median is the
round median / K. Derived figures: effective GB/s (bytes that must move: inputs read once,
outputs written once), TFLOP/s, and percentages of the device ceilings measured in the same
run (a large device-to-device copy; a large bf16 matmul, fp32 on CPU).
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def versions() -> dict:
    """What a result depends on besides the code: torch, triton, Python and the machine."""
    try:
        # triton is optional: loaded where a kernel runs
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    return {"torch": torch.__version__, "triton": triton_version,
            "python": platform.python_version(), "machine": platform.node() or "?"}


def device_key(device: str) -> str:
    """Names the history folder: results of different devices are never mixed."""
    if device == "cuda":
        name = torch.cuda.get_device_name()
    else:
        name = _cpu_model()
    return f"{device}-" + "".join(c if c.isalnum() else "_" for c in name).strip("_")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} x{os.cpu_count()}"


def calibrate(fn: Callable, device: str, *, round_s: float = 2e-3,
              budget_s: float = 0.25) -> tuple[int, int]:
    """(calls per round, rounds): a round of >= round_s, about budget_s of timed rounds."""
    fn()  # compile / autotune / allocate
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    one = max(time.perf_counter() - t0, 1e-7)
    calls = max(1, math.ceil(round_s / one))
    rounds = int(min(50, max(5, budget_s / (one * calls))))
    return calls, rounds


def time_fn(fn: Callable, device: str, *, warmup: int = 3, reps: int = 20) -> float:
    """Median seconds per call (used for the ceilings), same round structure as the sweep."""
    calls, _ = calibrate(fn, device)
    times = []
    for i in range(warmup + reps):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        sync(device)
        if i >= warmup:
            times.append((time.perf_counter() - t0) / calls)
    return sorted(times)[len(times) // 2]


def peak_memory(fn: Callable, device: str) -> int | None:
    """Bytes allocated at the peak of one call, above what was allocated before it."""
    if device != "cuda":
        return None
    sync(device)
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    out = fn()
    sync(device)
    peak = torch.cuda.max_memory_allocated() - before
    del out
    return peak


@dataclass
class Ceilings:
    copy_gbps: float  # device-to-device copy, bytes read + written
    matmul_tflops: float  # bf16 (fp32 on CPU) square matmul
    copy_bytes: int
    matmul_n: int

    def as_dict(self) -> dict:
        return asdict(self)


def measure_ceilings(device: str) -> Ceilings:
    if device == "cuda":
        copy_bytes, n, dtype = 2 * 2**30, 8192, torch.bfloat16
    else:
        copy_bytes, n, dtype = 64 * 2**20, 1024, torch.float32
    src = torch.empty(copy_bytes // 4, dtype=torch.float32, device=device).normal_()
    dst = torch.empty_like(src)
    t_copy = time_fn(lambda: dst.copy_(src), device)
    a = torch.randn(n, n, device=device, dtype=dtype)
    bm = torch.randn(n, n, device=device, dtype=dtype)
    t_mm = time_fn(lambda: a @ bm, device)
    return Ceilings(2 * copy_bytes / t_copy / 1e9, 2 * n**3 / t_mm / 1e12, copy_bytes, n)


def derived(median_s: float, bytes_moved: int, flops: int, ceilings: Ceilings) -> dict:
    gbps = bytes_moved / median_s / 1e9
    tflops = flops / median_s / 1e12
    return {
        "median_s": median_s,
        "bytes": bytes_moved,
        "flops": flops,
        "gbps": gbps,
        "tflops": tflops,
        "pct_copy_ceiling": 100 * gbps / ceilings.copy_gbps,
        "pct_matmul_ceiling": 100 * tflops / ceilings.matmul_tflops,
    }
