"""Plausible buggy RoPE implementations. The spec must reject every one of them."""

from __future__ import annotations

import torch

from mixology.ops.positional import reference as ref
from mixology.registry import mutant
from mixology.validate import check_rope_input

ROPE = "rope"


def _rope(x, interleaved, *, flip=False, offset=0, base=ref.BASE, sin_shift=0, detach=False,
          checks=True):
    if checks:
        check_rope_input(x, interleaved)
    B, H, T, d = x.shape
    inv = base ** (-torch.arange(0, d, 2, dtype=torch.float64, device=x.device) / d)
    t = torch.arange(offset, T + offset, dtype=torch.float64, device=x.device)
    ang = t[:, None] * inv[None, :]
    cos = ang.cos()
    sin = (t[:, None] * inv.roll(sin_shift)[None, :]).sin()
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    cos, sin = cos.to(acc).to(x.dtype), sin.to(acc).to(x.dtype)
    src = x.detach() if detach else x
    if interleaved != flip:
        y1, y2 = ref.rotate(src[..., 0::2], src[..., 1::2], cos, sin)
        return torch.stack([y1, y2], dim=-1).flatten(-2)
    y1, y2 = ref.rotate(src[..., : d // 2], src[..., d // 2:], cos, sin)
    return torch.cat([y1, y2], dim=-1)


@mutant(ROPE)
def half_interleaved_mixup(x, interleaved=False):
    """Pairs features rotate-half when asked for interleaved, and vice versa."""
    return _rope(x, interleaved, flip=True)


@mutant(ROPE)
def positions_start_at_one(x, interleaved=False):
    """Positions 1 .. T instead of 0 .. T-1."""
    return _rope(x, interleaved, offset=1)


@mutant(ROPE)
def wrong_base(x, interleaved=False):
    """Frequencies from base 1000 instead of 10000."""
    return _rope(x, interleaved, base=1000.0)


@mutant(ROPE)
def sin_frequency_off_by_one(x, interleaved=False):
    """sin uses the neighbouring feature pair's frequency: not a rotation."""
    return _rope(x, interleaved, sin_shift=1)


@mutant(ROPE)
def detached_input(x, interleaved=False):
    """Rotates x.detach(): no gradient flows back."""
    return _rope(x, interleaved, detach=True)


@mutant(ROPE)
def rope_squeezes_singletons(x, interleaved=False):
    """Calls .squeeze() on the result."""
    return ref.rope(x, interleaved).squeeze()


@mutant(ROPE)
def rope_unchecked_inputs(x, interleaved=False):
    """No input checks: odd d silently drops a feature, integer tensors pass."""
    return _rope(x, bool(interleaved), checks=False)
