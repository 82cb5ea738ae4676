"""Channel mixers in einops, applied to every token of x: (B, T, D) alike.

- feed_forward: act(x W1 + b1) W2 + b2, act in relu / gelu (exact erf) / silu; with
  ``dropout=p`` each hidden unit of each token is kept with probability 1 - p and scaled by
  1/(1 - p) (inverted dropout), the mask drawn by ``dropout_mask`` from ``seed``;
- swiglu (Shazeer 2020): (silu(x W_gate) ⊙ x W_up) W_down, no biases;
- bilinear: (x W1 ⊙ x W2) W_out, no activation (a gated unit without the gate's nonlinearity);
- per_token_ffn (RankMixer's PFFN, arXiv 2507.15551): token t has its own FFN,
  act(x_t W1[t] + b1[t]) W2[t] + b2[t], weights stacked as W1 (T, D, F), W2 (T, F, D).
Weights are (in, out): W1 (D, F), W2 (F, D). Matmuls run in x's dtype, as torch's do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import einsum

from mixology.ops.ffn.checks import check_activation, check_dropout, check_ffn_input, check_pffn_input

ACT = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu}


def _linear(x, w, b=None):
    y = einsum(x, w, "b t i, i o -> b t o")
    return y if b is None else y + b


def dropout_mask(shape, p: float, seed: int | None, dtype, device) -> torch.Tensor:
    """The op's dropout mask: 0 where a unit is dropped, 1/(1 - p) where kept (rounded to
    ``dtype``); unit i is kept where the i-th draw of ``torch.rand`` from a generator seeded
    with ``seed`` (torch's global one if None) on ``device`` is >= p. Every implementation draws
    its mask here, so one seed gives one mask; only ``feed_dropout_matches_reference`` needs that,
    the other dropout properties hold for any random source."""
    gen = None if seed is None else torch.Generator(device=device).manual_seed(seed)
    keep = torch.rand(shape, generator=gen, device=device) >= p
    return keep.to(dtype) / (1 - p)


def _feed_forward(x, w1, b1, w2, b2, activation, mask=None):
    h = ACT[activation](_linear(x, w1, b1))
    return _linear(h if mask is None else h * mask, w2, b2)


def feed_forward_mask(x, w1, b1, w2, b2, activation, dropout, seed) -> torch.Tensor | None:
    """Check every input of ``feed_forward`` and draw its dropout mask (None at p = 0): what
    each implementation does before its own arithmetic."""
    B, T, _, F_ = check_ffn_input(x, {"w1": w1, "w2": w2}, (("b1", b1, "F"), ("b2", b2, "D")))
    check_activation(activation)
    p = check_dropout(dropout, seed)
    return dropout_mask((B, T, F_), p, seed, x.dtype, x.device) if p > 0 else None


def feed_forward(x, w1, b1, w2, b2, activation="gelu", dropout=0.0, seed=None):
    mask = feed_forward_mask(x, w1, b1, w2, b2, activation, dropout, seed)
    return _feed_forward(x, w1, b1, w2, b2, activation, mask)


def swiglu(x, w_gate, w_up, w_down):
    check_ffn_input(x, {"w_gate": w_gate, "w_up": w_up, "w_down": w_down})
    return _linear(F.silu(_linear(x, w_gate)) * _linear(x, w_up), w_down)


def bilinear(x, w1, w2, w_out):
    check_ffn_input(x, {"w1": w1, "w2": w2, "w_out": w_out})
    return _linear(_linear(x, w1) * _linear(x, w2), w_out)


def per_token_ffn(x, w1, b1, w2, b2, activation="gelu"):
    check_pffn_input(x, w1, b1, w2, b2)
    check_activation(activation)
    h = ACT[activation](einsum(x, w1, "b t d, t d f -> b t f") + b1)
    return einsum(h, w2, "b t f, t f d -> b t d") + b2
