"""The blocks as ``nn.Module``s: ``TokenMixer``, ``FeedForward``, ``RankMixerBlock``, the stacked
``RankMixer`` model, and the MetaFormer-style ``TransformerBlock``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from mixology import registry
from mixology.ops.blocks.reference import rankmixer_shapes, transformer_shapes
from mixology.ops.checks import check_positive_int, check_tensor
from mixology.ops.ffn.checks import check_activation, check_dropout


class TokenMixer(nn.Module):
    """``LayerNorm(x + token_mix(x))`` on ``x: (B, num_tokens, hidden_dim)``.

    ``impl`` names a registered implementation of the ``token_mixer`` op, or is a callable
    with its signature ``(x, num_heads, weight, bias, eps)`` (e.g. a kernel under test).
    """

    def __init__(self, num_tokens: int, hidden_dim: int, num_heads: int, *,
                 impl: str | Callable = "reference", eps: float = 1e-5,
                 device=None, dtype=None):
        super().__init__()
        check_positive_int(num_tokens, "num_tokens")
        check_positive_int(hidden_dim, "hidden_dim")
        check_positive_int(num_heads, "num_heads")
        if hidden_dim % num_heads != 0:
            raise ValueError(f"num_heads={num_heads} must divide hidden_dim={hidden_dim}")
        self.num_tokens, self.hidden_dim, self.num_heads, self.eps = (
            num_tokens, hidden_dim, num_heads, eps)
        self.impl = impl
        self._fn = impl if callable(impl) else registry.get("token_mixer", impl).fn
        self.weight = nn.Parameter(torch.ones(hidden_dim, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(hidden_dim, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x")
        expected = (self.num_tokens, self.hidden_dim)
        if x.ndim != 3 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"x must have shape (B, num_tokens={self.num_tokens}, "
                f"hidden_dim={self.hidden_dim}), got {tuple(x.shape)}"
            )
        return self._fn(x, self.num_heads, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        name = self.impl if isinstance(self.impl, str) else getattr(self.impl, "__name__", "?")
        return (f"num_tokens={self.num_tokens}, hidden_dim={self.hidden_dim}, "
                f"num_heads={self.num_heads}, impl={name!r}")


def _block_fn(op: str, impl: str | Callable) -> Callable:
    return impl if callable(impl) else registry.get(op, impl).fn


def _init_params(shapes: dict, device, dtype) -> nn.ParameterDict:
    """Norm weights 1, biases 0, matrices N(0, 1/fan_in) (fan_in: the second-to-last dim)."""
    params = {}
    for name, (shape, _) in shapes.items():
        if name.endswith("_weight"):
            t = torch.ones(shape, device=device, dtype=dtype)
        elif len(shape) >= 2:
            t = torch.randn(shape, device=device, dtype=dtype) / shape[-2] ** 0.5
        else:
            t = torch.zeros(shape, device=device, dtype=dtype)
        params[name] = nn.Parameter(t)
    return nn.ParameterDict(params)


class FeedForward(nn.Module):
    """``act(x W1 + b1) W2 + b2`` on ``x: (B, T, d_model)``, hidden width ``ff``, with hidden
    dropout ``p = dropout`` while training (none in eval mode). Each training call draws the
    op's ``seed`` from torch's global generator, so ``torch.manual_seed`` replays it. ``impl``
    names a registered implementation of ``feed_forward`` or is a callable with its signature."""

    def __init__(self, d_model: int, ff: int, *, activation: str = "gelu", dropout: float = 0.0,
                 impl: str | Callable = "reference", device=None, dtype=None):
        super().__init__()
        check_positive_int(d_model, "d_model")
        check_positive_int(ff, "ff")
        self.activation, self.dropout = check_activation(activation), check_dropout(dropout, None)
        self.impl, self._fn = impl, _block_fn("feed_forward", impl)
        self.params = _init_params({"w1": ((d_model, ff), None), "b1": ((ff,), None),
                                    "w2": ((ff, d_model), None), "b2": ((d_model,), None)},
                                   device, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.dropout if self.training else 0.0
        seed = int(torch.randint(2**62, ())) if p > 0 else None
        w = self.params
        return self._fn(x, w["w1"], w["b1"], w["w2"], w["b2"], self.activation, p, seed)

    def extra_repr(self) -> str:
        return f"activation={self.activation!r}, dropout={self.dropout}"


class TransformerBlock(nn.Module):
    """A MetaFormer-style block on ``x: (B, T, d_model)``: a token-mixing branch (any mixer the
    ``transformer_block`` op knows) and an FFN branch, wired ``residual`` = pre / post /
    sandwich with ``norm`` = layer / rms / none and ``activation`` = relu / gelu / swish /
    swiglu / bilinear / none (attention-only), ``positional`` = none / rope / alibi,
    ``feature_map`` = none / elu / relu (linear attention's φ on q and k). ``impl``
    names a registered implementation of ``transformer_block`` or is a callable with its
    signature."""

    def __init__(self, d_model: int, num_heads: int, ff: int, *,
                 mixer: str = "softmax_attention", causal: bool = False,
                 residual: str = "pre", norm: str = "layer", activation: str = "gelu",
                 eps: float = 1e-5, positional: str = "none", feature_map: str = "none",
                 impl: str | Callable = "reference",
                 device=None, dtype=None):
        super().__init__()

        for name, v in (("d_model", d_model), ("num_heads", num_heads), ("ff", ff)):
            check_positive_int(v, name)
        self.config = dict(num_heads=num_heads, mixer=mixer, causal=causal, residual=residual,
                           norm=norm, activation=activation, eps=eps, positional=positional,
                           feature_map=feature_map)
        self.impl, self._fn = impl, _block_fn("transformer_block", impl)
        self.params = _init_params(
            transformer_shapes(d_model, ff, mixer, residual, norm, activation), device, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        return self._fn(x, dict(self.params), c["num_heads"], c["mixer"], c["causal"],
                        c["residual"], c["norm"], c["activation"], c["eps"], c["positional"],
                        c["feature_map"])


class RankMixerBlock(nn.Module):
    """RankMixer's block on ``x: (B, num_tokens, d_model)``: S = LayerNorm(x + token_mix(x)),
    then LayerNorm(S + PFFN(S)) with one FFN (d_model -> ff -> d_model) per token."""

    def __init__(self, num_tokens: int, d_model: int, num_heads: int, ff: int, *,
                 activation: str = "gelu", eps: float = 1e-5, impl: str | Callable = "reference",
                 device=None, dtype=None):
        super().__init__()

        for name, v in (("num_tokens", num_tokens), ("d_model", d_model),
                        ("num_heads", num_heads), ("ff", ff)):
            check_positive_int(v, name)
        self.num_heads, self.activation, self.eps = num_heads, activation, eps
        self.impl, self._fn = impl, _block_fn("rankmixer_block", impl)
        self.params = _init_params(rankmixer_shapes(num_tokens, d_model, ff), device, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fn(x, dict(self.params), self.num_heads, self.activation, self.eps)


class RankMixer(nn.Module):
    """A stacked RankMixer: each of the T feature fields has its own embedding table
    (``vocab_sizes[t]`` rows of d_model), and ``num_layers`` RankMixer blocks mix the T
    field tokens. ``forward(ids: (B, T) int64) -> (B, T, d_model)``."""

    def __init__(self, vocab_sizes: list[int], d_model: int, num_layers: int, num_heads: int,
                 ff: int, **block_kw):
        super().__init__()
        check_positive_int(num_layers, "num_layers")
        for t, v in enumerate(vocab_sizes):
            check_positive_int(v, f"vocab_sizes[{t}]")
        kw = {k: block_kw[k] for k in ("device", "dtype") if k in block_kw}
        self.embeddings = nn.ModuleList(nn.Embedding(v, d_model, **kw) for v in vocab_sizes)
        self.blocks = nn.ModuleList(
            RankMixerBlock(len(vocab_sizes), d_model, num_heads, ff, **block_kw)
            for _ in range(num_layers))

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        if not isinstance(ids, torch.Tensor) or ids.dtype != torch.int64:
            raise TypeError(f"ids must be an int64 tensor, got {getattr(ids, 'dtype', type(ids))}")
        if ids.ndim != 2 or ids.shape[1] != len(self.embeddings):
            raise ValueError(f"ids must have shape (B, T={len(self.embeddings)}), "
                             f"got {tuple(ids.shape)}")
        return torch.stack([e(ids[:, t]) for t, e in enumerate(self.embeddings)], dim=1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x)
        return x
