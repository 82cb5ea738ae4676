"""Numerics: the tolerance policy, the reference's rounding-error scale, accumulation dtypes."""
