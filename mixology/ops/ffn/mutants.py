"""Plausible buggy channel mixers. The spec must reject every one of them."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mixology.ops._kernels.launch_mutants import floor_grid
from mixology.ops.ffn import reference as ref
from mixology.ops.ffn.checks import check_activation, check_dropout, check_ffn_input, check_pffn_input
from mixology.registry import mutant


def _drop(h, p, seed):
    return h * ref.dropout_mask(h.shape, p, seed, h.dtype, h.device) if p else h


def _ffn(x, w1, b1, w2, b2, activation, dropout=0.0, seed=None, *, act=None, skip_bias=False,
         tokens_mixed=False, drop=_drop):
    """The reference written out, with the knobs the mutants turn; ``drop(h, p, seed)``."""
    check_ffn_input(x, {"w1": w1, "w2": w2}, (("b1", b1, "F"), ("b2", b2, "D")))
    check_activation(activation)
    p = check_dropout(dropout, seed)
    h = (act or ref.ACT[activation])(x @ w1 + b1)
    y = (h if drop is None else drop(h, p, seed)) @ w2 + (0 if skip_bias else b2)
    if tokens_mixed:  # a "mean over tokens" residual that leaks across tokens
        y = y + 0.5 * x.mean(dim=1, keepdim=True)
    return y


@mutant("feed_forward")
def ffn_missing_activation(x, w1, b1, w2, b2, activation="gelu", dropout=0.0, seed=None):
    """No nonlinearity: a linear layer."""
    return _ffn(x, w1, b1, w2, b2, activation, dropout, seed, act=lambda h: h)


@mutant("feed_forward")
def ffn_gelu_tanh_approximation(x, w1, b1, w2, b2, activation="gelu", dropout=0.0, seed=None):
    """GELU by its tanh approximation where exact (erf) GELU is specified."""
    act = (lambda h: F.gelu(h, approximate="tanh")) if activation == "gelu" else None
    return _ffn(x, w1, b1, w2, b2, activation, dropout, seed, act=act)


@mutant("feed_forward")
def ffn_output_bias_dropped(x, w1, b1, w2, b2, activation="gelu", dropout=0.0, seed=None):
    """Forgets b2."""
    return _ffn(x, w1, b1, w2, b2, activation, dropout, seed, skip_bias=True)


@mutant("feed_forward")
def ffn_leaks_across_tokens(x, w1, b1, w2, b2, activation="gelu", dropout=0.0, seed=None):
    """Adds half the mean over tokens: token t's output depends on other tokens."""
    return _ffn(x, w1, b1, w2, b2, activation, dropout, seed, tokens_mixed=True)


@mutant("feed_forward")
def ffn_unchecked(x, w1, b1, w2, b2, activation="gelu", dropout=0.0, seed=None):
    """No input checks: an unknown activation raises KeyError, bad shapes fail in matmul,
    dropout=1 divides by zero."""
    h = ref.ACT[activation](x @ w1 + b1)
    return _drop(h, dropout, seed) @ w2 + b2


# --- feed_forward's dropout ----------------------------------------------------------------
@mutant("feed_forward")
def ffn_dropout_not_rescaled(x, w1, b1, w2, b2, activation="gelu", dropout=0.0, seed=None):
    """Drops units but forgets the 1/(1 - p) on the kept ones."""
    return _ffn(x, w1, b1, w2, b2, activation, dropout, seed,
                drop=lambda h, p, s: h * (_drop(torch.ones_like(h), p, s) != 0))


@mutant("feed_forward")
def ffn_dropout_keeps_with_probability_p(x, w1, b1, w2, b2, activation="gelu", dropout=0.0,
                                         seed=None):
    """p read as the keep probability: keeps where rand < p, scaled by 1/p (p = 0 drops all)."""
    def drop(h, p, s):
        gen = None if s is None else torch.Generator(device=h.device).manual_seed(s)
        keep = torch.rand(h.shape, generator=gen, device=h.device) < p
        return h * keep.to(h.dtype) / max(p, 1e-3)

    return _ffn(x, w1, b1, w2, b2, activation, dropout, seed, drop=drop)


@mutant("feed_forward")
def ffn_dropout_mask_shared_across_tokens(x, w1, b1, w2, b2, activation="gelu", dropout=0.0,
                                          seed=None):
    """One mask of shape (B, 1, F) broadcast over the tokens."""
    return _ffn(x, w1, b1, w2, b2, activation, dropout, seed,
                drop=lambda h, p, s: h * _drop(h.new_ones(h.shape[0], 1, h.shape[2]), p, s))


@mutant("feed_forward")
def ffn_dropout_on_output(x, w1, b1, w2, b2, activation="gelu", dropout=0.0, seed=None):
    """Dropout on the output (bias included) instead of on the hidden units."""
    y = _ffn(x, w1, b1, w2, b2, activation, dropout, seed, drop=None)
    return _drop(y, dropout, seed)


class _FreshMaskInBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, p, seed):
        ctx.p, ctx.seed = p, seed
        return _drop(h, p, seed)

    @staticmethod
    def backward(ctx, g):  # a recomputed mask from the wrong offset
        return _drop(g, ctx.p, ctx.seed + 1), None, None


@mutant("feed_forward")
def ffn_dropout_fresh_mask_in_backward(x, w1, b1, w2, b2, activation="gelu", dropout=0.0,
                                       seed=None):
    """The backward recomputes the mask from the next seed: gradients through other units."""
    return _ffn(x, w1, b1, w2, b2, activation, dropout, seed,
                drop=lambda h, p, s: _FreshMaskInBackward.apply(h, p, s) if p else h)


@mutant("swiglu")
def swiglu_gate_up_swapped(x, w_gate, w_up, w_down):
    """silu applied to the up projection instead of the gate."""
    return ref.swiglu(x, w_up, w_gate, w_down)


@mutant("swiglu")
def swiglu_missing_activation(x, w_gate, w_up, w_down):
    """No silu: the bilinear layer."""
    return ref.bilinear(x, w_gate, w_up, w_down)


@mutant("swiglu")
def swiglu_sigmoid_gate(x, w_gate, w_up, w_down):
    """sigmoid(a) ⊙ b (GLU) instead of silu(a) ⊙ b."""
    check_ffn_input(x, {"w_gate": w_gate, "w_up": w_up, "w_down": w_down})
    return (torch.sigmoid(x @ w_gate) * (x @ w_up)) @ w_down


@mutant("swiglu")
def swiglu_unchecked(x, w_gate, w_up, w_down):
    """No input checks."""
    return (F.silu(x @ w_gate) * (x @ w_up)) @ w_down


@mutant("swiglu")
def swiglu_returns_hidden(x, w_gate, w_up, w_down):
    """Forgets the down projection when F == D (returns the hidden units)."""
    check_ffn_input(x, {"w_gate": w_gate, "w_up": w_up, "w_down": w_down})
    h = F.silu(x @ w_gate) * (x @ w_up)
    return h if h.shape[-1] == x.shape[-1] else h @ w_down


@mutant("bilinear")
def bilinear_with_activation(x, w1, w2, w_out):
    """A GELU slipped onto the first projection."""
    check_ffn_input(x, {"w1": w1, "w2": w2, "w_out": w_out})
    return (F.gelu(x @ w1) * (x @ w2)) @ w_out


@mutant("bilinear")
def bilinear_sum_not_product(x, w1, w2, w_out):
    """x W1 + x W2 instead of x W1 ⊙ x W2."""
    check_ffn_input(x, {"w1": w1, "w2": w2, "w_out": w_out})
    return (x @ w1 + x @ w2) @ w_out


@mutant("bilinear")
def bilinear_squared_first(x, w1, w2, w_out):
    """(x W1)² instead of x W1 ⊙ x W2: ignores W2."""
    check_ffn_input(x, {"w1": w1, "w2": w2, "w_out": w_out})
    return ((x @ w1) ** 2) @ w_out


@mutant("bilinear")
def bilinear_unchecked(x, w1, w2, w_out):
    """No input checks."""
    return ((x @ w1) * (x @ w2)) @ w_out


@mutant("bilinear")
def bilinear_fp32_output(x, w1, w2, w_out):
    """Computes in float32 and returns float32 for low-precision inputs."""
    check_ffn_input(x, {"w1": w1, "w2": w2, "w_out": w_out})
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    x, w1, w2, w_out = (t.to(acc) for t in (x, w1, w2, w_out))
    return ((x @ w1) * (x @ w2)) @ w_out


@mutant("feed_forward")
def ffn_squeezes_singletons(x, w1, b1, w2, b2, activation="gelu", dropout=0.0, seed=None):
    """Calls .squeeze() on the result: the wrong shape when B, T or D is 1."""
    return ref.feed_forward(x, w1, b1, w2, b2, activation, dropout, seed).squeeze()


@mutant("bilinear")
def bilinear_adds_residual(x, w1, w2, w_out):
    """Adds x inside the layer (a residual the block adds again)."""
    return ref.bilinear(x, w1, w2, w_out) + x


@mutant("swiglu")
def swiglu_returns_float32(x, w_gate, w_up, w_down):
    """Computes in float32 and returns float32 for low-precision inputs."""
    check_ffn_input(x, {"w_gate": w_gate, "w_up": w_up, "w_down": w_down})
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    x, w_gate, w_up, w_down = (t.to(acc) for t in (x, w_gate, w_up, w_down))
    return (F.silu(x @ w_gate) * (x @ w_up)) @ w_down


# --- the per-token FFN -------------------------------------------------------------------

def _pffn(x, w1, b1, w2, b2, activation, *, pick=None, act=None, hidden_leak=False):
    """The per-token FFN by bmm; ``pick(w)`` chooses which token's weights each token gets."""
    check_pffn_input(x, w1, b1, w2, b2)
    check_activation(activation)
    if pick is not None:
        w1, b1, w2, b2 = (pick(w) for w in (w1, b1, w2, b2))
    h = torch.baddbmm(b1.unsqueeze(1), x.transpose(0, 1), w1)
    if hidden_leak:  # a norm-like centring over the wrong axis (tokens)
        h = h - 0.25 * h.mean(dim=0, keepdim=True)
    h = (act or ref.ACT[activation])(h)
    return torch.baddbmm(b2.unsqueeze(1), h, w2).transpose(0, 1)


@mutant("per_token_ffn")
def pffn_weights_shared_across_tokens(x, w1, b1, w2, b2, activation="gelu"):
    """Every token uses token 0's weights: a plain (shared) FFN."""
    return _pffn(x, w1, b1, w2, b2, activation, pick=lambda w: w[:1].expand_as(w))


@mutant("per_token_ffn")
def pffn_weights_in_reverse_token_order(x, w1, b1, w2, b2, activation="gelu"):
    """Token t uses the weights of token T-1-t (an index flipped)."""
    return _pffn(x, w1, b1, w2, b2, activation, pick=lambda w: w.flip(0))


@mutant("per_token_ffn")
def pffn_hidden_centred_over_tokens(x, w1, b1, w2, b2, activation="gelu"):
    """Subtracts a quarter of the hidden mean over tokens: token t sees the other tokens."""
    return _pffn(x, w1, b1, w2, b2, activation, hidden_leak=True)


@mutant("per_token_ffn")
def pffn_missing_activation(x, w1, b1, w2, b2, activation="gelu"):
    """No nonlinearity between the two per-token matmuls."""
    return _pffn(x, w1, b1, w2, b2, activation, act=lambda h: h)


@mutant("per_token_ffn")
def pffn_input_bias_of_token_zero(x, w1, b1, w2, b2, activation="gelu"):
    """b1 of token 0 for every token (a bias broadcast from the wrong row)."""
    return _pffn(x, w1, b1[:1].expand_as(b1), w2, b2, activation)


@mutant("per_token_ffn")
def pffn_fp32_output(x, w1, b1, w2, b2, activation="gelu"):
    """Computes in float32 and returns float32 for low-precision inputs."""
    if x.dtype in (torch.float16, torch.bfloat16):
        x, w1, b1, w2, b2 = (t.float() for t in (x, w1, b1, w2, b2))
    return _pffn(x, w1, b1, w2, b2, activation)


class _SharedBiasGrad(torch.autograd.Function):
    """Identity on b2 forward; backward gives every token the gradient summed over tokens."""

    @staticmethod
    def forward(ctx, b2):
        return b2.view_as(b2)

    @staticmethod
    def backward(ctx, g):
        return g.sum(0, keepdim=True).expand_as(g)


@mutant("per_token_ffn")
def pffn_output_bias_grad_summed_over_tokens(x, w1, b1, w2, b2, activation="gelu"):
    """A hand-written backward that reduces db2 over tokens too, as for a shared bias."""
    check_pffn_input(x, w1, b1, w2, b2)
    return _pffn(x, w1, b1, w2, _SharedBiasGrad.apply(b2), activation)


@mutant("per_token_ffn")
def pffn_unchecked(x, w1, b1, w2, b2, activation="gelu"):
    """No input checks: bad shapes fail (or broadcast) inside einsum."""
    h = ref.ACT[activation](torch.einsum("btd,tdf->btf", x, w1) + b1)
    return torch.einsum("btf,tfd->btd", h, w2) + b2


@mutant("feed_forward", needs="triton")
def triton_ffn_backward_forgets_mask(x, w1, b1, w2, b2, activation="gelu", dropout=0.0,
                                     seed=None):
    """The fused kernel's backward runs without the dropout mask (it was not saved): gradients
    reach dropped units, unscaled."""
    # triton is optional: loaded where a kernel runs
    from mixology.ops.ffn import triton_ffn as tf

    class Function(tf._BiasActDrop):
        @staticmethod
        def backward(ctx, g):
            a, b1_, _ = ctx.saved_tensors
            dz = torch.empty_like(a)
            tf._launch(tf._act_bwd_kernel, a, b1_, None, g.contiguous(), dz, act=ctx.act)
            return dz, dz.sum(dim=(0, 1)), None, None

    mask = ref.feed_forward_mask(x, w1, b1, w2, b2, activation, dropout, seed)
    return Function.apply(x @ w1, b1, mask, activation) @ w2 + b2


# --- kernel scale: only show past one block of 1024 hidden units -------------------------

@mutant("feed_forward", needs="triton")
def triton_ffn_tail_block_unwritten(x, w1, b1, w2, b2, activation="gelu", dropout=0.0,
                                    seed=None):
    """The fused bias + activation kernel launched on n // BLOCK programs: the hidden units of
    the last, partial block of 1024 are never written."""
    # triton is optional: loaded where a kernel runs
    from mixology.ops.ffn import triton_ffn

    with floor_grid(triton_ffn):
        return triton_ffn.feed_forward(x, w1, b1, w2, b2, activation, dropout, seed)


@mutant("swiglu", needs="triton")
def triton_swiglu_tail_block_unwritten(x, w_gate, w_up, w_down):
    """The fused SwiGLU gate launched on n // BLOCK programs: the last partial block unwritten."""
    # triton is optional: loaded where a kernel runs
    from mixology.ops.ffn import triton_gated

    with floor_grid(triton_gated):
        return triton_gated.swiglu(x, w_gate, w_up, w_down)


@mutant("bilinear", needs="triton")
def triton_bilinear_tail_block_unwritten(x, w1, w2, w_out):
    """The fused bilinear gate launched on n // BLOCK programs: the last partial block unwritten."""
    # triton is optional: loaded where a kernel runs
    from mixology.ops.ffn import triton_gated

    with floor_grid(triton_gated):
        return triton_gated.bilinear(x, w1, w2, w_out)
