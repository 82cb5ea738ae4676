"""The rounding-error model behind the tolerance floor: it must cover every order of summation a
kernel may choose (tree, sequential, tiled, Welford), and still see an accumulator that is too
narrow."""

import numpy as np
import torch

from mixology.numerics.rounding import rounding_error
from mixology.numerics.tolerance import SIGMAS


def _rows(n, seed):
    g = torch.Generator().manual_seed(seed)
    return 1e4 + torch.randn(n, generator=g, dtype=torch.float64)


def _sequential(x: np.ndarray) -> float:
    return float(np.cumsum(x)[-1])  # numpy's cumsum adds left to right, in x's dtype


def test_a_sequential_sum_is_within_the_floor_of_any_order():
    for seed in range(5):
        x = _rows(4097, seed)
        sigma = float(rounding_error(lambda a: a.sum(), (x.float(),))[0])
        err = abs(_sequential(x.float().numpy()) - float(x.sum()))
        assert err <= SIGMAS * sigma, (seed, err, sigma)
        # the old single-rounding floor (one rounding at Σ|terms|) was this much too tight
        assert err > SIGMAS * sigma / np.sqrt(4097) or seed, (err, sigma)


def test_welford_variance_in_float64_is_within_the_floor():
    x = _rows(4097, 0) * 300
    mean, m2 = 0.0, 0.0
    for k, v in enumerate(x.tolist(), 1):  # Welford's update, float64
        d = v - mean
        mean += d / k
        m2 += d * (v - mean)
    sigma = rounding_error(lambda a: a.var(correction=0), (x,))[0]
    exact = np.var(x.numpy().astype(np.longdouble))
    assert abs(m2 / len(x) - float(exact)) <= SIGMAS * float(sigma)


def test_a_half_precision_accumulator_is_outside_the_floor():
    """A float16 running sum (the input dtype as accumulator) against the float32 one."""
    g = torch.Generator().manual_seed(1)
    x = (0.5 + torch.rand(4097, generator=g, dtype=torch.float64)).half()
    sigma = float(rounding_error(lambda a: a.sum(dtype=torch.float32), (x,))[0])
    err = abs(_sequential(x.numpy()) - float(x.double().sum()))
    assert err > 10 * SIGMAS * sigma, (err, sigma)
