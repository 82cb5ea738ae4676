"""The tolerance policy itself: err(impl) <= 2 err(ref) + err(oracle) + 4 σ(ref)."""

import math

import pytest
import torch

from mixology.numerics import tolerance as tol


def test_passes_within_twice_the_reference_error_plus_the_floor():
    truth = torch.tensor([1.0, -2.0, 4.0], dtype=torch.float64)
    ref_low = truth + torch.tensor([0.01, 0, 0], dtype=torch.float64)
    floor = tol.SIGMAS * 0.001
    ok = truth + torch.tensor([0, 0.02 + floor * 0.99, 0], dtype=torch.float64)
    bad = truth + torch.tensor([0, 0.02 + floor * 1.01, 0], dtype=torch.float64)
    assert tol.verdict("y", ok, ref_low, truth, torch.bfloat16, sigma=0.001).ok
    assert not tol.verdict("y", bad, ref_low, truth, torch.bfloat16, sigma=0.001).ok


def test_floor_without_a_propagated_sigma_is_one_rounding_of_the_result():
    truth = torch.tensor([0.5, -3.0], dtype=torch.float64)
    v = tol.verdict("y", truth, truth, truth, torch.float32)
    s = torch.finfo(torch.float32).eps / 2 / math.sqrt(3)  # a uniform rounding's std
    assert v.err_ref == 0 and v.floor == pytest.approx(tol.SIGMAS * s * 3.0)
    assert v.floor >= torch.finfo(torch.float32).eps * 3.0  # at least one ulp of the result


def test_misplaced_nan_is_an_infinite_error_and_matching_nan_is_none():
    truth = torch.tensor([1.0, math.nan], dtype=torch.float64)
    assert tol.max_abs_err(torch.tensor([1.0, math.nan]), truth) == 0
    assert tol.max_abs_err(torch.tensor([math.nan, 1.0]), truth) == math.inf
    assert tol.max_abs_err(torch.tensor([1.0, math.inf]), truth) == math.inf


def test_float64_reference_error_is_float32_error_scaled_by_unit_roundoff():
    truth = torch.tensor([1.0], dtype=torch.float64)
    ref32 = torch.tensor([1.0 + 2**-23], dtype=torch.float32)
    assert tol.float64_ref_err(ref32, truth) == pytest.approx(2**-23 * 2**-52 / 2**-23)


def test_an_implementation_more_accurate_than_the_float64_oracle_passes():
    """In float64 the oracle is the reference itself: an exact implementation is err(ref) away
    from it, which must pass even when err(ref) is the whole error budget (no floor)."""
    exact = torch.tensor([1.0], dtype=torch.float64)
    oracle = exact + 3e-15  # the float64 reference, 3e-15 off the exact value
    v = tol.verdict("y", exact, oracle, oracle, torch.float64, ref_err_override=3e-15, sigma=0.0)
    assert v.ok and v.err_oracle == 3e-15
    worse = exact + 3e-15 + 3.1 * 3e-15  # 3.1x the reference's own error away: rejected
    assert not tol.verdict("y", worse, oracle, oracle, torch.float64, ref_err_override=3e-15,
                           sigma=0.0).ok


def test_assert_close_reports_every_tensor():
    t = torch.zeros(3, dtype=torch.float64)
    with pytest.raises(AssertionError, match=r"(?s)y: .*ok.*dx: .*FAIL"):
        tol.assert_close({"y": (t, t, t), "dx": (t + 1, t, t)}, torch.float32)


def test_empty_tensors_compare_equal():
    e = torch.empty(0, 3, dtype=torch.float64)
    assert tol.verdict("y", e.float(), e.float(), e, torch.float32).ok
