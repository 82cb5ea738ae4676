"""Benchmarks: the sweep, timing and ceilings, the history and its gate, plots, gpu-check."""
