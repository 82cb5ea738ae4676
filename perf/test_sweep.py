"""The performance sweep (pytest-benchmark): every entry x implementation x mode x size.

Run through ``python -m mixology bench`` (or ``tox -e perf``), which saves the run into
``perf/history/<device>/``. Sizes: ``MIXOLOGY_BENCH_SIZES`` = full | quick | cpu (default:
full on CUDA, cpu otherwise). Each point's ``extra_info`` holds the per-call median, GB/s,
TFLOP/s, % of the copy and matmul ceilings measured in this run, and peak GPU memory.
"""

import os
from dataclasses import asdict

import pytest
import torch

import mixology
from mixology.bench import sweep, timing

DEVICE = os.environ["MIXOLOGY_DEVICE"]
SIZES = os.environ.get("MIXOLOGY_BENCH_SIZES") or ("full" if DEVICE == "cuda" else "cpu")
POINTS = sweep.sweep(SIZES, DEVICE)
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"


@pytest.fixture(scope="session")
def ceilings():
    return timing.measure_ceilings(DEVICE)


@pytest.mark.parametrize("point", POINTS, ids=str)
def test_sweep(benchmark, point, ceilings, session_results):
    available = mixology.implementations(point.entry, DEVICE)  # (loads the registry)
    if point.impl in mixology.registry.OPS[point.entry].impls and point.impl not in available:
        pytest.skip(f"{point.impl} does not run on {DEVICE} here")
    try:
        fn, nbytes, flops = sweep.ENTRIES[point.entry].build(point, DEVICE)
        calls, rounds = timing.calibrate(fn, DEVICE)
        warmup = 2
        if INTERPRETED and point.impl.startswith("triton"):
            # the interpreter's time is Python's, not the kernel's: the code path, recorded
            # (no GPU claim reads it), in the fewest rounds a median and a spread need
            calls, rounds, warmup = 1, 3, 0
        peak = timing.peak_memory(fn, DEVICE)
    except torch.OutOfMemoryError:
        pytest.skip("out of memory")

    def one_round():
        for _ in range(calls):
            fn()
        timing.sync(DEVICE)

    benchmark.group = f"{point.entry} {point.mode} {point.sweep}-sweep D={point.D} {point.dtype}"
    benchmark.pedantic(one_round, rounds=rounds, warmup_rounds=warmup, iterations=1)
    median = benchmark.stats.stats.median / calls
    info = {**asdict(point), "device": DEVICE, "device_key": timing.device_key(DEVICE),
            "sizes": SIZES, "session": os.environ.get("MIXOLOGY_BENCH_SESSION", ""),
            **timing.versions(),
            "calls_per_round": calls, "peak_mem_bytes": peak,
            "triton_interpreted": INTERPRETED,
            "ceilings": ceilings.as_dict(), **timing.derived(median, nbytes, flops, ceilings)}
    benchmark.extra_info.update(info)
    session_results.append(info)
    assert median > 0
