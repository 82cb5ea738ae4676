"""Plausible buggy versions of token mixing. The spec must reject every one of them.

Each is the kind of mistake a kernel author makes: the permute-back identity of the seed
designs, head/token order mix-ups, a backward that applies the forward permutation, a kernel
that ignores strides, a Triton mask or grid that misses data, LayerNorm with the wrong
variance or eps. Triton mutants reuse the real kernels with a buggy launch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from mixology.ops._kernels.launch_mutants import fixed_row_tile, floor_grid
from mixology.ops.token_mix import reference as ref
from mixology.ops.token_mix.checks import check_mix_input, check_mixer_input
from mixology.registry import mutant

MIX, UNMIX, MIXER = "token_mix", "token_unmix", "token_mixer"


# --- token_mix ---------------------------------------------------------------------------

@mutant(MIX)
def permute_back(x, num_heads):
    """Split heads, permute, flatten, unflatten, permute back: the identity (seed design bug)."""
    check_mix_input(x, num_heads)
    B, T, D = x.shape
    h = rearrange(x, "b t (h d) -> b h t d", h=num_heads).reshape(B, num_heads * T, -1)
    return rearrange(h.reshape(B, num_heads, T, -1), "b h t d -> b t (h d)")


@mutant(MIX)
def interleaved_heads(x, num_heads):
    """Heads split as '(d h)' (strided) instead of '(h d)' (contiguous)."""
    B, T, D, _ = check_mix_input(x, num_heads)
    return rearrange(x, "b t (d h) -> b (h t d)", h=num_heads).reshape(B, T, D)


@mutant(MIX)
def head_dim_before_tokens(x, num_heads):
    """Head-major with the head's features before the tokens: '(h d t)' not '(h t d)'."""
    B, T, D, _ = check_mix_input(x, num_heads)
    return rearrange(x, "b t (h d) -> b (h d t)", h=num_heads).reshape(B, T, D)


@mutant(MIX)
def batch_folded_into_tokens(x, num_heads):
    """Forgets the batch dim: heads of all batch elements are laid out together."""
    B, T, D, _ = check_mix_input(x, num_heads)
    return rearrange(x, "b t (h d) -> (h b t d)", h=num_heads).reshape(B, T, D)


@mutant(MIX)
def squeezes_singletons(x, num_heads):
    """Calls .squeeze() on the result: drops the token dim when T == 1 (and batch when B == 1)."""
    return ref.token_mix(x, num_heads).squeeze()


@mutant(MIX)
def missing_final_reshape(x, num_heads):
    """Returns the (B, H, T, d) head-major tensor without cutting it back into tokens."""
    check_mix_input(x, num_heads)
    return rearrange(x, "b t (h d) -> b h t d", h=num_heads)


@mutant(MIX)
def one_hot_matmul(x, num_heads):
    """Applies the permutation as a matmul with a 0/1 matrix: NaN/Inf spread, -0.0 becomes 0."""
    B, T, D, _ = check_mix_input(x, num_heads)
    n = T * D
    idx = torch.arange(n, device=x.device, dtype=torch.float64).view(1, T, D)
    src = ref.token_mix(idx, num_heads).reshape(-1).long()
    P = torch.zeros(n, n, dtype=x.dtype, device=x.device)
    P[torch.arange(n, device=x.device), src] = 1
    return (x.reshape(B, n) @ P.T).reshape(B, T, D)


@mutant(MIX)
def staged_through_fp16(x, num_heads):
    """Moves data as float16 to save bandwidth, then casts back: rounds float32/64 and bf16."""
    return ref.token_mix(x.to(torch.float16), num_heads).to(x.dtype)


class _HandWrittenBackward(torch.autograd.Function):
    """forward = fwd(x, num_heads); backward = bwd(grad, num_heads): a hand-written backward."""

    @staticmethod
    def forward(ctx, x, num_heads, fwd, bwd):
        ctx.num_heads, ctx.bwd = num_heads, bwd
        return fwd(x, num_heads)

    @staticmethod
    def backward(ctx, grad):
        return ctx.bwd(grad, ctx.num_heads), None, None, None


@mutant(MIX)
def backward_applies_mix(x, num_heads):
    """A custom backward that applies the forward permutation instead of its inverse."""
    check_mix_input(x, num_heads)
    return _HandWrittenBackward.apply(x, num_heads, ref.token_mix, ref.token_mix)


@mutant(MIX)
def no_input_checks(x, num_heads):
    """Skips validation: integer tensors pass, bad shapes fail deep inside einops."""
    B, T, D = x.shape
    return rearrange(x, "b t (h d) -> b (h t d)", h=num_heads).reshape(B, T, D)


# --- token_unmix -------------------------------------------------------------------------

@mutant(UNMIX)
def unmix_is_mix(y, num_heads):
    """Uses the forward permutation as its own inverse (true only when H == T)."""
    check_mix_input(y, num_heads, name="y")
    return ref.token_mix(y, num_heads)


@mutant(UNMIX)
def unmix_forgets_head_split(y, num_heads):
    """Unflattens '(t h d)' instead of '(h t d)': the identity."""
    B, T, D, _ = check_mix_input(y, num_heads, name="y")
    return rearrange(y.reshape(B, T * D), "b (t h d) -> b t (h d)", h=num_heads, t=T)


@mutant(UNMIX)
def unmix_backward_applies_unmix(y, num_heads):
    """A custom backward that applies unmix again instead of mix."""
    check_mix_input(y, num_heads, name="y")
    return _HandWrittenBackward.apply(y, num_heads, ref.token_unmix, ref.token_unmix)


@mutant(UNMIX)
def unmix_squeezes_singletons(y, num_heads):
    """Calls .squeeze() on the result: wrong shape when T == 1 or B == 1."""
    return ref.token_unmix(y, num_heads).squeeze()


@mutant(UNMIX)
def unmix_no_input_checks(y, num_heads):
    """Skips validation: integer tensors pass, bad shapes fail deep inside einops."""
    B, T, D = y.shape
    return rearrange(y.reshape(B, -1), "b (h t d) -> b t (h d)", h=num_heads, t=T)


# --- token_mixer -------------------------------------------------------------------------

@mutant(MIXER)
def mixer_permute_back(x, num_heads, weight, bias, eps=1e-5):
    """The seed design's block: LayerNorm(x + identity(x)) = LayerNorm(2x), nothing mixed."""
    check_mixer_input(x, num_heads, weight, bias, eps)
    return F.layer_norm(x + permute_back(x, num_heads), (x.shape[-1],), weight, bias, eps)


@mutant(MIXER)
def missing_residual(x, num_heads, weight, bias, eps=1e-5):
    """LayerNorm(token_mix(x)): the residual connection is dropped."""
    check_mixer_input(x, num_heads, weight, bias, eps)
    return F.layer_norm(ref.token_mix(x, num_heads), (x.shape[-1],), weight, bias, eps)


@mutant(MIXER)
def returns_float32(x, num_heads, weight, bias, eps=1e-5):
    """Normalizes in float32 and forgets to cast back: fp16/bf16 inputs get a float32 output."""
    check_mixer_input(x, num_heads, weight, bias, eps)
    z = (x + ref.token_mix(x, num_heads)).float()
    return F.layer_norm(z, (x.shape[-1],), weight.float(), bias.float(), eps)


@mutant(MIXER)
def unchecked_layer_norm_params(x, num_heads, weight, bias, eps=1e-5):
    """Checks x but not weight/bias/eps: bad parameters crash inside F.layer_norm."""
    check_mix_input(x, num_heads)
    return F.layer_norm(x + ref.token_mix(x, num_heads), (x.shape[-1],), weight, bias, eps)


def _layer_norm(z, weight, bias, eps, *, unbiased=False, eps_outside=False):
    zf = z.float() if z.dtype in (torch.float16, torch.bfloat16) else z
    mean = zf.mean(-1, keepdim=True)
    sq = ((zf - mean) ** 2).sum(-1, keepdim=True)
    var = sq / (z.shape[-1] - 1) if unbiased else sq / z.shape[-1]
    denom = var.sqrt() + eps if eps_outside else (var + eps).sqrt()
    return ((zf - mean) / denom * weight + bias).to(z.dtype)


@mutant(MIXER)
def unbiased_variance(x, num_heads, weight, bias, eps=1e-5):
    """LayerNorm with the unbiased (N-1) variance."""
    check_mixer_input(x, num_heads, weight, bias, eps)
    return _layer_norm(x + ref.token_mix(x, num_heads), weight, bias, eps, unbiased=True)


@mutant(MIXER)
def eps_outside_sqrt(x, num_heads, weight, bias, eps=1e-5):
    """LayerNorm dividing by sqrt(var) + eps instead of sqrt(var + eps)."""
    check_mixer_input(x, num_heads, weight, bias, eps)
    return _layer_norm(x + ref.token_mix(x, num_heads), weight, bias, eps, eps_outside=True)


@mutant(MIXER)
def detached_mixing_branch(x, num_heads, weight, bias, eps=1e-5):
    """Gradient flows through the residual only: the mixed branch is detached."""
    check_mixer_input(x, num_heads, weight, bias, eps)
    z = x + ref.token_mix(x, num_heads).detach()
    return F.layer_norm(z, (x.shape[-1],), weight, bias, eps)


@mutant(MIXER)
def bias_before_scale(x, num_heads, weight, bias, eps=1e-5):
    """Affine applied as (xhat + bias) * weight."""
    check_mixer_input(x, num_heads, weight, bias, eps)
    z = x + ref.token_mix(x, num_heads)
    return (F.layer_norm(z, (x.shape[-1],), None, None, eps) + bias) * weight


@mutant(MIXER, needs="triton")
def triton_mask_drops_last_column(x, num_heads, weight, bias, eps=1e-5):
    """Fused Triton kernel whose column mask is `cols < D - 1`: last column never written."""
    # triton is optional: loaded where a kernel runs
    from mixology.ops._kernels.triton_utils import row_tile
    from mixology.ops.token_mix.triton_fused import forward_launch

    check_mixer_input(x, num_heads, weight, bias, eps)
    B, T, D = x.shape
    grid = ((B * T + row_tile(D)[0] - 1) // row_tile(D)[0],)
    return forward_launch(x, weight, bias, eps, num_heads, grid=grid, n_cols=D - 1)[0]


@mutant(MIXER, needs="triton")
def triton_block_never_written(x, num_heads, weight, bias, eps=1e-5):
    """Fused Triton kernel launched with grid (B*T) // BLOCK_ROWS: the last row block is lost."""
    # triton is optional: loaded where a kernel runs
    from mixology.ops._kernels.triton_utils import row_tile
    from mixology.ops.token_mix.triton_fused import forward_launch

    check_mixer_input(x, num_heads, weight, bias, eps)
    B, T, D = x.shape
    return forward_launch(x, weight, bias, eps, num_heads,
                          grid=((B * T) // row_tile(D)[0],), n_cols=D)[0]


# --- kernel scale: only show past one tile ----------------------------------------------

@mutant(MIX, needs="triton")
def triton_permute_tail_tile_unwritten(x, num_heads):
    """The Triton permute launched on n // block programs per grid axis: the last partial tile of
    rows and of columns is never written."""
    # triton is optional: loaded where a kernel runs
    from mixology.ops.token_mix import triton_permute

    with floor_grid(triton_permute):
        return triton_permute.token_mix(x, num_heads)


@mutant(MIXER, needs="triton")
def triton_mixer_first_tile_only(x, num_heads, weight, bias, eps=1e-5):
    """The fused Triton TokenMixer with BLOCK_D capped at 16: LayerNorm statistics of the first
    16 columns, and the rest of each row never written."""
    # triton is optional: loaded where a kernel runs
    from mixology.ops.token_mix import triton_fused

    with fixed_row_tile(triton_fused):
        return triton_fused.token_mixer(x, num_heads, weight, bias, eps)
