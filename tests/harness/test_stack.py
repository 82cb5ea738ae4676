"""mixology.verify.stack.call: the same call, with no frame-chunk churn below it."""

import resource
import sys
import threading

import pytest

from mixology.verify import stack


def _leaf(a, b):
    return a + b


def _descend(depth, calls):
    """At each depth, ``calls`` calls of a leaf: at some depth the leaf's frame lands just past
    a 16 KiB chunk's edge, and (without a cached chunk) each call maps and unmaps one."""
    if depth == 0:
        return 0
    for _ in range(calls):
        _leaf(1, 2)
    return _descend(depth - 1, calls)


def _page_faults(fn) -> int:
    """The minor page faults of ``fn()`` run on a new thread: its frames start at the bottom of
    a fresh frame stack (this test itself runs below stack.call, by conftest.py)."""
    out = []

    def run():
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        fn()
        out.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return out[0]


def test_call_passes_arguments_results_and_exceptions():
    assert stack.call(divmod, 7, 2) == (3, 1)
    assert stack.call(dict, a=1) == {"a": 1}
    with pytest.raises(ZeroDivisionError):
        stack.call(divmod, 1, 0)


def test_frames_below_call_allocate_no_chunks():
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 5000))
    try:
        plain = min(_page_faults(lambda: _descend(900, 300)) for _ in range(3))
        roomy = min(_page_faults(lambda: stack.call(_descend, 900, 300)) for _ in range(3))
    finally:
        sys.setrecursionlimit(limit)
    assert roomy < 200, f"{roomy} page faults below stack.call"
    if plain < 1000:
        pytest.skip(f"this Python keeps a frame chunk cached ({plain} page faults without call)")
    assert roomy * 5 < plain, (plain, roomy)
