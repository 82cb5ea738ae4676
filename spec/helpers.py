"""Assertions shared by properties."""

from __future__ import annotations

import torch

_INT_VIEW = {8: torch.int64, 4: torch.int32, 2: torch.int16}


def bits(t: torch.Tensor) -> torch.Tensor:
    """The tensor's raw bit patterns (so -0.0 != 0.0 and NaN payloads count)."""
    return t.detach().contiguous().view(_INT_VIEW[t.element_size()])


def assert_bitwise_equal(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    assert actual.shape == expected.shape, (
        f"{what}: shape {tuple(actual.shape)} != expected {tuple(expected.shape)}")
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    a, e = bits(actual).cpu(), bits(expected).cpu()
    if not torch.equal(a, e):
        bad = (a != e).nonzero()
        i = tuple(bad[0].tolist())
        raise AssertionError(
            f"{what}: {len(bad)} of {a.numel()} elements differ bitwise; first at {i}: "
            f"got {actual[i].item()!r}, expected {expected[i].item()!r}")


def leaf(t: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A fresh autograd leaf with t's values (same strides, unless cast to another dtype)."""
    t = t.detach()
    return (t if dtype is None else t.to(dtype)).requires_grad_()


def expect_rejected(fn, bad, reference) -> None:
    """``fn(*bad.args)`` raises a ValueError or TypeError whose message names the argument
    (``bad.names[0]``): the contract, nothing more. The reference's own error (with the shape
    it expected) is checked word for word across the registered implementations by
    tests/spec/test_errors.py, not here."""
    try:
        reference(*bad.args)
    except (TypeError, ValueError):
        pass
    else:  # pragma: no cover - the spec's own consistency
        raise AssertionError(f"the reference accepts bad input {bad.what!r}")
    arg = bad.names[0]
    try:
        fn(*bad.args)
    except (TypeError, ValueError) as e:
        assert arg in str(e), f"{bad.what}: error {e!r} does not name the argument {arg!r}"
    except Exception as e:
        raise AssertionError(
            f"{bad.what}: raised {type(e).__name__}({e}) instead of a ValueError or TypeError "
            f"naming {arg!r}") from e
    else:
        raise AssertionError(f"{bad.what}: accepted silently (expected a ValueError or "
                             f"TypeError naming {arg!r})")
