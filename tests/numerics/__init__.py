"""The tolerance policy and the rounding-error scale."""
