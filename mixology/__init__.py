"""mixology: property-based verification of token mixers and transformer building blocks."""

from __future__ import annotations

import mixology.ops  # noqa: F401  (each op family registers itself on import)
from mixology import registry
from mixology.nn import FeedForward, RankMixer, RankMixerBlock, TokenMixer, TransformerBlock

# mixology.ops() lists the op names; the ops' code is imported as `from mixology.ops import ...`
from mixology.registry import implementations, ops  # noqa: E402
from mixology.verify.api import Report, check

__all__ = ["FeedForward", "RankMixer", "RankMixerBlock", "Report", "TokenMixer", "TransformerBlock",
           "check", "implementations", "ops", "token_mix", "token_mixer", "token_unmix"]
__version__ = "0.1.0"


def token_mix(x, num_heads, *, impl: str = "reference"):
    """RankMixer token mixing of ``x: (B, T, D)`` with ``num_heads`` heads."""
    return registry.get("token_mix", impl).fn(x, num_heads)


def token_unmix(y, num_heads, *, impl: str = "reference"):
    """Inverse of :func:`token_mix`."""
    return registry.get("token_unmix", impl).fn(y, num_heads)


def token_mixer(x, num_heads, weight, bias, eps: float = 1e-5, *, impl: str = "reference"):
    """Functional TokenMixer block ``LayerNorm(x + token_mix(x))``."""
    return registry.get("token_mixer", impl).fn(x, num_heads, weight, bias, eps)
