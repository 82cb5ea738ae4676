"""Channel mixers in einops, applied to every token of x: (B, T, D) alike.

- feed_forward: act(x W1 + b1) W2 + b2, act in relu / gelu (exact erf) / silu;
- swiglu (Shazeer 2020): (silu(x W_gate) ⊙ x W_up) W_down, no biases;
- bilinear: (x W1 ⊙ x W2) W_out, no activation (a gated unit without the gate's nonlinearity);
- per_token_ffn (RankMixer's PFFN, arXiv 2507.15551): token t has its own FFN,
  act(x_t W1[t] + b1[t]) W2[t] + b2[t], weights stacked as W1 (T, D, F), W2 (T, F, D).
Weights are (in, out): W1 (D, F), W2 (F, D). Matmuls run in x's dtype, as torch's do.
"""

from __future__ import annotations

import torch.nn.functional as F
from einops import einsum

from mixology.validate import check_activation, check_ffn_input, check_pffn_input

ACT = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu}


def _linear(x, w, b=None):
    y = einsum(x, w, "b t i, i o -> b t o")
    return y if b is None else y + b


def feed_forward(x, w1, b1, w2, b2, activation="gelu"):
    check_ffn_input(x, {"w1": w1, "w2": w2}, (("b1", b1, "F"), ("b2", b2, "D")))
    check_activation(activation)
    return _linear(ACT[activation](_linear(x, w1, b1)), w2, b2)


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
