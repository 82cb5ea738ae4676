"""Callables for the --candidate tests: one correct, one wrong (a user's kernels)."""

import torch

from mixology.validate import check_mix_input


def good_token_mix(x, num_heads):
    """A hand-written version with view/permute (no einops)."""
    B, T, D, d = check_mix_input(x, num_heads)
    return x.reshape(B, T, num_heads, d).permute(0, 2, 1, 3).reshape(B, T, D)


def bad_token_mix(x, num_heads):
    """Permutes back: the identity."""
    B, T, D, d = check_mix_input(x, num_heads)
    h = x.reshape(B, T, num_heads, d).permute(0, 2, 1, 3)
    return h.permute(0, 2, 1, 3).reshape(B, T, D)


def good_token_mixer(x, num_heads, weight, bias, eps=1e-5):
    from mixology.validate import check_mixer_input

    check_mixer_input(x, num_heads, weight, bias, eps)
    z = x + good_token_mix(x, num_heads)
    return torch.nn.functional.layer_norm(z, (x.shape[-1],), weight, bias, eps)
