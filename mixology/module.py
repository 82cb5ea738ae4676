"""``TokenMixer``: the RankMixer token-mixing block as an ``nn.Module``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from mixology import registry
from mixology.validate import check_positive_int, check_tensor


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
