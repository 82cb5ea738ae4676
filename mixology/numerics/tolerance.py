"""The tolerance policy, in one place (the whole argument: docs/tolerance.md).

An implementation is never given a hand-picked atol/rtol: it is held to what the reference
itself achieves in the same dtype, against the reference in float64 (the oracle), plus a floor
at the scale of the reference's own rounding:

    err(impl) = max |impl(x) - ref64(x)|
    err(ref)  = max |ref(x)  - ref64(x)|
    pass  iff  err(impl) <= FACTOR * err(ref) + err(oracle) + SIGMAS * σ

σ is the largest standard deviation of the reference's propagated rounding error over the
tensor (mixology.numerics.rounding); err(oracle) is err(ref) in float64 (estimated from float32
as err32 · eps64/eps32) and 0 in the low dtypes. Gradients are held to the same rule, tensor by
tensor; NaN/Inf must appear exactly where the float64 reference has them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

FACTOR = 2.0
SIGMAS = 4.0


def eps(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps


def max_abs_err(a: torch.Tensor, truth: torch.Tensor) -> float:
    """max |a - truth| in float64; mismatched non-finite values count as infinite error."""
    a64, t64 = a.detach().to(torch.float64), truth.detach().to(torch.float64)
    if a64.numel() == 0:
        return 0.0
    same = (a64 == t64) | (torch.isnan(a64) & torch.isnan(t64))
    diff = torch.where(same, torch.zeros_like(a64), (a64 - t64).abs())
    return float(torch.nan_to_num(diff, nan=float("inf")).max())


def scale_of(truth: torch.Tensor) -> float:
    finite = truth.detach()[torch.isfinite(truth.detach())]
    return float(finite.abs().max()) if finite.numel() else 0.0


def one_rounding(truth: torch.Tensor, dtype: torch.dtype) -> float:
    """σ of a result rounded once to ``dtype``: u/√3·max|truth| (where none was propagated)."""
    return eps(dtype) / 2 / math.sqrt(3) * scale_of(truth)


@dataclass
class Verdict:
    name: str
    err_impl: float
    err_ref: float
    floor: float
    err_oracle: float = 0.0

    @property
    def tol(self) -> float:
        return FACTOR * self.err_ref + self.err_oracle + self.floor

    @property
    def ok(self) -> bool:
        return self.err_impl <= self.tol

    def __str__(self) -> str:
        mark = "ok" if self.ok else "FAIL"
        oracle = f" + err(oracle)={self.err_oracle:.3e}" if self.err_oracle else ""
        return (f"{self.name}: err(impl)={self.err_impl:.3e} vs tol={self.tol:.3e} "
                f"(= {FACTOR:g} x err(ref)={self.err_ref:.3e}{oracle} + "
                f"floor={self.floor:.3e}) {mark}")


def verdict(name: str, impl: torch.Tensor, ref_low: torch.Tensor, ref64: torch.Tensor,
            dtype: torch.dtype, ref_err_override: float | None = None,
            sigma: float | None = None) -> Verdict:
    """``sigma``: the reference's rounding-error scale (max over the tensor); default: one
    rounding of the result."""
    err_ref = max_abs_err(ref_low, ref64) if ref_err_override is None else ref_err_override
    sigma = one_rounding(ref64, dtype) if sigma is None else sigma
    oracle = err_ref if dtype == torch.float64 else 0.0
    return Verdict(name, max_abs_err(impl, ref64), err_ref, SIGMAS * sigma, oracle)


def assert_close(results: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
                 dtype: torch.dtype, ref_err_f64: dict[str, float] | None = None,
                 sigmas: dict[str, float] | None = None) -> None:
    """Check each named ``(impl, ref_low, ref64)`` triple; raise listing every verdict on failure.

    For ``dtype == float64`` pass ``ref_err_f64`` (from :func:`float64_ref_err`); ``sigmas``
    are the reference's rounding-error scales (see :mod:`mixology.numerics.rounding`)."""
    verdicts = [
        verdict(name, *triple, dtype,
                None if ref_err_f64 is None else ref_err_f64[name],
                None if sigmas is None else sigmas[name])
        for name, triple in results.items()
    ]
    if not all(v.ok for v in verdicts):
        lines = "\n  ".join(str(v) for v in verdicts)
        raise AssertionError(f"tolerance policy violated (dtype {dtype}):\n  {lines}")


def float64_ref_err(ref32: torch.Tensor, ref64: torch.Tensor) -> float:
    """Estimated float64 error of the reference: its float32 error x eps64/eps32."""
    return max_abs_err(ref32, ref64) * eps(torch.float64) / eps(torch.float32)
