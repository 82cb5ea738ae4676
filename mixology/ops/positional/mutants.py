"""Plausible buggy RoPE implementations. The spec must reject every one of them."""

from __future__ import annotations

import torch

from mixology.ops._kernels.launch_mutants import first_tile_only, floor_grid
from mixology.ops.positional import reference as ref
from mixology.ops.positional.checks import check_alibi_input, check_rope_input, check_sinusoidal_input
from mixology.registry import mutant, patched

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
def rope_squeezes_singletons(x, interleaved=False):
    """Calls .squeeze() on the result."""
    return ref.rope(x, interleaved).squeeze()


@mutant(ROPE)
def rope_unchecked_inputs(x, interleaved=False):
    """No input checks: odd d silently drops a feature, integer tensors pass."""
    return _rope(x, bool(interleaved), checks=False)


class _RopeBackwardForward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, interleaved):
        # triton is optional: loaded where a kernel runs
        from mixology.ops.positional.triton_rope import rotate

        ctx.interleaved = interleaved
        return rotate(x, interleaved, inverse=False)

    @staticmethod
    def backward(ctx, g):
        # triton is optional: loaded where a kernel runs
        from mixology.ops.positional.triton_rope import rotate

        return rotate(g, ctx.interleaved, inverse=False), None


@mutant(ROPE, needs="triton")
def triton_backward_not_inverted(x, interleaved=False):
    """The fused kernel's backward rotates the gradient forward (+sin) instead of back."""
    check_rope_input(x, interleaved)
    return _RopeBackwardForward.apply(x, interleaved)


# --- ALiBi -------------------------------------------------------------------------------

ALIBI = "alibi"


def _alibi(scores, causal, *, slopes=None, offset=0, sign=-1.0, signed_distance=False,
           transpose=False):

    B, H, T, _ = check_alibi_input(scores, causal)
    pos = torch.arange(T, dtype=torch.float64, device=scores.device)
    dist = pos[:, None] - pos[None, :] + offset
    if transpose:
        dist = dist.T
    dist = dist if causal or signed_distance else dist.abs()
    m = torch.tensor(slopes(H) if slopes else ref.alibi_slopes(H), dtype=torch.float64,
                     device=scores.device)
    return scores + (sign * m[:, None, None] * dist).to(scores.dtype)


@mutant(ALIBI)
def alibi_slopes_per_head_halving(scores, causal=False):
    """Slopes 1/2, 1/4, ... per head (the H = 8 slopes for every H)."""
    return _alibi(scores, causal, slopes=lambda H: [2.0 ** -(h + 1) for h in range(H)])


@mutant(ALIBI)
def alibi_slopes_reversed(scores, causal=False):
    """The right slopes, assigned to the heads in reverse order."""
    return _alibi(scores, causal, slopes=lambda H: ref.alibi_slopes(H)[::-1])


@mutant(ALIBI)
def alibi_non_power_of_two_geometric(scores, causal=False):
    """For any H, the geometric 2^(-8h/H) (the standard rule only for powers of two)."""
    return _alibi(scores, causal, slopes=lambda H: [2.0 ** (-8 * (h + 1) / H) for h in range(H)])


@mutant(ALIBI)
def alibi_distance_off_by_one(scores, causal=False):
    """Distance t - s + 1: the diagonal gets a bias too."""
    return _alibi(scores, causal, offset=1)


@mutant(ALIBI)
def alibi_positive_bias(scores, causal=False):
    """+m·distance: attention favours far tokens."""
    return _alibi(scores, causal, sign=1.0)


@mutant(ALIBI)
def alibi_signed_when_bidirectional(scores, causal=False):
    """Bidirectional ALiBi with the signed distance t - s instead of |t - s|."""
    return _alibi(scores, causal, signed_distance=True)


@mutant(ALIBI)
def alibi_transposed(scores, causal=False):
    """Distance s - t: the bias is transposed (the causal part penalizes nothing it sees)."""
    return _alibi(scores, causal, transpose=True)


@mutant(ALIBI)
def alibi_returns_bias(scores, causal=False):
    """Returns the (H, T, T) bias alone instead of scores + bias."""

    B, H, T, _ = check_alibi_input(scores, causal)
    return ref.alibi_bias(H, T, causal, dtype=scores.dtype, device=scores.device)


@mutant(ALIBI)
def alibi_unchecked(scores, causal=False):
    """No input checks: non-square scores broadcast the bias or fail inside torch."""
    B, H, T = scores.shape[:3]
    return scores + ref.alibi_bias(H, T, bool(causal), dtype=scores.dtype, device=scores.device)


# --- sinusoidal --------------------------------------------------------------------------

SIN = "sinusoidal"


def _sinusoidal(x, *, swap=False, base=ref.BASE, freq_step=2, offset=0, concat=False,
                checks=True):

    if checks:
        check_sinusoidal_input(x)
    B, T, D = x.shape
    w = base ** (-torch.arange(0, D, 2, dtype=torch.float64, device=x.device)
                 * (freq_step / 2) / D)
    ang = torch.arange(offset, T + offset, dtype=torch.float64, device=x.device)[:, None] * w
    sin, cos = ang.sin(), ang.cos()
    if swap:
        sin, cos = cos, sin
    pe = torch.cat([sin, cos], -1) if concat else torch.stack([sin, cos], -1).flatten(-2)
    return x + pe.to(x.dtype)


@mutant(SIN)
def sin_cos_swapped(x):
    """cos on the even features, sin on the odd."""
    return _sinusoidal(x, swap=True)


@mutant(SIN)
def sinusoidal_base_1000(x):
    """Frequencies from base 1000 instead of 10000."""
    return _sinusoidal(x, base=1000.0)


@mutant(SIN)
def frequency_index_not_doubled(x):
    """ω_f = 10000^(-f/D) instead of 10000^(-2f/D)."""
    return _sinusoidal(x, freq_step=1)


@mutant(SIN)
def sinusoidal_positions_start_at_one(x):
    """Positions 1 .. T instead of 0 .. T-1."""
    return _sinusoidal(x, offset=1)


@mutant(SIN)
def sin_then_cos_halves(x):
    """[sin ..., cos ...] halves instead of interleaved (sin, cos) pairs."""
    return _sinusoidal(x, concat=True)


@mutant(SIN)
def sinusoidal_unchecked(x):
    """No input checks: odd D fails inside torch, integer x is silently promoted."""
    return _sinusoidal(x, checks=False)


@mutant(SIN)
def sinusoidal_returns_table(x):
    """Returns the (T, D) encoding itself instead of x + PE."""

    B, T, D = check_sinusoidal_input(x)
    sin, cos = ref.sinusoidal_table(T, D, x.device, torch.float64)
    return torch.stack([sin, cos], -1).flatten(-2).to(x.dtype)


# --- kernel scale: large positions, rows past one tile, T past a column block -------------

def _angles_in(work):
    """``rope_angles`` that computes t·θ in the dtype ``work`` (instead of float64), then casts."""
    def angles(T, d, device, dtype=torch.float32):
        inv_freq = ref.BASE ** (-torch.arange(0, d, 2, device=device, dtype=torch.float64) / d)
        t = torch.arange(T, device=device, dtype=work)
        return (t[:, None] * inv_freq.to(work)[None, :]).to(dtype)

    return angles


@mutant("rope", needs="triton")
def triton_rope_angles_in_input_dtype(x, interleaved=False):
    """The Triton RoPE fed cos/sin tables whose angles were computed in x's dtype."""
    # triton is optional: loaded where a kernel runs
    from mixology.ops.positional import triton_rope

    with patched(triton_rope, rope_angles=_angles_in(x.dtype)):
        return triton_rope.rope(x, interleaved)


@mutant("rope", needs="triton")
def triton_rope_first_tile_only(x, interleaved=False):
    """The Triton RoPE with BLOCK_F capped at 16: feature pairs past the 16th not rotated."""
    # triton is optional: loaded where a kernel runs
    from mixology.ops.positional import triton_rope

    with first_tile_only(triton_rope):
        return triton_rope.rope(x, interleaved)


@mutant("alibi", needs="triton")
def triton_alibi_tail_tile_unwritten(scores, causal=False):
    """The Triton ALiBi launched on n // block programs per axis: the last partial tile of rows
    and, past T = 1024, of key columns never written."""
    # triton is optional: loaded where a kernel runs
    from mixology.ops.positional import triton_additive

    with floor_grid(triton_additive):
        return triton_additive.alibi(scores, causal)


@mutant("sinusoidal", needs="triton")
def triton_sinusoidal_first_tile_only(x):
    """The Triton sinusoidal encoding with BLOCK_F capped at 16: features past 32 never written."""
    # triton is optional: loaded where a kernel runs
    from mixology.ops.positional import triton_additive

    with first_tile_only(triton_additive):
        return triton_additive.sinusoidal(x)
