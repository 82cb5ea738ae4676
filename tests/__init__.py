"""The test suite, mirroring the package: spec, harness, numerics, kernels, bench, lab."""
