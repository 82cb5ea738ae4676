"""What every op family's spec shares: profiles, size tiers, layouts, tensors, cases.

- The hypothesis profile (``ci`` / ``dev`` / ``thorough``) is chosen by ``MIXOLOGY_PROFILE``
  (default ``dev``; tox and CI use ``ci``).
- The size tiers (``small``, ``kernel``) and ``boundary``, the dims around tile boundaries.
- Memory layouts and the tensors made in them, from a seed with torch's generator, in float64,
  then cast.
- Cases are small frozen dataclasses (``@case``) whose ``repr`` is the whole recipe (shape,
  dtype, memory layout, seed), so a shrunk counterexample printed by hypothesis can be rebuilt
  by hand. Each family's cases, strategies and bad inputs live in its own spec file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

PROFILE_ENV = "MIXOLOGY_PROFILE"
_common = dict(
    deadline=None,  # compiling (torch.compile, Triton) makes first examples slow
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.differing_executors],
)
settings.register_profile("ci", max_examples=12, derandomize=True, **_common)
settings.register_profile("dev", max_examples=40, **_common)
settings.register_profile("thorough", max_examples=400, **_common)

PROFILES = ("ci", "dev", "thorough")

# Where cases build their tensors; the runner sets it from ``--device``.
DEVICE = {"name": "cpu"}


def set_device(name: str) -> None:
    DEVICE["name"] = name


# --- sizes: small cases, and kernel-scale cases that cross tiles -------------------------
#
# ``small``: a few elements per dim, where most bugs of logic show and shrink well.
# ``kernel``: dims drawn around tile boundaries (1, primes, 2^k - 1, 2^k, 2^k + 1 up to 4097),
# sequences up to 4096 for the sequence ops (B = H = 1 and a small head dim to keep it cheap),
# many rows (B·T past one program's worth) and magnitudes that stress numerics (rows with
# |mean| >> std, scores past 100 and past the float16 range, long recurrent prefixes).
# ``all``: both, small first. A profile runs its max_examples in the small tier and
# KERNEL_EXAMPLES[profile] in the kernel tier (both divided by the property's and the
# implementation's cost).

SIZES = ("small", "kernel", "all")
SIZES_ENV = "MIXOLOGY_SIZES"
KERNEL_EXAMPLES = {"ci": 2, "dev": 10, "thorough": 50}
# The largest kernel-tier dim per profile: ci's budget stops just past 1024 (a tile of 1024
# crossed), dev and thorough go to 4097. Long-sequence properties draw T from 1021 in every
# tier: to the cap (quadratic and linear attention, whose checks cost T or T²), or to 4096
# whatever the profile (RoPE's and the sinusoids' large positions, which cost little).
KERNEL_CAP = {"ci": 1025, "dev": 4097, "thorough": 4097}
# the tier strategies draw from now, and the rotation of its dtypes; the runner sets them
TIER = {"name": "small", "cap": 4097, "rotation": 0}
# the dtypes the implementation under check supports (a candidate's declaration; None: all),
# for properties that enumerate dtypes inside an example (``other_dtypes``); the runner sets it
DECLARED = {"dtypes": None}
BOUNDARY = tuple(sorted({1, 2, 3, 5, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093}
                        | {2**k + o for k in range(2, 13) for o in (-1, 0, 1)}))


def sizes_name(name: str | None = None) -> str:
    """The tier selection: ``name``, else ``$MIXOLOGY_SIZES``, else ``all``."""
    name = name or os.environ.get(SIZES_ENV) or "all"
    if name not in SIZES:
        raise ValueError(f"sizes {name!r}; expected one of {SIZES}")
    return name


def tiers(name: str | None = None) -> tuple[str, ...]:
    """The tiers a selection runs, in order."""
    name = sizes_name(name)
    return ("small", "kernel") if name == "all" else (name,)


def set_tier(name: str, cap: int = 4097, rotation: int = 0) -> None:
    assert name in ("small", "kernel"), name
    TIER["name"], TIER["cap"], TIER["rotation"] = name, cap, rotation


def dtype_of(dtypes):
    """A dtype of ``dtypes``. In the kernel tier a property gets one or two examples, the first
    its largest case (every draw's first choice): there the choices start at the tier's
    rotation, which the runner sets from the property's place among its op's kernel-tier
    properties, so that between them they reach every dtype (``mixology coverage``)."""
    dtypes = tuple(dtypes)
    if TIER["name"] == "kernel" and len(dtypes) > 1:
        k = TIER["rotation"] % len(dtypes)
        dtypes = dtypes[k:] + dtypes[:k]
    return st.sampled_from(dtypes)


def other_dtypes(dtype) -> list:
    """The float dtypes the implementation under check supports, ``dtype`` first, then the
    others in FLOATS' order after it: a property that enumerates dtypes inside an example
    walks them in turn."""
    allowed = [d for d in FLOATS if DECLARED["dtypes"] is None or d in DECLARED["dtypes"]]
    k = allowed.index(dtype) if dtype in allowed else 0
    return allowed[k:] + allowed[:k]


def kernel_tier() -> bool:
    return TIER["name"] == "kernel"


def boundary(lo: int, hi: int, *, capped: bool = True):
    """A dim around tile boundaries in [lo, min(hi, the profile's cap)] (lo if none fits). The
    largest comes first: hypothesis starts from the first choice of every draw (and shrinks
    toward it), so the first kernel-tier example of every property is its largest case."""
    hi = min(hi, TIER["cap"]) if capped else hi
    choices = [n for n in BOUNDARY if lo <= n <= hi] or [lo]
    return st.sampled_from([choices[-1], *choices[:-1]])


def sized(strategy, kernel: bool):
    """Mark a case strategy as drawing kernel-scale cases in the kernel tier."""
    strategy.kernel_sized = kernel
    return strategy


def profile_name() -> str:
    name = os.environ.get(PROFILE_ENV, "dev")
    if name not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={name!r}; expected one of {PROFILES}")
    return name


def load_profile(name: str | None = None) -> settings:
    name = name or profile_name()
    settings.load_profile(name)
    return settings.get_profile(name)


FLOATS = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
LOW = (torch.float32, torch.float16, torch.bfloat16)
LAYOUTS = ("contiguous", "transposed", "strided", "offset", "expanded")
ATTN_LAYOUTS = ("contiguous", "projected", "strided", "expanded")  # of (B, H, T, d) tensors
SPECIALS = (float("nan"), float("inf"), float("-inf"), -0.0, 0.0, 1e-40)


def make_tensor(shape, dtype, layout: str, gen: torch.Generator, device="cpu", scale=1.0,
                offset=0.0) -> torch.Tensor:
    """A (B, T, D) tensor with the given memory layout and values ~ offset + scale·N(0, 1)."""
    B, T, D = shape

    def randn(*s):
        return (offset + scale * torch.randn(*s, generator=gen, dtype=torch.float64)).to(
            dtype).to(device)

    if layout == "contiguous":
        return randn(B, T, D)
    if layout == "transposed":  # stride (1, B, B*T): no dim is contiguous
        return randn(D, T, B).permute(2, 1, 0)
    if layout == "strided":  # every other feature of a wider buffer
        return randn(B, T, 2 * D)[..., ::2]
    if layout == "offset":  # contiguous strides, non-zero storage offset
        return randn(B * T * D + 3)[3:].view(B, T, D)
    if layout == "expanded":  # batch stride 0: every batch element is the same memory
        return randn(1, T, D).expand(B, T, D)
    raise ValueError(f"unknown layout {layout!r}")


def make_4d(shape, dtype, layout: str, gen: torch.Generator, device="cpu",
            scale=1.0) -> torch.Tensor:
    """A (B, H, T, d) tensor in the given memory layout, values ~ scale·N(0, 1)."""
    B, H, T, d = shape

    def randn(*s):
        return (scale * torch.randn(*s, generator=gen, dtype=torch.float64)).to(dtype).to(device)

    if layout == "contiguous":
        return randn(B, H, T, d)
    if layout == "projected":  # (B, T, H, d) storage, as split from a QKV projection
        return randn(B, T, H, d).transpose(1, 2)
    if layout == "strided":
        return randn(B, H, T, 2 * d)[..., ::2]
    if layout == "expanded":
        return randn(1, H, T, d).expand(B, H, T, d)
    raise ValueError(f"unknown layout {layout!r}")


UPSTREAM_LAYOUTS = ("contiguous", "transposed", "strided", "offset", "expanded")


def relayout(t: torch.Tensor, layout: str) -> torch.Tensor:
    """t's values in another memory layout of its shape: ``contiguous``, ``transposed`` (every
    dim's stride reversed), ``strided`` (every other element of a wider last dim), ``offset``
    (a non-zero storage offset) or ``expanded`` (stride 0 on dim 0: every row is row 0's, so
    the values change; apply it once, before the tensor is used)."""
    if t.dim() == 0 or t.numel() == 0 or layout == "contiguous":
        return t.contiguous()
    if layout == "transposed":
        order = tuple(reversed(range(t.dim())))
        return t.permute(order).contiguous().permute(order)
    if layout == "strided":
        wide = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype, device=t.device)
        wide[..., ::2] = t
        return wide[..., ::2]
    if layout == "offset":
        flat = torch.zeros(t.numel() + 3, dtype=t.dtype, device=t.device)
        flat[3:] = t.reshape(-1)
        return flat[3:].view(t.shape)
    if layout == "expanded":
        return t[:1].contiguous().expand(t.shape)
    raise ValueError(f"unknown layout {layout!r}")


def cast_keeping_layout(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A copy of t, cast to ``dtype``, in t's own memory layout (strides, gaps, storage offset,
    stride-0 dims), where ``t.to(dtype)`` would return a contiguous tensor for most of them."""
    zero = [d for d in range(t.dim()) if t.stride(d) == 0 and t.shape[d] > 1]
    if zero:
        base = t[tuple(slice(0, 1) if d in zero else slice(None) for d in range(t.dim()))]
        return cast_keeping_layout(base, dtype).expand(t.shape)
    size = t.storage_offset() + 1 + sum((n - 1) * st for n, st in zip(t.shape, t.stride(),
                                                                     strict=True) if n)
    out = torch.zeros(size, dtype=dtype, device=t.device).as_strided(
        t.shape, t.stride(), t.storage_offset())
    out.copy_(t)
    return out


def case(cls):
    """A drawn case or a bad input: a frozen dataclass whose ``repr`` is its recipe."""
    return dataclass(frozen=True, repr=False)(cls)


def optional(default):
    """A case field its ``repr`` leaves out while it holds ``default``."""
    return field(default=default, metadata={"optional": True})


class Recipe:
    """``Name(field=value, ...)``: every field with ``repr=True``, but an ``optional`` one only
    when it differs from its default; dtypes print as ``torch.float32``, so the repr rebuilds
    the case."""

    def __repr__(self) -> str:
        shown = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                 if f.repr and not (f.metadata.get("optional")
                                    and getattr(self, f.name) == f.default)]
        return f"{type(self).__name__}({', '.join(shown)})"


class Drawn(Recipe):
    """What every drawn case shares: the device under test and seeded generators."""

    seed: int
    LAYOUTS = LAYOUTS  # the memory layouts its ``layout`` names (not a field)

    @property
    def device(self) -> str:
        return DEVICE["name"]

    def gen(self, salt: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1000003 + salt)

    def randn(self, *shape: int, salt: int) -> torch.Tensor:
        """Float64 N(0, 1) values on the device (an upstream gradient, say)."""
        return torch.randn(*shape, generator=self.gen(salt), dtype=torch.float64).to(self.device)

    @property
    def upstream_layout(self) -> str:
        """The memory layout the comparison with the reference gives the upstream gradient: a
        function of the seed, so part of the case's recipe."""
        return UPSTREAM_LAYOUTS[self.seed % len(UPSTREAM_LAYOUTS)]


class TokensCase(Drawn):
    """x: (B, T, D) in the case's memory layout, and a float64 upstream gradient of its shape;
    subclasses declare B, T, D, dtype and layout."""

    def x(self) -> torch.Tensor:
        return make_tensor((self.B, self.T, self.D), self.dtype, self.layout, self.gen(),
                           self.device)

    def upstream(self) -> torch.Tensor:
        return self.randn(self.B, self.T, self.D, salt=99)


@case
class BadInput(Recipe):
    """A call ``fn(*args)`` that must be refused. The contract (every implementation): a
    ValueError or TypeError naming ``names[0]``, the argument. The registered implementations
    also agree word for word with the reference, which raises ``error`` naming all ``names``
    (tests/spec/test_errors.py)."""

    what: str
    args: tuple = field(repr=False)
    error: type = field(repr=False)
    names: tuple[str, ...] = field(repr=False)
