"""Calls that keep CPython's frame stack from mapping and unmapping memory at every call.

CPython (3.11 on) keeps a thread's Python frames in chunks of 16 KiB. A call that does not fit
in the current chunk gets a new one from ``mmap``, and the chunk is unmapped as soon as that
call returns (CPython issue gh-142183; 3.13 and 3.14 releases from 2026 keep one chunk cached,
3.11 and 3.12 do not). Code that calls in a loop at exactly a chunk's edge pays a system call
pair and a page fault at every call. Gradcheck over a kernel run by Triton's interpreter does:
``quad_gradcheck_float64 [triton]`` took 27.0 s here, 13.8 s of it in the kernel (2.05 million
page faults), and 10.5 s under :func:`call` (66 thousand; 2026-12-07, 2-core x86, Python
3.11.7).

:func:`call` runs a function below one frame of 520 KiB, for which CPython allocates a chunk of
1 MiB: the frames of the call fit in the half that is left, whatever its depth oscillates
around, and none of them allocates. Only the first page of the big frame is ever touched (its
evaluation stack is never used), so it costs one ``mmap`` per call.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

#: evaluation-stack slots of the big frame (8 bytes each): 520 KiB, just over half of 1 MiB
ROOM_SLOTS = 65 * 1024


def _call(fn, args, kwargs):
    return fn(*args, **kwargs)


# _call's code with an evaluation stack it never uses: CPython sizes a frame by its code's
# co_stacksize, and a chunk by the frame that did not fit (the next power of two of 16 KiB)
_call = types.FunctionType(_call.__code__.replace(co_stacksize=ROOM_SLOTS), _call.__globals__,
                           "_call")


def call(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, its frames in a chunk of their own (see the module docstring)."""
    return _call(fn, args, kwargs)
