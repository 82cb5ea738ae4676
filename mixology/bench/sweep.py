"""The benchmark sweep: every entry (op) x implementation x mode x size, and what each
point runs (its builder returns the call, the bytes it must move and its FLOPs).

Sizes: ``full`` and ``quick`` on a GPU, ``cpu`` (every code path in about a minute), ``smoke``
(one point per entry, implementation and mode). Timing and ceilings: ``mixology.bench.timing``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import mixology

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}
MIXER_IMPLS = ("reference", "compiled", "triton")
ATTENTION_IMPLS = ("sdpa", "attention_block")
HEAD_DIM_ATTENTION = 64  # attention baselines use heads of 64 (D // 64 heads)


@dataclass(frozen=True)
class Point:
    entry: str  # the benchmarked op, e.g. "token_mixer"
    impl: str  # implementation or baseline
    mode: str  # "fwd", "bwd" (backward alone) or "fwd+bwd"
    B: int
    T: int
    D: int
    dtype: str
    sweep: str  # "T" (T varies at fixed D), "D" (D varies at fixed T), "mem" (fixed B)

    def __str__(self) -> str:
        return (f"{self.entry}-{self.impl}-{self.mode}-{self.sweep}sweep-"
                f"B{self.B}-T{self.T}-D{self.D}-{self.dtype}")


@dataclass(frozen=True)
class Sizes:
    tokens: int  # B * T is held at this (B >= 1), so the working set is the same at every T
    Ts: tuple[int, ...]
    Ds_fixed: tuple[int, ...]  # D of the T sweeps
    Ds_sweep: tuple[int, ...]  # D of the D sweep
    T_fixed: int  # T of the D sweep
    dtypes: tuple[str, ...]
    mem_Ts: tuple[int, ...]  # T of the memory-scaling points (B = 1)


SIZES = {
    # ~6 GPU-minutes on an H100; T = 16 ... 65536 in x2 steps at D = 768 and 4096
    "full": Sizes(tokens=2**17, Ts=tuple(2**k for k in range(4, 17)), Ds_fixed=(768, 4096),
                  Ds_sweep=(256, 512, 1024, 2048, 4096, 8192), T_fixed=512,
                  dtypes=("bf16", "fp32"), mem_Ts=tuple(2**k for k in range(8, 16))),
    # a quicker GPU pass: x4 steps in T
    "quick": Sizes(tokens=2**17, Ts=tuple(4**k for k in range(2, 9)), Ds_fixed=(768, 4096),
                   Ds_sweep=(256, 1024, 4096), T_fixed=512, dtypes=("bf16",),
                   mem_Ts=(256, 1024, 4096, 16384)),
    # CPU: exercises every code path in about a minute; never compared with GPU numbers
    "cpu": Sizes(tokens=2**10, Ts=(16, 64, 256), Ds_fixed=(64,), Ds_sweep=(32, 128),
                 T_fixed=64, dtypes=("fp32",), mem_Ts=(64, 256)),
}


# Quadratic attention: B = 2, H = 8, the head size d = d_v in Point.D; T up to 65536. The O(T²)
# reference materializes B·H·T² scores, so it stops at REFERENCE_MAX_T.
QUAD_SIZES = {
    "full": dict(Ts=tuple(2**k for k in range(6, 17)), ds=(16, 32, 64), dtypes=("bf16",)),
    "quick": dict(Ts=tuple(4**k for k in range(3, 9)), ds=(16, 64), dtypes=("bf16",)),
    "cpu": dict(Ts=(16, 64, 256), ds=(16,), dtypes=("fp32",)),
}
QUAD_B, QUAD_H, REFERENCE_MAX_T = 2, 8, 16384
QUAD_IMPLS = ("reference", "chunked", "triton", "sdpa_causal")


# Per-token FFN (ff = 4D): a T sweep at D = 512 and a D sweep at T = 32, both at batch B, and a
# batch sweep at T = 32, D = 1024 (the GEMMs are (B x D) @ (D x 4D) per token: B sets how
# close they get to the matmul ceiling). Weights are T·8D² elements, so T and D are not swept
# together (T = 512 at D = 2048 would be 34 GB of bf16 weights).
PFFN_SIZES = {
    "full": dict(B=2048, Ts=tuple(2**k for k in range(4, 10)), D_of_T=512,
                 Ds=(256, 512, 1024, 2048), T_of_D=32, Bs=(64, 256, 1024, 4096),
                 TD_of_B=(32, 1024), dtypes=("bf16",)),
    "quick": dict(B=2048, Ts=(16, 64, 256, 512), D_of_T=512, Ds=(256, 1024, 2048), T_of_D=32,
                  Bs=(256, 4096), TD_of_B=(32, 1024), dtypes=("bf16",)),
    "cpu": dict(B=32, Ts=(16, 64), D_of_T=64, Ds=(128,), T_of_D=16, Bs=(64,),
                TD_of_B=(16, 64), dtypes=("fp32",)),
}
PFFN_IMPLS = ("reference", "bmm", "compiled")

# Norms: rows = B·T fixed (T = 512), D swept; bandwidth-bound, so GB/s vs the copy ceiling.
NORM_SIZES = {
    "full": dict(rows=2**17, T=512, Ds=(256, 512, 1024, 2048, 4096, 8192),
                 dtypes=("bf16", "fp32")),
    "quick": dict(rows=2**17, T=512, Ds=(1024, 4096), dtypes=("bf16",)),
    "cpu": dict(rows=2**10, T=64, Ds=(32, 128), dtypes=("fp32",)),
}


@dataclass(frozen=True)
class Entry:
    """One op in the sweep: its implementations, modes, how to build a call and, where its
    sizes are its own, which points to run."""

    name: str
    impls: tuple[str, ...]
    modes: tuple[str, ...]
    build: Callable  # (point, device) -> (fn, bytes_moved, flops)
    points: Callable | None = None  # (entry, sizes, device) -> [Point]; None: the mixer sweep


ENTRIES: dict[str, Entry] = {}


def entry(name: str, impls, modes, points=None):
    def register(build):
        ENTRIES[name] = Entry(name, tuple(impls), tuple(modes), build, points)
        return build

    return register


def _quadratic_points(e: Entry, sizes: str, device: str) -> list[Point]:
    s = QUAD_SIZES[sizes]

    def lengths(impl):
        if impl == "triton" and device != "cuda":  # interpreted: the code path, at one size
            return s["Ts"][:1]
        return [T for T in s["Ts"] if impl != "reference" or T <= REFERENCE_MAX_T]

    return [Point(e.name, impl, mode, QUAD_B, T, d, dtype, "T")
            for dtype in s["dtypes"] for d in s["ds"] for impl in e.impls for mode in e.modes
            for T in lengths(impl)]


def _pffn_points(e: Entry, sizes: str, device: str) -> list[Point]:
    s = PFFN_SIZES[sizes]
    out = []
    for dtype in s["dtypes"]:
        for impl in e.impls:
            for mode in e.modes:
                out += [Point(e.name, impl, mode, s["B"], T, s["D_of_T"], dtype, "T")
                        for T in s["Ts"]]
                out += [Point(e.name, impl, mode, s["B"], s["T_of_D"], D, dtype, "D")
                        for D in s["Ds"]]
                T, D = s["TD_of_B"]
                out += [Point(e.name, impl, mode, B, T, D, dtype, "B") for B in s["Bs"]]
    return out


def _norm_points(e: Entry, sizes: str, device: str) -> list[Point]:
    s = NORM_SIZES[sizes]
    return [Point(e.name, impl, mode, s["rows"] // s["T"], s["T"], D, dtype, "D")
            for dtype in s["dtypes"] for impl in e.impls for mode in e.modes for D in s["Ds"]]


def headline(device: str) -> list[Point]:
    """The points a short GPU session measures first (``full``'s sizes on CUDA, ``cpu``'s
    elsewhere): the TokenMixer's forward and backward (triton, compiled, eager) at three T, and
    the attention baselines at the seed's T = 512 for its claims; quadratic attention's linear
    form against the O(T²) reference and causal SDPA from T = 1024 up (the crossover), and
    linear attention's chunked form against causal SDPA at the same sizes; the
    per-token FFN at its largest batch; the norms at two D."""
    base = sweep("full" if device == "cuda" else "cpu", device)
    mixer = [p for p in base if p.entry == "token_mixer" and p.sweep == "T"]
    dtype, D = mixer[0].dtype, min(p.D for p in mixer)
    Ts = sorted({p.T for p in mixer})
    three = {min(Ts, key=lambda T: abs(T - want)) for want in (512, 4096, 32768)}
    at = min(Ts, key=lambda T: abs(T - 512))
    keep = [p for p in mixer if p.dtype == dtype and p.D == D and (
        (p.T in three and p.impl in MIXER_IMPLS and p.mode in ("fwd", "bwd"))
        or (p.T == at and p.impl in (*ATTENTION_IMPLS, "triton", "compiled")
            and p.mode in ("fwd", "fwd+bwd")))]
    quad = [p for p in base if p.entry == "quadratic_attention" and p.mode == "fwd"]
    d = max(p.D for p in quad)
    keep += [p for p in quad if p.D == d and (device != "cuda" or 1024 <= p.T <= 16384)]
    lin = [p for p in base if p.entry == "linear_attention" and p.mode == "fwd"
           and p.impl != "reference" and p.D == d]  # the Triton kernels, chunked torch, SDPA
    keep += [p for p in lin if device != "cuda" or 1024 <= p.T <= 16384]
    pffn = [p for p in base if p.entry == "per_token_ffn" and p.sweep == "B" and p.mode == "fwd"]
    keep += [p for p in pffn if p.B == max(q.B for q in pffn)]
    norms = [p for p in base if p.entry in ("layer_norm", "rms_norm")]
    Ds = sorted({p.D for p in norms})
    two = {min(Ds, key=lambda x: abs(x - want)) for want in (1024, 4096)}
    keep += [p for p in norms if p.D in two and p.dtype == norms[0].dtype]
    return keep


def sweep(sizes: str, device: str) -> list[Point]:
    """The points of a sweep: ``full``, ``quick``, ``cpu``, ``headline`` (the points a short
    GPU session measures first: :func:`headline`), or ``smoke`` (the first point of every
    entry x implementation x mode of ``quick``: every path once, for a short GPU run)."""
    if sizes == "headline":
        return headline(device)
    if sizes == "smoke":
        first: dict[tuple, Point] = {}
        for p in sweep("quick", device):
            first.setdefault((p.entry, p.impl, p.mode), p)
        return list(first.values())
    s = SIZES[sizes]
    points = []
    for e in ENTRIES.values():
        if e.points is not None:
            points += e.points(e, sizes, device)
            continue
        for dtype in s.dtypes:
            for impl in e.impls:
                for mode in e.modes:
                    if mode == "bwd" and impl in ATTENTION_IMPLS:
                        continue  # backward alone is measured for the mixer's targets only
                    for D in s.Ds_fixed:
                        points += [Point(e.name, impl, mode, max(1, s.tokens // T), T, D, dtype,
                                         "T") for T in s.Ts]
                    if dtype == s.dtypes[0] and mode != "bwd":
                        points += [Point(e.name, impl, mode, max(1, s.tokens // s.T_fixed),
                                         s.T_fixed, D, dtype, "D") for D in s.Ds_sweep]
        if e.name == "token_mixer":  # peak memory vs T at B = 1: linear vs quadratic
            for impl in ("triton" if device == "cuda" else "reference", "sdpa", "sdpa_math"):
                points += [Point(e.name, impl, "fwd", 1, T, s.Ds_fixed[0], s.dtypes[0], "mem")
                           for T in s.mem_Ts]
    return points


def _generator(device: str) -> torch.Generator | None:
    """The builders' seeded generator; none on meta (gpu-check builds the sweep's calls on
    meta tensors to compile their launches without a GPU)."""
    return None if device == "meta" else torch.Generator(device=device).manual_seed(0)


def _attention(x, num_heads, proj=None, backend=None):

    B, T, D = x.shape
    qkv = x if proj is None else proj[0](x)
    if proj is None:
        q = k = v = x.view(B, T, num_heads, D // num_heads).transpose(1, 2)
    else:
        q, k, v = qkv.view(B, T, 3, num_heads, D // num_heads).permute(2, 0, 3, 1, 4)
    backends = {"flash": [SDPBackend.FLASH_ATTENTION], "math": [SDPBackend.MATH]}
    if backend in backends:
        with sdpa_kernel(backends[backend]):
            o = F.scaled_dot_product_attention(q, k, v)
    else:
        o = F.scaled_dot_product_attention(q, k, v)
    o = o.transpose(1, 2).reshape(B, T, D)
    return o if proj is None else proj[1](o)


@entry("token_mixer", MIXER_IMPLS + ATTENTION_IMPLS, ("fwd", "bwd", "fwd+bwd"))
def build_token_mixer(p: Point, device: str):
    """TokenMixer forward / backward / both, and softmax attention as users would run it:
    ``sdpa`` (SDPA alone on x split into D/64 heads) and ``attention_block``
    (LayerNorm(x + out_proj(SDPA(qkv_proj(x))))), the block a token mixer replaces."""

    dtype = DTYPES[p.dtype]
    g = _generator(device)
    x = torch.randn(p.B, p.T, p.D, device=device, dtype=dtype, generator=g)
    w = torch.ones(p.D, device=device, dtype=dtype)
    b = torch.zeros(p.D, device=device, dtype=dtype)
    size = torch.finfo(dtype).bits // 8
    n = p.B * p.T * p.D
    heads = max(1, p.D // HEAD_DIM_ATTENTION)
    if p.impl in MIXER_IMPLS:
        fn_impl = mixology.registry.get("token_mixer", p.impl).fn
        H = p.T if p.D % p.T == 0 else math.gcd(p.T, p.D)  # the paper's H == T where it divides D

        def forward(x_, w_, b_):
            return fn_impl(x_, H, w_, b_, 1e-5)

        flops_fwd = 8 * n  # residual add + LayerNorm, the seed's ~8·B·T·D
    else:
        backend = {"sdpa_math": "math"}.get(p.impl, "flash" if device == "cuda"
                                            and dtype != torch.float32 else None)
        proj = None
        if p.impl == "attention_block":
            proj = (torch.nn.Linear(p.D, 3 * p.D, device=device, dtype=dtype),
                    torch.nn.Linear(p.D, p.D, device=device, dtype=dtype))

        def forward(x_, w_, b_):
            a = _attention(x_, heads, proj, backend)
            return a if proj is None else F.layer_norm(x_ + a, (p.D,), w_, b_, 1e-5)

        flops_fwd = 4 * p.B * p.T * p.T * p.D + (8 * n * p.D if proj else 0)

    # bytes that must move: x read once + y written once (+ dy read, dx written backward)
    bytes_fwd, bytes_bwd = 2 * n * size, 3 * n * size
    if p.mode == "fwd":
        return (lambda: forward(x, w, b)), bytes_fwd, flops_fwd
    xg, wg, bg = (t.detach().requires_grad_() for t in (x, w, b))
    dy = torch.randn_like(x)
    if p.mode == "bwd":
        # Timing backward alone replays one graph (retain_graph=True). torch.compile's backward
        # donates buffers and refuses a replay unless donation is off, a flag it reads at every
        # call; so every implementation's backward runs under the same patch (a few µs of host
        # work per call; donation saves memory, not time).
        import torch._functorch.config as functorch_config

        def backward():
            with functorch_config.patch(donated_buffer=False):
                return torch.autograd.grad(y, (xg, wg, bg), dy, retain_graph=True,
                                           allow_unused=True)

        with functorch_config.patch(donated_buffer=False):
            y = forward(xg, wg, bg)
        return backward, bytes_bwd, 2 * flops_fwd

    def fwd_bwd():
        # allow_unused: SDPA alone has no LayerNorm weight/bias
        return torch.autograd.grad(forward(xg, wg, bg), (xg, wg, bg), dy, allow_unused=True)

    return fwd_bwd, bytes_fwd + bytes_bwd, 3 * flops_fwd


def causal_attention_flops(bh: int, T: int, d: int) -> int:
    """Causal attention's FLOPs, the work a causal kernel (flash) does: QKᵀ and PV over the
    T(T+1)/2 unmasked (t, s) pairs, 2d FLOPs each (2 per multiply-add)."""
    return bh * T * (T + 1) // 2 * 2 * (2 * d)


@entry("quadratic_attention", QUAD_IMPLS, ("fwd", "fwd+bwd"), points=_quadratic_points)
def build_quadratic_attention(p: Point, device: str):
    """Quadratic attention (q, k, v: (B, H, T, d), d = Point.D): the O(T²) einops reference,
    the linear form in torch (chunks of 64) and in Triton, against causal softmax attention by
    SDPA (flash on CUDA in bf16), the O(T²) kernel a user would otherwise run."""

    dtype = DTYPES[p.dtype]
    g = _generator(device)
    q, k, v = (torch.randn(p.B, QUAD_H, p.T, p.D, device=device, dtype=dtype, generator=g)
               / p.D**0.25 for _ in range(3))
    bh, size, d, C = p.B * QUAD_H, torch.finfo(dtype).bits // 8, p.D, 64
    if p.impl == "sdpa_causal":
        def op(q_, k_, v_):
            return F.scaled_dot_product_attention(q_, k_, v_, is_causal=True)

        flops = causal_attention_flops(bh, p.T, d)
    else:
        op = mixology.registry.get("quadratic_attention", p.impl).fn
        if p.impl == "reference":
            flops = 2 * bh * p.T * p.T * 2 * d  # the full T x T scores, masked
        else:  # per token: φ(k)vᵀ into the state, φ(q)ᵀS out, and the intra-chunk part
            flops = bh * p.T * (4 * d * d * d + 2 * min(C, p.T) * 2 * d)
    nbytes = 4 * bh * p.T * d * size  # q, k, v read, out written
    if p.mode == "fwd":
        return (lambda: op(q, k, v)), nbytes, flops
    leaves = [t.detach().requires_grad_() for t in (q, k, v)]
    dy = torch.randn_like(q)

    def fwd_bwd():
        return torch.autograd.grad(op(*leaves), leaves, dy)

    return fwd_bwd, nbytes + 7 * bh * p.T * d * size, 3 * flops


LINEAR_IMPLS = ("reference", "chunked", "triton", "sdpa_causal")


# linear attention at quadratic attention's sizes (the same B, H, d and T: the two read side
# by side)
@entry("linear_attention", LINEAR_IMPLS, ("fwd", "fwd+bwd"), points=_quadratic_points)
def build_linear_attention(p: Point, device: str):
    """Gated linear attention (q, k, v: (B, H, T, d), d = Point.D, a log-decay g per head and
    step): the O(T²) einops reference, the chunked torch form (chunks of 64) and the Triton
    chunked kernels (chunks of 16), against
    causal softmax attention by SDPA, the O(T²) kernel a user would otherwise run."""
    dtype = DTYPES[p.dtype]
    g = _generator(device)
    q, k, v = (torch.randn(p.B, QUAD_H, p.T, p.D, device=device, dtype=dtype, generator=g)
               for _ in range(3))
    decay = -torch.rand(p.B, QUAD_H, p.T, device=device, generator=g).to(dtype) / 16
    bh, size, d, C = p.B * QUAD_H, torch.finfo(dtype).bits // 8, p.D, 64
    if p.impl == "sdpa_causal":
        def forward(q_, k_, v_):
            return F.scaled_dot_product_attention(q_, k_, v_, is_causal=True)

        flops = causal_attention_flops(bh, p.T, d)
    else:
        fn = mixology.registry.get("linear_attention", p.impl).fn

        def forward(q_, k_, v_):
            return fn(q_, k_, v_, decay)[0]

        if p.impl == "reference":
            flops = 2 * bh * p.T * p.T * 2 * d  # the full T x T scores, masked
        else:  # per token: k vᵀ into the state, q S out, and the intra-chunk part
            C = 16 if p.impl == "triton" else C
            flops = bh * p.T * (4 * d * d + 2 * min(C, p.T) * 2 * d)
    nbytes = 4 * bh * p.T * d * size + bh * p.T * size  # q, k, v, g read, o written
    if p.mode == "fwd":
        return (lambda: forward(q, k, v)), nbytes, flops
    return _fwd_or_fwd_bwd(p, forward, [q, k, v]), nbytes + 7 * bh * p.T * d * size, 3 * flops


def _fwd_or_fwd_bwd(p: Point, forward: Callable, tensors: list) -> Callable:
    """The call to time: forward alone, or forward and backward of every tensor."""
    if p.mode == "fwd":
        return lambda: forward(*tensors)
    leaves = [t.detach().requires_grad_() for t in tensors]
    dy = None

    def fwd_bwd():
        nonlocal dy
        y = forward(*leaves)
        if dy is None:
            dy = torch.randn_like(y)
        return torch.autograd.grad(y, leaves, dy)

    return fwd_bwd


@entry("per_token_ffn", PFFN_IMPLS, ("fwd", "fwd+bwd"), points=_pffn_points)
def build_per_token_ffn(p: Point, device: str):
    """RankMixer's per-token FFN, ff = 4D, GELU: the einsum reference, two baddbmm, and
    torch.compile. Compute-bound: TFLOP/s against the measured matmul ceiling."""

    dtype, F_ = DTYPES[p.dtype], 4 * p.D
    g = _generator(device)

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, device=device, dtype=dtype, generator=g) * scale

    tensors = [randn(p.B, p.T, p.D), randn(p.T, p.D, F_, scale=p.D**-0.5), randn(p.T, F_),
               randn(p.T, F_, p.D, scale=F_**-0.5), randn(p.T, p.D)]
    op = mixology.registry.get("per_token_ffn", p.impl).fn

    def forward(*t):
        return op(*t, "gelu")

    size = torch.finfo(dtype).bits // 8
    flops = 4 * p.B * p.T * p.D * F_  # two GEMMs per token, 2 FLOPs per multiply-add
    nbytes = (2 * p.B * p.T * p.D + 2 * p.T * p.D * F_ + p.T * (F_ + p.D)) * size
    if p.mode == "fwd":
        return _fwd_or_fwd_bwd(p, forward, tensors), nbytes, flops
    # backward: dx, dW1, dW2 GEMMs (2 each) -> 3x the forward FLOPs in all
    return _fwd_or_fwd_bwd(p, forward, tensors), 3 * nbytes, 3 * flops


def _build_norm(p: Point, device: str):
    """LayerNorm / RMSNorm over D: bandwidth-bound, GB/s against the copy ceiling. ``torch``
    is F.layer_norm (not a registered implementation: see ops/norms/__init__.py)."""

    dtype = DTYPES[p.dtype]
    g = _generator(device)
    x = torch.randn(p.B, p.T, p.D, device=device, dtype=dtype, generator=g)
    w = torch.ones(p.D, device=device, dtype=dtype)
    rms = p.entry == "rms_norm"
    if p.impl == "torch":
        def forward(x_, w_, b_):
            return F.layer_norm(x_, (p.D,), w_, b_, 1e-5)
    else:
        op = mixology.registry.get(p.entry, p.impl).fn

        def forward(x_, w_, b_=None):
            return op(x_, w_, 1e-5) if rms else op(x_, w_, b_, 1e-5)

    tensors = [x, w] + ([] if rms else [torch.zeros_like(w)])
    n, size = p.B * p.T * p.D, torch.finfo(dtype).bits // 8
    # x read and y written; backward reads x and dy and writes dx (weights are negligible)
    nbytes = (2 if p.mode == "fwd" else 5) * n * size
    flops = (8 if p.mode == "fwd" else 24) * n
    return _fwd_or_fwd_bwd(p, forward, tensors), nbytes, flops


entry("layer_norm", ("reference", "triton", "torch"), ("fwd", "fwd+bwd"),
      points=_norm_points)(_build_norm)
entry("rms_norm", ("reference", "native", "triton"), ("fwd", "fwd+bwd"),
      points=_norm_points)(_build_norm)


def flop_counts(T: int = 512, D: int = 768) -> dict:
    """FLOPs per sequence (B = 1): the mixer's elementwise work vs attention, counted by
    torch's FlopCounterMode (2 FLOPs per multiply-add) on the attention baselines."""
    x = torch.randn(1, T, D)
    proj = (torch.nn.Linear(D, 3 * D), torch.nn.Linear(D, D))
    heads = D // HEAD_DIM_ATTENTION
    with torch.no_grad():
        # the math backend: fused SDPA kernels are invisible to the counter on some devices
        with FlopCounterMode(display=False) as fc:
            _attention(x, heads, backend="math")
        sdpa = fc.get_total_flops()
        with FlopCounterMode(display=False) as fc:
            _attention(x, heads, proj, backend="math")
        block = fc.get_total_flops()
    return {"mixer": 8 * T * D, "sdpa": sdpa, "attention_block": block,
            "seed_formula": T * T * D + 4 * T * D * D}
