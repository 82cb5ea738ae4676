"""The tolerance policy itself: err(impl) <= 2 * err(ref) + eps(dtype) * max|ref64|."""

import math

import pytest
import torch

from mixology import tolerance as tol


def test_passes_within_twice_the_reference_error():
    truth = torch.tensor([1.0, -2.0, 4.0], dtype=torch.float64)
    ref_low = truth + torch.tensor([0.01, 0, 0], dtype=torch.float64)
    floor = tol.eps(torch.bfloat16) * 4.0
    ok = truth + torch.tensor([0, 0.02 + floor, 0], dtype=torch.float64)
    bad = truth + torch.tensor([0, 0.02 + floor * 1.01, 0], dtype=torch.float64)
    assert tol.verdict("y", ok, ref_low, truth, torch.bfloat16).ok
    assert not tol.verdict("y", bad, ref_low, truth, torch.bfloat16).ok


def test_floor_is_one_eps_at_the_result_scale():
    truth = torch.tensor([0.5, -3.0], dtype=torch.float64)
    v = tol.verdict("y", truth, truth, truth, torch.float32)
    assert v.err_ref == 0 and v.floor == pytest.approx(3.0 * torch.finfo(torch.float32).eps)


def test_misplaced_nan_is_an_infinite_error_and_matching_nan_is_none():
    truth = torch.tensor([1.0, math.nan], dtype=torch.float64)
    assert tol.max_abs_err(torch.tensor([1.0, math.nan]), truth) == 0
    assert tol.max_abs_err(torch.tensor([math.nan, 1.0]), truth) == math.inf
    assert tol.max_abs_err(torch.tensor([1.0, math.inf]), truth) == math.inf


def test_float64_reference_error_is_float32_error_scaled_by_unit_roundoff():
    truth = torch.tensor([1.0], dtype=torch.float64)
    ref32 = torch.tensor([1.0 + 2**-23], dtype=torch.float32)
    assert tol.float64_ref_err(ref32, truth) == pytest.approx(2**-23 * 2**-52 / 2**-23)


def test_assert_close_reports_every_tensor():
    t = torch.zeros(3, dtype=torch.float64)
    with pytest.raises(AssertionError, match=r"(?s)y: .*ok.*dx: .*FAIL"):
        tol.assert_close({"y": (t, t, t), "dx": (t + 1, t, t)}, torch.float32)


def test_empty_tensors_compare_equal():
    e = torch.empty(0, 3, dtype=torch.float64)
    assert tol.verdict("y", e.float(), e.float(), e, torch.float32).ok


def test_term_scaled_floor_uses_the_magnitude_of_the_summed_terms():
    """A different summation algorithm is allowed one eps at the scale of |terms|, not |result|."""
    truth = torch.tensor([1e-3], dtype=torch.float64)  # a small result of large, cancelling terms
    impl = truth + 50 * tol.eps(torch.float64)
    assert not tol.verdict("y", impl, truth, truth, torch.float64).ok
    assert tol.verdict("y", impl, truth, truth, torch.float64, scale=100.0).ok
