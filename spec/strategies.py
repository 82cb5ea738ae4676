"""Shared hypothesis strategies and the ``ci`` / ``dev`` / ``thorough`` profiles.

The profile is chosen by ``MIXOLOGY_PROFILE`` (default ``dev``; tox and CI use ``ci``).
Cases are small frozen dataclasses whose ``repr`` is the whole recipe (shape, dtype, memory
layout, seed), so a shrunk counterexample printed by hypothesis can be rebuilt by hand.
Tensors are made from the seed with torch's generator, in float64, then cast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

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
# crossed), dev and thorough go to 4097. Properties about long sequences as such draw their own
# T (long_prefix_cases, large_position_cases), whatever the profile.
KERNEL_CAP = {"ci": 1025, "dev": 4097, "thorough": 4097}
TIER = {"name": "small", "cap": 4097}  # the tier strategies draw from now; the runner sets it
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


def set_tier(name: str, cap: int = 4097) -> None:
    assert name in ("small", "kernel"), name
    TIER["name"], TIER["cap"] = name, cap


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
SPECIALS = (float("nan"), float("inf"), float("-inf"), -0.0, 0.0, 1e-40)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


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


class _Drawn:
    """What every drawn case shares: the device under test and seeded generators."""

    seed: int

    @property
    def device(self) -> str:
        return DEVICE["name"]

    def gen(self, salt: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1000003 + salt)

    def randn(self, *shape: int, salt: int) -> torch.Tensor:
        """Float64 N(0, 1) values on the device (an upstream gradient, say)."""
        return torch.randn(*shape, generator=self.gen(salt), dtype=torch.float64).to(self.device)


@dataclass(frozen=True)
class MixCase(_Drawn):
    """One drawn input: ``x = case.x()`` of shape (B, T, D) and ``case.num_heads``."""

    B: int
    T: int
    D: int
    num_heads: int
    dtype: torch.dtype
    layout: str = "contiguous"
    seed: int = 0
    specials: tuple[tuple[int, float], ...] = ()  # (flat index, value) written into x
    scale: float = 1.0  # x = offset + scale·N(0, 1) (large |mean| or large |x| for norms)
    offset: float = 0.0

    @property
    def head_dim(self) -> int:
        return self.D // self.num_heads

    def x(self) -> torch.Tensor:
        x = make_tensor((self.B, self.T, self.D), self.dtype, self.layout, self.gen(), self.device,
                        self.scale, self.offset)
        if self.specials and x.numel():
            x = x.clone()  # specials are written per element, so materialize expanded layouts
            flat = x.view(-1) if x.is_contiguous() else None
            for index, value in self.specials:
                i = index % x.numel()
                if flat is not None:
                    flat[i] = value
                else:
                    x[i // (self.T * self.D), (i // self.D) % self.T, i % self.D] = value
        return x

    def like(self, salt: int) -> torch.Tensor:
        """Another contiguous tensor of x's shape and dtype (an upstream gradient, a 2nd input)."""
        return make_tensor((self.B, self.T, self.D), self.dtype, "contiguous", self.gen(salt),
                           self.device)

    def params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """LayerNorm weight and bias of shape (D,): random, so a swapped or missing one shows."""
        g = self.gen(7)
        w = (1 + 0.5 * torch.randn(self.D, generator=g, dtype=torch.float64)).to(self.dtype)
        b = (0.5 * torch.randn(self.D, generator=g, dtype=torch.float64)).to(self.dtype)
        return w.to(self.device), b.to(self.device)

    def __repr__(self) -> str:
        s = (f"MixCase(B={self.B}, T={self.T}, D={self.D}, num_heads={self.num_heads}, "
             f"dtype=torch.{_dtype_name(self.dtype)}, layout={self.layout!r}, seed={self.seed}")
        if self.specials:
            s += f", specials={self.specials!r}"
        if (self.scale, self.offset) != (1.0, 0.0):
            s += f", scale={self.scale!r}, offset={self.offset!r}"
        return s + ")"


def mix_cases(*, kernel=True, **kw):
    """Shapes (B, T, D = H * d), dtypes, memory layouts and, optionally, NaN/Inf/-0.0/subnormals.
    In the kernel tier (``kernel=True``): see :func:`_kernel_mix`."""
    return sized(_mix_cases(kernel=kernel, **kw), kernel)


# (scale, offset) of x in the kernel tier: N(0, 1) twice as often as rows of |mean| >> std
# (cancellation in a variance) and rows whose Σx² overflows float16
MIX_MAGNITUDES = ((1.0, 0.0), (1.0, 0.0), (1.0, 1e4), (300.0, 0.0))


@st.composite
def _mix_cases(draw, *, kernel=True, dtypes=FLOATS, layouts=LAYOUTS, min_B=0, max_B=3, min_T=1,
               max_T=10, min_H=1, max_H=6, max_head_dim=6, heads_equal_tokens=False,
               num_heads=None, specials=False, kernel_max_T=257, magnitudes=True):
    if kernel and kernel_tier():
        return draw(_kernel_mix(dtypes, layouts, min_B, min_T, heads_equal_tokens, num_heads,
                                specials, kernel_max_T, magnitudes))
    if heads_equal_tokens:
        T = H = draw(st.integers(max(min_T, 1), max_T))
    else:
        T = draw(st.integers(min_T, max_T))
        H = num_heads if num_heads is not None else draw(st.integers(min_H, max_H))
    d = draw(st.integers(1, max_head_dim))
    B = draw(st.integers(min_B, max_B))
    return MixCase(B=B, T=T, D=H * d, num_heads=H, dtype=draw(st.sampled_from(dtypes)),
                   layout=draw(st.sampled_from(layouts)), seed=draw(st.integers(0, 2**31 - 1)),
                   specials=draw(_specials()) if specials else ())


def _specials():
    return st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(SPECIALS)),
                    min_size=1, max_size=4).map(tuple)


@st.composite
def _kernel_mix(draw, dtypes, layouts, min_B, min_T, heads_equal_tokens, num_heads, specials,
                max_T, magnitudes, max_elements=2**18):
    """Wide rows (D = H·d up to 4097, a few rows), many rows (B·T up to 3·max_T, narrow D), or
    H == T up to 33, each dim around a tile boundary."""
    B = draw(st.integers(max(min_B, 1), 3))
    if heads_equal_tokens:
        T = H = draw(boundary(max(min_T, 1), 33))
        d = draw(boundary(1, max(1, max_elements // (B * T * T))))
    else:
        H = num_heads if num_heads is not None else draw(boundary(1, 64))
        if draw(st.booleans()):  # wide rows
            T = draw(boundary(max(min_T, 1), 17))
            d = draw(boundary(1, max(1, 4097 // H)))
        else:  # many rows
            T = draw(boundary(max(min_T, 1), max_T))
            d = draw(boundary(1, max(1, min(67 // H, max_elements // (B * T * H)))))
    scale, offset = draw(st.sampled_from(MIX_MAGNITUDES if magnitudes else ((1.0, 0.0),)))
    return MixCase(B=B, T=T, D=H * d, num_heads=H, dtype=draw(st.sampled_from(dtypes)),
                   layout=draw(st.sampled_from(layouts)), seed=draw(st.integers(0, 2**31 - 1)),
                   specials=draw(_specials()) if specials else (), scale=scale, offset=offset)


def edge_cases(**kw):
    """B == 0 or T == 1 (and both)."""
    return st.one_of(mix_cases(min_B=0, max_B=0, **kw), mix_cases(min_T=1, max_T=1, **kw))


def gradcheck_cases(**kw):
    """float64, small; T >= 2 and H >= 2 (with one token or one head mixing is the identity,
    and a backward that applies the wrong permutation would go unseen)."""
    kw.setdefault("min_T", 2)
    kw.setdefault("min_H", 2)
    kw.setdefault("max_T", 5)
    kw.setdefault("max_H", 3)
    kw.setdefault("max_head_dim", 3)
    # gradcheck perturbs elements one by one, so it refuses overlapping (expanded) inputs
    layouts = tuple(lay for lay in LAYOUTS if lay != "expanded")
    return mix_cases(dtypes=(torch.float64,), layouts=layouts, min_B=1, max_B=2, kernel=False,
                     **kw)


@dataclass(frozen=True)
class BadInput:
    """A call ``fn(*args)`` that must be refused. The contract (every implementation): a
    ValueError or TypeError naming ``names[0]``, the argument. The registered implementations
    also agree word for word with the reference, which raises ``error`` naming all ``names``
    (tests/spec/test_errors.py)."""

    what: str
    args: tuple
    error: type
    names: tuple[str, ...]

    def __repr__(self) -> str:
        return f"BadInput({self.what!r})"


def bad_mix_inputs(arg_name: str = "x"):
    """Calls of ``fn(x, num_heads)`` that must raise TypeError/ValueError."""
    f32 = torch.randn(2, 3, 8)
    cases = [
        BadInput("x has ndim 2", (torch.randn(3, 8), 2), ValueError, (arg_name, "(B, T, D)")),
        BadInput("x has ndim 4", (torch.randn(2, 3, 8, 1), 2), ValueError, (arg_name, "(B, T, D)")),
        BadInput("D % num_heads != 0", (f32, 3), ValueError, ("num_heads", "D")),
        BadInput("num_heads == 0", (f32, 0), ValueError, ("num_heads",)),
        BadInput("num_heads is a float", (f32, 2.0), TypeError, ("num_heads",)),
        BadInput("num_heads is a bool", (f32, True), TypeError, ("num_heads",)),
        BadInput("x is int64", (torch.arange(48).view(2, 3, 8), 2), TypeError, (arg_name,)),
        BadInput("x is int32", (torch.zeros(2, 3, 8, dtype=torch.int32), 4), TypeError, (arg_name,)),
        BadInput("x is bool", (torch.zeros(2, 3, 8, dtype=torch.bool), 4), TypeError, (arg_name,)),
        BadInput("x is a list", ([[[1.0, 2.0]]], 1), TypeError, (arg_name,)),
    ]
    return st.sampled_from(cases)


def bad_mixer_inputs():
    """Calls of ``fn(x, num_heads, weight, bias, eps)`` that must raise TypeError/ValueError."""
    x, w, b = torch.randn(2, 3, 8), torch.ones(8), torch.zeros(8)
    cases = [BadInput(c.what, (*c.args, w, b, 1e-5), c.error, c.names)
             for c in bad_mix_inputs().elements if "list" not in c.what and "ndim 2" not in c.what]
    cases += [
        BadInput("weight has shape (D+1,)", (x, 2, torch.ones(9), b, 1e-5), ValueError, ("weight",)),
        BadInput("bias has shape (1, D)", (x, 2, w, torch.zeros(1, 8), 1e-5), ValueError, ("bias",)),
        BadInput("weight is float64", (x, 2, w.double(), b, 1e-5), TypeError, ("weight",)),
        BadInput("eps == 0", (x, 2, w, b, 0.0), ValueError, ("eps",)),
        BadInput("eps is a tensor", (x, 2, w, b, torch.tensor(1e-5)), TypeError, ("eps",)),
    ]
    return st.sampled_from(cases)


# --- attention ---------------------------------------------------------------------------

ATTN_LAYOUTS = ("contiguous", "projected", "strided", "expanded")


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


@dataclass(frozen=True)
class AttnCase(_Drawn):
    """q, k: (B, H, T, d) and v: (B, H, T, dv) from ``case.qkv()``; flags for softmax attention."""

    B: int
    H: int
    T: int
    d: int
    dv: int
    dtype: torch.dtype
    layout: str = "contiguous"
    seed: int = 0
    causal: bool = False
    alibi: bool = False
    scale: float = 1.0  # of q and k: scores grow as scale² (past 100, past the float16 range)

    def qkv(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g = self.gen()
        qk = (self.B, self.H, self.T, self.d)
        return (make_4d(qk, self.dtype, self.layout, g, self.device, self.scale),
                make_4d(qk, self.dtype, self.layout, g, self.device, self.scale),
                make_4d((self.B, self.H, self.T, self.dv), self.dtype, self.layout, g,
                        self.device))

    def upstream(self) -> torch.Tensor:
        return self.randn(self.B, self.H, self.T, self.dv, salt=1)

    def __repr__(self) -> str:
        return (f"AttnCase(B={self.B}, H={self.H}, T={self.T}, d={self.d}, dv={self.dv}, "
                f"dtype=torch.{_dtype_name(self.dtype)}, layout={self.layout!r}, "
                f"seed={self.seed}, causal={self.causal}, alibi={self.alibi}"
                + (f", scale={self.scale!r})" if self.scale != 1.0 else ")"))


def attn_cases(*, kernel=True, **kw):
    """Shapes, dtypes, layouts and (for softmax attention) the causal/ALiBi flags; in the
    kernel tier long sequences (B = H = 1, d <= 8, T up to ``kernel_max_T``), wide heads (d up
    to 129) or many heads (B·H up to 15), with q and k scaled by ``scales`` (float32/float64 only past 10)."""
    return sized(_attn_cases(kernel=kernel, **kw), kernel)


@st.composite
def _attn_cases(draw, *, kernel=True, dtypes=FLOATS, layouts=ATTN_LAYOUTS, min_B=0, max_B=2,
                min_T=1, max_T=12, max_H=3, min_d=1, max_d=6, causal=None, alibi=None,
                kernel_max_T=4096, scales=(1.0, 1.0, 10.0, 300.0)):
    if kernel and kernel_tier():
        dtype = draw(st.sampled_from(dtypes))
        regime = draw(st.sampled_from(("long", "wide", "many")))
        T_cap = {"long": kernel_max_T, "wide": min(kernel_max_T, 64)}.get(regime, 33)
        B, H = {"long": (1, 1), "wide": (1, draw(st.integers(1, 2)))}.get(
            regime, (draw(st.integers(max(min_B, 2), 3)), draw(boundary(2, 5))))
        d_cap = 129 if regime == "wide" else 8
        scale = draw(st.sampled_from([c for c in scales
                                      if c <= 10 or dtype in (torch.float32, torch.float64)]))
        return AttnCase(
            B=max(B, min_B), H=H, T=draw(boundary(max(min_T, 1), T_cap)),
            d=draw(boundary(min_d, max(min_d, d_cap))), dv=draw(boundary(1, d_cap)),
            dtype=dtype, layout=draw(st.sampled_from(layouts)),
            seed=draw(st.integers(0, 2**31 - 1)),
            causal=draw(st.booleans()) if causal is None else causal,
            alibi=draw(st.booleans()) if alibi is None else alibi, scale=scale)
    return AttnCase(
        B=draw(st.integers(min_B, max_B)), H=draw(st.integers(1, max_H)),
        T=draw(st.integers(min_T, max_T)), d=draw(st.integers(min_d, max_d)),
        dv=draw(st.integers(1, max_d)), dtype=draw(st.sampled_from(dtypes)),
        layout=draw(st.sampled_from(layouts)), seed=draw(st.integers(0, 2**31 - 1)),
        causal=draw(st.booleans()) if causal is None else causal,
        alibi=draw(st.booleans()) if alibi is None else alibi)


@st.composite
def long_prefix_cases(draw):
    """Quadratic attention over a long prefix in float16/bfloat16: B = H = 1, T from 1021 to
    4096, d and d_v up to 4 (the same in every tier: long is the point)."""
    return AttnCase(B=1, H=1, T=draw(boundary(1021, 4096, capped=False)),
                    d=draw(st.sampled_from((4, 1, 2, 3))),  # the first example: the largest
                    dv=draw(st.sampled_from((4, 1, 2, 3))),
                    dtype=draw(st.sampled_from((torch.bfloat16, torch.float16))),
                    seed=draw(st.integers(0, 2**31 - 1)), causal=True)


@st.composite
def large_position_cases(draw):
    """RoPE at large positions in float16/bfloat16: B = H = 1, T from 1021 to 4096, d <= 16."""
    return RopeCase(B=1, H=1, T=draw(boundary(1021, 4096, capped=False)),
                    d=2 * draw(st.integers(1, 8)),
                    dtype=draw(st.sampled_from((torch.bfloat16, torch.float16))),
                    layout=draw(st.sampled_from(ATTN_LAYOUTS)),
                    seed=draw(st.integers(0, 2**31 - 1)), interleaved=draw(st.booleans()))


def attn_gradcheck_cases(**kw):
    layouts = tuple(lay for lay in ATTN_LAYOUTS if lay != "expanded")
    return attn_cases(dtypes=(torch.float64,), layouts=layouts, min_B=1, max_B=1, max_T=6,
                      max_H=2, max_d=3, kernel=False, **kw)


def bad_attention_inputs(with_flags: bool):
    """Calls of ``fn(q, k, v[, causal, alibi])`` that must raise TypeError/ValueError."""
    q = torch.randn(1, 2, 5, 4)
    flags = (False, False) if with_flags else ()
    cases = [
        BadInput("q has ndim 3", (q[0], q[0], q[0], *flags), ValueError, ("q", "(B, H, T, d)")),
        BadInput("k has another T", (q, q[:, :, :3], q, *flags), ValueError, ("k",)),
        BadInput("k has another d", (q, q[..., :3], q, *flags), ValueError, ("k",)),
        BadInput("v has another T", (q, q, q[:, :, :4], *flags), ValueError, ("v",)),
        BadInput("q is int64", (q.long(), q, q, *flags), TypeError, ("q",)),
        BadInput("v is float64", (q, q, q.double(), *flags), TypeError, ("v",)),
        BadInput("k is a list", (q, [1.0], q, *flags), TypeError, ("k",)),
    ]
    if with_flags:
        cases += [BadInput("causal is an int", (q, q, q, 1, False), TypeError, ("causal",)),
                  BadInput("alibi is None", (q, q, q, False, None), TypeError, ("alibi",))]
    return st.sampled_from(cases)


# --- positional encodings ----------------------------------------------------------------

@dataclass(frozen=True)
class RopeCase(_Drawn):
    """x: (B, H, T, d) with d even, from ``case.x()``; ``case.interleaved`` names the pairing."""

    B: int
    H: int
    T: int
    d: int
    dtype: torch.dtype
    layout: str = "contiguous"
    seed: int = 0
    interleaved: bool = False

    def x(self) -> torch.Tensor:
        return make_4d((self.B, self.H, self.T, self.d), self.dtype, self.layout, self.gen(),
                       self.device)

    def upstream(self) -> torch.Tensor:
        return self.randn(self.B, self.H, self.T, self.d, salt=1)

    def __repr__(self) -> str:
        return (f"RopeCase(B={self.B}, H={self.H}, T={self.T}, d={self.d}, "
                f"dtype=torch.{_dtype_name(self.dtype)}, layout={self.layout!r}, "
                f"seed={self.seed}, interleaved={self.interleaved})")


def rope_cases(*, kernel=True, **kw):
    """In the kernel tier: long sequences (large positions: T up to 4096, B = H = 1) or many
    rows, head dims around tile boundaries (d up to 130)."""
    return sized(_rope_cases(kernel=kernel, **kw), kernel)


@st.composite
def _rope_cases(draw, *, kernel=True, dtypes=FLOATS, layouts=ATTN_LAYOUTS, min_B=0, max_B=2,
                min_T=1, max_T=12, max_half_d=5, kernel_max_T=4096):
    if kernel and kernel_tier():
        long = draw(st.booleans())
        return RopeCase(B=max(min_B, 1), H=1 if long else draw(boundary(2, 17)),
                        T=draw(boundary(max(min_T, 1), kernel_max_T if long else 65)),
                        d=2 * draw(boundary(1, 16 if long else 65)),
                        dtype=draw(st.sampled_from(dtypes)),
                        layout=draw(st.sampled_from(layouts)),
                        seed=draw(st.integers(0, 2**31 - 1)), interleaved=draw(st.booleans()))
    return RopeCase(B=draw(st.integers(min_B, max_B)), H=draw(st.integers(1, 3)),
                    T=draw(st.integers(min_T, max_T)), d=2 * draw(st.integers(1, max_half_d)),
                    dtype=draw(st.sampled_from(dtypes)), layout=draw(st.sampled_from(layouts)),
                    seed=draw(st.integers(0, 2**31 - 1)), interleaved=draw(st.booleans()))


def bad_rope_inputs():
    x = torch.randn(1, 2, 3, 4)
    return st.sampled_from([
        BadInput("x has ndim 3", (x[0], False), ValueError, ("x", "(B, H, T, d)")),
        BadInput("d is odd", (x[..., :3], False), ValueError, ("x", "d even")),
        BadInput("x is int64", (x.long(), False), TypeError, ("x",)),
        BadInput("interleaved is an int", (x, 1), TypeError, ("interleaved",)),
    ])


@dataclass(frozen=True)
class ScoresCase(_Drawn):
    """Attention scores (B, H, T, T) from ``case.scores()``, and the ALiBi ``causal`` flag."""

    B: int
    H: int
    T: int
    dtype: torch.dtype
    layout: str = "contiguous"
    seed: int = 0
    causal: bool = False

    def scores(self) -> torch.Tensor:
        return make_4d((self.B, self.H, self.T, self.T), self.dtype, self.layout, self.gen(),
                       self.device)

    def upstream(self) -> torch.Tensor:
        return self.randn(self.B, self.H, self.T, self.T, salt=1)

    def __repr__(self) -> str:
        return (f"ScoresCase(B={self.B}, H={self.H}, T={self.T}, "
                f"dtype=torch.{_dtype_name(self.dtype)}, layout={self.layout!r}, "
                f"seed={self.seed}, causal={self.causal})")


def scores_cases(*, kernel=True, **kw):
    """In the kernel tier: T up to 4096 around tile boundaries (B = 1; H <= 3 up to T = 1025)."""
    return sized(_scores_cases(kernel=kernel, **kw), kernel)


@st.composite
def _scores_cases(draw, *, kernel=True, dtypes=FLOATS, layouts=ATTN_LAYOUTS, min_B=0, max_B=2,
                  max_H=9, min_T=1, max_T=10, kernel_max_T=4096):
    if kernel and kernel_tier():
        T = draw(boundary(max(min_T, 1), kernel_max_T))
        return ScoresCase(B=max(min_B, 1), H=draw(st.integers(1, min(max_H, 3 if T <= 1025 else 1))),
                          T=T, dtype=draw(st.sampled_from(dtypes)),
                          layout=draw(st.sampled_from(layouts)),
                          seed=draw(st.integers(0, 2**31 - 1)), causal=draw(st.booleans()))
    return ScoresCase(B=draw(st.integers(min_B, max_B)), H=draw(st.integers(1, max_H)),
                      T=draw(st.integers(min_T, max_T)), dtype=draw(st.sampled_from(dtypes)),
                      layout=draw(st.sampled_from(layouts)),
                      seed=draw(st.integers(0, 2**31 - 1)), causal=draw(st.booleans()))


def bad_alibi_inputs():
    s = torch.randn(1, 2, 3, 3)
    return st.sampled_from([
        BadInput("scores has ndim 3", (s[0], False), ValueError, ("scores", "(B, H, T, T)")),
        BadInput("scores not square", (s[..., :2], False), ValueError, ("scores", "(B, H, T, T)")),
        BadInput("scores is int64", (s.long(), False), TypeError, ("scores",)),
        BadInput("causal is None", (s, None), TypeError, ("causal",)),
    ])


def bad_sinusoidal_inputs():
    x = torch.randn(2, 3, 4)
    return st.sampled_from([
        BadInput("x has ndim 4", (x[None],), ValueError, ("x", "(B, T, D)")),
        BadInput("D is odd", (x[..., :3],), ValueError, ("x", "D even")),
        BadInput("x is bool", (x > 0,), TypeError, ("x",)),
        BadInput("x is a list", ([1.0, 2.0],), TypeError, ("x",)),
    ])


def bad_norm_inputs(rms: bool):
    """Calls of ``layer_norm(x, weight, bias, eps)`` / ``rms_norm(x, weight, eps)`` that must
    raise TypeError/ValueError."""
    x, w = torch.randn(2, 3, 4), torch.ones(4)

    def args(x_=x, w_=w, eps=1e-5):
        return (x_, w_, eps) if rms else (x_, w_, torch.zeros(4, dtype=w_.dtype), eps)

    cases = [
        BadInput("x has ndim 2", args(x_=x[0]), ValueError, ("x", "(B, T, D)")),
        BadInput("x is int64", args(x_=x.long()), TypeError, ("x",)),
        BadInput("weight has another D", args(w_=w[:3]), ValueError, ("weight", "(D,)")),
        BadInput("weight is float64", args(w_=w.double()), TypeError, ("weight",)),
        BadInput("eps == 0", args(eps=0.0), ValueError, ("eps",)),
        BadInput("eps is a string", args(eps="1e-5"), TypeError, ("eps",)),
    ]
    if not rms:
        cases.append(BadInput("bias has another D", (x, w, torch.zeros(5), 1e-5), ValueError,
                              ("bias", "(D,)")))
    return st.sampled_from(cases)


# --- channel mixers ----------------------------------------------------------------------

class _TokensCase(_Drawn):
    """x: (B, T, D) in the case's memory layout, and a float64 upstream gradient of its shape;
    subclasses declare B, T, D, dtype and layout."""

    def x(self) -> torch.Tensor:
        return make_tensor((self.B, self.T, self.D), self.dtype, self.layout, self.gen(),
                           self.device)

    def upstream(self) -> torch.Tensor:
        return self.randn(self.B, self.T, self.D, salt=99)


@dataclass(frozen=True)
class FfnCase(_TokensCase):
    """x: (B, T, D) from ``case.x()``, weights (D, F) / (F, D) and biases from ``case.params``."""

    B: int
    T: int
    D: int
    F: int
    dtype: torch.dtype
    layout: str = "contiguous"
    seed: int = 0
    activation: str = "gelu"
    dropout: float = 0.0  # feed_forward's hidden dropout, its mask seeded with ``seed``

    def matrix(self, rows: int, cols: int, salt: int) -> torch.Tensor:
        w = torch.randn(rows, cols, generator=self.gen(salt), dtype=torch.float64) / rows**0.5
        return w.to(self.dtype).to(self.device)

    def vector(self, n: int, salt: int) -> torch.Tensor:
        v = 0.5 * torch.randn(n, generator=self.gen(salt), dtype=torch.float64)
        return v.to(self.dtype).to(self.device)

    def per_token(self, *shape: int, salt: int) -> torch.Tensor:
        """One weight (rows, cols) or bias (n,) per token: shape (T, *shape), scaled as above."""
        t = torch.randn(self.T, *shape, generator=self.gen(salt), dtype=torch.float64)
        t = t / shape[0] ** 0.5 if len(shape) == 2 else 0.5 * t
        return t.to(self.dtype).to(self.device)

    def __repr__(self) -> str:
        return (f"FfnCase(B={self.B}, T={self.T}, D={self.D}, F={self.F}, "
                f"dtype=torch.{_dtype_name(self.dtype)}, layout={self.layout!r}, "
                f"seed={self.seed}, activation={self.activation!r}, dropout={self.dropout})")


def ffn_cases(*, kernel=True, **kw):
    """In the kernel tier: D and F around tile boundaries (D up to 1025, F up to 4097, T·D·F at
    most 2^20: the per-token FFN has a matrix per token), up to 17 tokens."""
    return sized(_ffn_cases(kernel=kernel, **kw), kernel)


@st.composite
def _ffn_cases(draw, *, kernel=True, dtypes=FLOATS, layouts=LAYOUTS, min_B=0, max_B=2, min_T=1,
               max_T=6, max_D=8, max_F=12, dropouts=(0.0,)):
    if kernel and kernel_tier():
        T = draw(boundary(max(min_T, 1), 17))
        D = draw(boundary(1, 1025))
        F = draw(boundary(1, max(1, min(4097, 2**20 // (D * T)))))
        return FfnCase(B=draw(st.integers(max(min_B, 1), 2)), T=T, D=D, F=F,
                       dtype=draw(st.sampled_from(dtypes)), layout=draw(st.sampled_from(layouts)),
                       seed=draw(st.integers(0, 2**31 - 1)),
                       activation=draw(st.sampled_from(("relu", "gelu", "silu"))),
                       dropout=draw(st.sampled_from(dropouts)))
    return FfnCase(B=draw(st.integers(min_B, max_B)), T=draw(st.integers(min_T, max_T)),
                   D=draw(st.integers(1, max_D)), F=draw(st.integers(1, max_F)),
                   dtype=draw(st.sampled_from(dtypes)), layout=draw(st.sampled_from(layouts)),
                   seed=draw(st.integers(0, 2**31 - 1)),
                   activation=draw(st.sampled_from(("relu", "gelu", "silu"))),
                   dropout=draw(st.sampled_from(dropouts)))


def bad_ffn_inputs(op: str):
    """Calls of the channel mixers that must raise TypeError/ValueError."""
    pffn = op == "per_token_ffn"
    x = torch.randn(2, 3, 4)
    lead = (3,) if pffn else ()  # the per-token FFN has one weight per token (T = 3)
    a, b = torch.randn(*lead, 4, 6), torch.randn(*lead, 6, 4)
    b1, b2 = torch.zeros(*lead, 6), torch.zeros(*lead, 4)

    def args(x_=x, w1=a, w2=b, bias1=b1, act="gelu", dropout_seed=()):
        if op in ("feed_forward", "per_token_ffn"):
            return (x_, w1, bias1, w2, b2, act, *dropout_seed)
        return (x_, w1, a, w2)

    first = "w1" if op != "swiglu" else "w_gate"
    last = {"swiglu": "w_down", "bilinear": "w_out"}.get(op, "w2")
    t_ = "T, " if pffn else ""
    cases = [
        BadInput("x has ndim 2", args(x_=x[0]), ValueError, ("x", "(B, T, D)")),
        BadInput("x is int64", args(x_=x.long()), TypeError, ("x",)),
        BadInput("first weight has another D", args(w1=a[..., :3, :]), ValueError,
                 (first, f"({t_}D, F)")),
        BadInput("last weight has another F", args(w2=b[..., :5, :]), ValueError,
                 (last, f"({t_}F, D)")),
        BadInput("first weight is float64", args(w1=a.double()), TypeError, (first,)),
    ]
    if pffn:
        cases += [BadInput("weights for another T", args(w1=a[:2]), ValueError, ("w1", "(T, D, F)")),
                  BadInput("b1 shared by all tokens", args(bias1=b1[0]), ValueError,
                           ("b1", "(T, F)"))]
    if op in ("feed_forward", "per_token_ffn"):
        cases += [BadInput("b1 has another F", args(bias1=b1[..., :5]), ValueError,
                           ("b1", "(T, F)" if pffn else "(F,)")),
                  BadInput("unknown activation", args(act="tanh"), ValueError, ("activation",)),
                  BadInput("activation is None", args(act=None), TypeError, ("activation",))]
    if op == "feed_forward":
        cases += [BadInput("dropout 1", args(dropout_seed=(1.0, 0)), ValueError,
                           ("dropout", "[0, 1)")),
                  BadInput("dropout -0.1", args(dropout_seed=(-0.1, 0)), ValueError,
                           ("dropout", "[0, 1)")),
                  BadInput("dropout is a str", args(dropout_seed=("0.1", 0)), TypeError,
                           ("dropout",)),
                  BadInput("seed is a float", args(dropout_seed=(0.1, 1.5)), TypeError,
                           ("seed",))]
    return st.sampled_from(cases)


# --- blocks ------------------------------------------------------------------------------

@dataclass(frozen=True)
class BlockCase(_TokensCase):
    """x: (B, T, D) from ``case.x()``; ``case.params(shapes)`` draws a block's parameters;
    ``case.config()`` is the transformer block's positional configuration (after params).
    RankMixer cases use H, activation and eps only (relu / gelu / silu)."""

    B: int
    T: int
    D: int
    H: int
    F: int
    dtype: torch.dtype
    layout: str = "contiguous"
    seed: int = 0
    mixer: str = "token_mix"
    causal: bool = False
    residual: str = "post"
    norm: str = "layer"
    activation: str = "gelu"
    positional: str = "none"

    def params(self, shapes: dict) -> dict:
        """Norm weights ~ 1 + N(0, 1/4), biases ~ N(0, 1/4), matrices ~ N(0, 1/fan_in) (fan_in
        the second-to-last dim), each from its own salt."""
        out = {}
        for i, (name, (shape, _)) in enumerate(shapes.items()):
            t = torch.randn(shape, generator=self.gen(10 + i), dtype=torch.float64)
            if name.endswith("_weight"):
                t = 1 + 0.5 * t
            elif len(shape) >= 2:
                t = t / shape[-2] ** 0.5
            else:
                t = 0.5 * t
            out[name] = t.to(self.dtype).to(self.device)
        return out

    def config(self) -> tuple:
        return (self.H, self.mixer, self.causal, self.residual, self.norm, self.activation, 1e-5,
                self.positional)

    def __repr__(self) -> str:
        return (f"BlockCase(B={self.B}, T={self.T}, D={self.D}, H={self.H}, F={self.F}, "
                f"dtype=torch.{_dtype_name(self.dtype)}, layout={self.layout!r}, "
                f"seed={self.seed}, mixer={self.mixer!r}, causal={self.causal}, "
                f"residual={self.residual!r}, norm={self.norm!r}, "
                f"activation={self.activation!r}, positional={self.positional!r})")


def _min_head_dim(H: int) -> int:
    """Blocks get D >= 3. LayerNorm is constant at D = 1 (its bias) and piecewise constant at
    D = 2 (±weight + bias), so its exact zero gradient is a sum of terms of size |g|·w/sqrt(var
    + eps) that autograd adds into the residual stream's gradient one at a time: the float64
    reference is then itself off by an ulp of those terms (seen: 1.2e-14 on dx = 0.61), while
    a fused norm kernel is exact. The norms' own spec covers D = 1 and 2."""
    return -(-3 // H)


MIXER_CAUSAL = (("softmax_attention", False), ("softmax_attention", True),
                ("quadratic_attention", True), ("token_mix", False))


def transformer_cases(*, kernel=True, **kw):
    """In the kernel tier: T up to 33, D up to 2·129, F up to 257, around tile boundaries."""
    return sized(_transformer_cases(kernel=kernel, **kw), kernel)


BLOCK_ACTIVATIONS = ("relu", "gelu", "swish", "swiglu", "bilinear", "none")
# the positional encodings each mixer takes
POSITIONAL_OF = {"softmax_attention": ("none", "rope", "alibi"),
                 "quadratic_attention": ("none", "rope"), "token_mix": ("none",)}


@st.composite
def _transformer_cases(draw, *, kernel=True, dtypes=FLOATS, layouts=LAYOUTS, min_B=0, max_B=2,
                       min_T=1, max_T=6, max_H=2, max_head_dim=4, max_F=8, causal_only=False,
                       residuals=("pre", "post", "sandwich"), norms=("layer", "rms", "none"),
                       activations=BLOCK_ACTIVATIONS):
    big = kernel and kernel_tier()
    if big:
        min_B, max_B, max_T, max_head_dim, max_F = max(min_B, 1), 2, 33, 129, 257
    mixer, causal = draw(st.sampled_from(
        tuple(mc for mc in MIXER_CAUSAL if mc[1] or not causal_only)))
    positional = draw(st.sampled_from(POSITIONAL_OF[mixer]))
    H = draw(st.integers(1, max_H))
    lo = _min_head_dim(H)
    head = draw(boundary(lo, max_head_dim) if big else st.integers(lo, max_head_dim))
    if positional == "rope" and head % 2:  # RoPE rotates pairs: an even head size
        head += 1
    return BlockCase(B=draw(st.integers(min_B, max_B)),
                     T=draw(boundary(max(min_T, 1), max_T) if big
                            else st.integers(min_T, max_T)),
                     D=H * head, H=H,
                     F=draw(boundary(1, max_F) if big else st.integers(1, max_F)),
                     dtype=draw(st.sampled_from(dtypes)), layout=draw(st.sampled_from(layouts)),
                     seed=draw(st.integers(0, 2**31 - 1)), mixer=mixer, causal=causal,
                     residual=draw(st.sampled_from(residuals)),
                     norm=draw(st.sampled_from(norms)),
                     activation=draw(st.sampled_from(activations)), positional=positional)


def rankmixer_cases(*, kernel=True, **kw):
    """In the kernel tier: T and H up to 17, D up to 17·33, F up to 65, around tile boundaries
    (the per-token FFN holds T·D·F weights per matrix)."""
    return sized(_rankmixer_cases(kernel=kernel, **kw), kernel)


@st.composite
def _rankmixer_cases(draw, *, kernel=True, dtypes=FLOATS, layouts=LAYOUTS, min_B=0, max_B=2,
                     min_T=1, max_T=6, max_H=4, max_head_dim=3, max_F=8,
                     heads_equal_tokens=False):
    big = kernel and kernel_tier()
    dim = boundary if big else st.integers
    if big:
        min_B, max_T, max_H, max_head_dim, max_F = max(min_B, 1), 17, 17, 33, 65
    if heads_equal_tokens:  # the paper's setting: H == T, every output token sees every token
        T = H = draw(dim(max(min_T, 1), max_T))
    else:
        T, H = draw(dim(max(min_T, 1 if big else 0), max_T)), draw(dim(1, max_H))
    return BlockCase(B=draw(st.integers(min_B, max_B)), T=T, H=H,
                     D=H * draw(dim(_min_head_dim(H), max(_min_head_dim(H), max_head_dim))),
                     F=draw(dim(1, max_F)),
                     dtype=draw(st.sampled_from(dtypes)), layout=draw(st.sampled_from(layouts)),
                     seed=draw(st.integers(0, 2**31 - 1)),
                     activation=draw(st.sampled_from(("relu", "gelu", "silu"))))


def bad_block_inputs(op: str):
    """Calls of ``rankmixer_block`` / ``transformer_block`` that must raise TypeError/ValueError."""
    from mixology.ops.blocks.reference import rankmixer_shapes, transformer_shapes

    x = torch.randn(2, 3, 4)
    if op == "rankmixer_block":
        p = {k: torch.randn(s) for k, (s, _) in rankmixer_shapes(3, 4, 5).items()}

        def args(x_=x, p_=p, **kw):
            c = dict(num_heads=2, activation="gelu", eps=1e-5) | kw
            return (x_, p_, c["num_heads"], c["activation"], c["eps"])
    else:
        p = {k: torch.randn(s) for k, (s, _) in
             transformer_shapes(4, 5, "softmax_attention", "pre", "layer", "gelu").items()}

        def args(x_=x, p_=p, **kw):
            c = dict(num_heads=2, mixer="softmax_attention", causal=False, residual="pre",
                     norm="layer", activation="gelu", eps=1e-5) | kw
            return (x_, p_, *c.values())

    first = "w1"
    cases = [
        BadInput("x has ndim 2", args(x_=x[0]), ValueError, ("x", "(B, T, D)")),
        BadInput("x is int64", args(x_=x.long()), TypeError, ("x",)),
        BadInput("num_heads does not divide D", args(num_heads=3), ValueError, ("num_heads",)),
        BadInput("params is a list", args(p_=list(p.values())), TypeError, ("params",)),
        BadInput("params misses w2", args(p_={k: v for k, v in p.items() if k != "w2"}),
                 ValueError, ("w2",)),
        BadInput("params has an extra entry", args(p_=p | {"w3": p["w2"]}), ValueError, ("w3",)),
        BadInput("first FFN weight has another D", args(p_=p | {first: p[first][..., :3, :]}),
                 ValueError, (first,)),
        BadInput("a bias is float64", args(p_=p | {"b2": p["b2"].double()}), TypeError, ("b2",)),
        BadInput("eps == 0", args(eps=0.0), ValueError, ("eps",)),
        BadInput("activation unknown", args(activation="tanh"), ValueError, ("activation",)),
    ]
    if op == "rankmixer_block":
        cases.append(BadInput("per-token weights for another T", args(p_=p | {"w1": p["w1"][:2]}),
                              ValueError, ("w1", "(T, D, F)")))
    else:
        cases += [
            BadInput("mixer unknown", args(mixer="mamba"), ValueError, ("mixer",)),
            BadInput("residual unknown", args(residual="peri"), ValueError, ("residual",)),
            BadInput("norm unknown", args(norm="batch"), ValueError, ("norm",)),
            BadInput("causal is an int", args(causal=1), TypeError, ("causal",)),
            BadInput("quadratic attention not causal", args(mixer="quadratic_attention"),
                     ValueError, ("causal",)),
            BadInput("sandwich without its post norms", args(residual="sandwich"), ValueError,
                     ("norm1_post",)),
        ]
    return st.sampled_from(cases)
