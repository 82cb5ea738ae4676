"""The Triton kernels, torch.compile of the references, and gpu-check."""
