"""Test session set-up shared by tests/ and perf/.

- ``MIXOLOGY_DEVICE`` (cpu | cuda; default: cuda if available) picks the device under test.
- On CPU, Triton kernels run through Triton's interpreter: ``TRITON_INTERPRET=1`` must be set
  before triton is imported, so it is set here, first.
- ``MIXOLOGY_PROFILE`` (ci | dev | thorough) picks the hypothesis profile (default dev).
- ``MIXOLOGY_SIZES`` (small | kernel | all) picks the case sizes (default all: small, then a
  budget of kernel-scale examples).
- ``MIXOLOGY_POISON=1`` (set here): kernel output buffers start as NaN.
"""

import functools
import os
import warnings

import pytest
import torch

DEVICE = os.environ.get("MIXOLOGY_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
os.environ["MIXOLOGY_DEVICE"] = DEVICE
# Kernel outputs start as NaN (mixology.ops._kernels.triton_utils.empty): an unwritten tile fails every test.
os.environ.setdefault("MIXOLOGY_POISON", "1")
if DEVICE == "cpu":
    os.environ.setdefault("TRITON_INTERPRET", "1")
    warnings.filterwarnings("ignore", category=RuntimeWarning,
                            module=r"triton\.runtime\.interpreter")

from mixology.spec.strategies import load_profile  # noqa: E402
from mixology.verify import stack  # noqa: E402

load_profile()
# pytest-xdist workers share the cores: torch's intra-op threads per worker, not per machine
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))


def pytest_report_header(config):
    from mixology.spec.strategies import profile_name

    return (f"mixology: device={DEVICE} profile={profile_name()} "
            f"TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET', '0')}")


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    """Each test below a big frame (mixology.verify.stack): without it, a test whose calls
    oscillate at the edge of CPython's 16 KiB frame chunks maps and unmaps one per call."""
    test = pyfuncitem.obj
    pyfuncitem.obj = functools.wraps(test)(lambda **kwargs: stack.call(test, **kwargs))
    try:
        return (yield)
    finally:
        pyfuncitem.obj = test
