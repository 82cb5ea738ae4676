"""What the kernels share: Triton helpers, torch.compile of a reference, launch mutants."""
