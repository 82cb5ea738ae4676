"""What the commands share: the device set-up, the common options, the checkout, values."""

from __future__ import annotations

import argparse
import os
import warnings

import torch

PROFILES = ("ci", "dev", "thorough")


def setup_device(device: str | None) -> str:
    """Pick the device; on CPU, run Triton kernels through Triton's interpreter."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but torch sees no CUDA device")
    # verify is a test run: kernel outputs start as NaN, so an unwritten tile cannot pass
    os.environ.setdefault("MIXOLOGY_POISON", "1")
    if device == "cpu":
        # Must happen before triton.jit runs, i.e. before any kernel module is imported.
        os.environ.setdefault("TRITON_INTERPRET", "1")
        # The interpreter runs kernels with numpy, which warns on inf - inf (expected: NaN).
        warnings.filterwarnings("ignore", category=RuntimeWarning,
                                module=r"triton\.runtime\.interpreter")
    return device


def add_common(p: argparse.ArgumentParser) -> None:
    """--op, --device, --profile and --sizes: the options of verify, list and mutants."""
    p.add_argument("--op", action="append", help="only this op (repeatable)")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda if available")
    p.add_argument("--profile", choices=PROFILES,
                   help="hypothesis profile (default: $MIXOLOGY_PROFILE or dev)")
    p.add_argument("--sizes", choices=("small", "kernel", "all"),
                   help="case sizes: small, kernel (around tile boundaries, long sequences, "
                        "large magnitudes) or all, small first (default: $MIXOLOGY_SIZES or all)")


def duration(s: float) -> str:
    return f"{int(s // 60)}m{int(s % 60):02d}s"


def repo_root() -> str:
    """The checkout holding perf/ (benchmarks run from a clone, not an installed wheel)."""
    here = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    for root in (os.getcwd(), here):
        if os.path.exists(os.path.join(root, "perf", "test_sweep.py")):
            return root
    raise ValueError("run this from a mixology checkout (perf/test_sweep.py not found)")


def parse_value(text: str):
    """--set and --grid values: int, float, true/false, none, else the string."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
