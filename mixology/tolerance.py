"""The tolerance policy, in one place.

An implementation run in a low dtype is never compared to a hand-picked atol/rtol. It is
compared to what the *reference itself* achieves in that dtype:

    err(impl) = max |impl(x_low) - ref(x_low as float64)|
    err(ref)  = max |ref(x_low)  - ref(x_low as float64)|
    pass  iff  err(impl) <= FACTOR * err(ref) + floor,     floor = eps(dtype) * max|ref64|

- Inputs are drawn in float64 and cast to the low dtype *first*; the float64 reference runs on
  the cast values, so input rounding is nobody's error.
- ``FACTOR = 2``: a correct implementation may round differently from the reference (fp32
  accumulation, another reduction order) but not be worse than twice as far from the truth.
- ``floor``: one unit of rounding (eps = 2 half-ulp roundings) at the largest magnitude of the
  result, so that maxima over a handful of elements (where err(ref) is a noisy statistic) and
  exactly-representable cases (err(ref) == 0) do not fail a correct implementation.
- float64 has no higher precision to compare with (the reference *is* the float64 truth), so
  err(ref) in float64 is estimated from the reference's measured float32 error scaled by the
  ratio of unit roundoffs, eps64/eps32: rounding error is proportional to the unit roundoff.
- In float64 the floor is 4 eps (FLOAT64_FLOOR_EPS) instead of 1: err(ref) there is an
  estimate, and a lucky float32 run (1/100 of an ulp, seen in CI on quadratic attention at
  T = 1) would otherwise fail a kernel that is 2 ulps off by multiplying by 1/d.
- Where the optimized form is a different *algorithm* (the linear-time form of quadratic
  attention sums over a d²-feature state in another association), rounding scales with the
  magnitude of the summed terms, not of the result. Such properties pass ``term_scales``: the
  floor is then eps(dtype) at the scale of the float64 reference run on |inputs| and
  |upstream| (the componentwise bound eps·|A|·|x| of a sum), instead of at max|ref64|.
- Gradients are held to the same rule, tensor by tensor, with the same upstream gradient.
- NaN/Inf must appear exactly where the float64 reference has them.

Pure data movement (``token_mix``) is not held to this policy: it must be bitwise exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

FACTOR = 2.0
# float64: err(ref) is only estimated (float32 error x eps64/eps32), and a float32 run that
# happens to round almost exactly (1/100 of an ulp was seen) leaves a correct kernel's 1-2 ulp
# path differences (1/d as a multiply, another dot order) no room; so 4 eps at the scale.
FLOAT64_FLOOR_EPS = 4.0


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


@dataclass
class Verdict:
    name: str
    err_impl: float
    err_ref: float
    floor: float

    @property
    def tol(self) -> float:
        return FACTOR * self.err_ref + self.floor

    @property
    def ok(self) -> bool:
        return self.err_impl <= self.tol

    def __str__(self) -> str:
        mark = "ok" if self.ok else "FAIL"
        return (f"{self.name}: err(impl)={self.err_impl:.3e} vs tol={self.tol:.3e} "
                f"(= {FACTOR:g} x err(ref)={self.err_ref:.3e} + floor={self.floor:.3e}) {mark}")


def verdict(name: str, impl: torch.Tensor, ref_low: torch.Tensor, ref64: torch.Tensor,
            dtype: torch.dtype, ref_err_override: float | None = None,
            scale: float | None = None) -> Verdict:
    err_ref = max_abs_err(ref_low, ref64) if ref_err_override is None else ref_err_override
    scale = scale_of(ref64) if scale is None else scale
    floor_eps = FLOAT64_FLOOR_EPS if dtype == torch.float64 else 1.0
    return Verdict(name, max_abs_err(impl, ref64), err_ref, floor_eps * eps(dtype) * scale)


def assert_close(results: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
                 dtype: torch.dtype, ref_err_f64: dict[str, float] | None = None,
                 term_scales: dict[str, float] | None = None) -> None:
    """Check each named ``(impl, ref_low, ref64)`` triple; raise listing every verdict on failure.

    For ``dtype == float64`` pass ``ref_err_f64`` (from :func:`float64_ref_err`); for a
    different algorithm, ``term_scales`` (see the module doc).
    """
    verdicts = [
        verdict(name, *triple, dtype,
                None if ref_err_f64 is None else ref_err_f64[name],
                None if term_scales is None else term_scales[name])
        for name, triple in results.items()
    ]
    if not all(v.ok for v in verdicts):
        lines = "\n  ".join(str(v) for v in verdicts)
        raise AssertionError(f"tolerance policy violated (dtype {dtype}):\n  {lines}")


def float64_ref_err(ref32: torch.Tensor, ref64: torch.Tensor) -> float:
    """Estimated float64 error of the reference: its float32 error x eps64/eps32."""
    return max_abs_err(ref32, ref64) * eps(torch.float64) / eps(torch.float32)
