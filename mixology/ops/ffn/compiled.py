"""``torch.compile`` of the channel-mixer references (inputs checked eagerly)."""

from __future__ import annotations

from mixology.ops._kernels.compiling import compile_reference
from mixology.ops.ffn import reference
from mixology.ops.ffn.checks import check_activation, check_ffn_input, check_pffn_input


def feed_forward(x, w1, b1, w2, b2, activation="gelu", dropout=0.0, seed=None):
    """The dropout mask is drawn eagerly (torch's generator) and enters the graph as a tensor."""
    mask = reference.feed_forward_mask(x, w1, b1, w2, b2, activation, dropout, seed)
    return compile_reference(reference._feed_forward)(x, w1, b1, w2, b2, activation, mask)


def swiglu(x, w_gate, w_up, w_down):
    check_ffn_input(x, {"w_gate": w_gate, "w_up": w_up, "w_down": w_down})
    return compile_reference(reference.swiglu)(x, w_gate, w_up, w_down)


def bilinear(x, w1, w2, w_out):
    check_ffn_input(x, {"w1": w1, "w2": w2, "w_out": w_out})
    return compile_reference(reference.bilinear)(x, w1, w2, w_out)


def per_token_ffn(x, w1, b1, w2, b2, activation="gelu"):
    check_pffn_input(x, w1, b1, w2, b2)
    check_activation(activation)
    return compile_reference(reference.per_token_ffn)(x, w1, b1, w2, b2, activation)
