"""RankMixer token mixing (arXiv 2507.15551), the reference: einops that reads like the paper.

Split each of the T tokens of ``x: (B, T, D)`` into H heads of size d = D/H, lay the heads
out head-major (all tokens' head 0, then all tokens' head 1, ...), and cut that sequence back
into T tokens of size D. With H == T, output token h is head h of every input token.

There is no permute back: "split heads -> permute -> flatten -> unflatten -> permute back"
is the identity and mixes nothing (see ``mutants.permute_back``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from mixology.ops.token_mix.checks import check_mix_input, check_mixer_input


def token_mix(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    B, T, D, _ = check_mix_input(x, num_heads)
    heads = rearrange(x, "b t (h d) -> b (h t d)", h=num_heads)
    return heads.reshape(B, T, D)


def token_unmix(y: torch.Tensor, num_heads: int) -> torch.Tensor:
    """The inverse permutation of :func:`token_mix` (also its gradient)."""
    B, T, D, _ = check_mix_input(y, num_heads, name="y")
    heads = y.reshape(B, num_heads * T * (D // num_heads))
    return rearrange(heads, "b (h t d) -> b t (h d)", h=num_heads, t=T)


def token_mixer(x, num_heads, weight, bias, eps=1e-5):
    """The TokenMixer block: ``LayerNorm(x + token_mix(x))`` with affine ``weight``/``bias``."""
    check_mixer_input(x, num_heads, weight, bias, eps)
    return F.layer_norm(x + token_mix(x, num_heads), (x.shape[-1],), weight, bias, eps)
