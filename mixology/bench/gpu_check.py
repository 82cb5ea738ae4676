"""Compile every Triton kernel of mixology for a GPU target, without a GPU, and read what the
interpreter cannot show: registers, spills, shared memory, the widths of global loads and
stores, and 32-bit pointer offsets.

How: the ops are called on ``meta`` tensors (shapes and dtypes, no memory) with every
``JITFunction.run`` replaced by a recorder, so each launch the ops' own heuristics make
(BLOCK sizes, num_warps, grids) is captured without running; forward and backward. Each
launch is bound the way Triton's runtime binds it (its specialization: argument types,
divisibility by 16, strides of 1) for the target, deduplicated by kernel, dtypes, constexprs,
num_warps and num_stages, then ``triton.compile``'d for ``GPUTarget("cuda", cc, 32)``. The
cubin is read with the ``cuobjdump`` that ships with the triton wheel; the PTX and TTIR are
read for global access widths and ``tt.addptr`` offsets.

Sizes: ``tests`` (the spec's tile-boundary dims, every float dtype, contiguous and strided
layouts), ``perf`` (the perf sweep's ``full`` GPU points), or ``all``.

    python -m mixology gpu-check [--target sm_90,sm_80] [--sizes tests|perf|all]
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor

import torch

from mixology import registry
from mixology.bench import sweep
from mixology.ops import FAMILIES, family

# Launch configurations allowed to spill: (kernel, a piece of "config dtypes"), the reason.
_WHOLE_ROW = ("whole rows of D > 4096 in registers (BLOCK_D = 8192, one row a program, 16 "
              "warps: 128 registers a thread at most); the spill is 0.1-0.7 KB a thread, "
              "L1-resident, where a column-tiled kernel would read x and dy twice")
_FLOAT64 = ("float64 is the spec's checking dtype, never benchmarked: its values take two "
            "registers, and the row kernels sized for 16 float32 values a thread spill "
            "8-700 B in float64 (16 warps instead of 8 did not remove it)")
ALLOWED_SPILLS: list[tuple[str, str, str]] = [
    ("_norm_bwd_kernel", "BLOCK_D=8192", _WHOLE_ROW),
    ("_fused_bwd_kernel", "BLOCK_D=8192", _WHOLE_ROW),
    ("_fused_fwd_kernel", "BLOCK_D=8192", _WHOLE_ROW),
    *((k, "ACC=fp64", _FLOAT64) for k in ("_norm_fwd_kernel", "_norm_bwd_kernel",
                                          "_fused_fwd_kernel", "_fused_bwd_kernel")),
    *((k, "ACC=fp64 BLOCK_T=16 BLOCK_D=64 BLOCK_I=1 BLOCK_E=64", _FLOAT64 + "; quadratic "
       "attention's backward at d = 33..64 holds a 4096-value float64 state block beside its "
       "0/1 contraction tiles and spills 72-112 B") for k in ("_bwd_dq_kernel",
                                                             "_bwd_dkdv_kernel")),
    ("_norm_bwd_kernel", "sm_80 RMS=False ACC=fp32 BLOCK_ROWS=8 BLOCK_D=512 ",
     "rows that are not 16-byte aligned (D = 257 in half precision: 2-byte loads): ptxas "
     "for sm_80 stops at 128 registers and spills 8 B; aligned rows (the perf sweep's D = "
     "512) take 111 registers and do not spill, nor does sm_90"),
]

# Kernels whose index x stride products may stay 32-bit, with the reason. Empty: none may.
ALLOWED_I32_OFFSETS: dict[str, str] = {}


def spill_allowed(kernel: str, target: str, config: str, dtypes: str) -> str | None:
    """The reason a configuration may spill, or None."""
    return next((why for k, piece, why in ALLOWED_SPILLS
                 if k == kernel and piece in f"{target} {config} {dtypes}"), None)

TARGETS = {"sm_90": 90, "sm_80": 80}
SM_COUNT = {90: 132, 80: 108}  # H100 SXM, A100: the persistent grids' program count
SHARED_LIMIT = {90: 232448, 80: 166912}  # bytes of shared memory per block (opt-in maximum)


@dataclasses.dataclass
class Launch:
    """One captured launch: the kernel and the arguments it was called with (meta tensors)."""

    kernel: object  # triton.runtime.jit.JITFunction
    args: tuple
    kwargs: dict
    origin: str  # what called it: "op impl shape dtype"


@dataclasses.dataclass
class Variant:
    """A launch configuration to compile: kernel, bound signature and options."""

    module: str
    name: str
    signature: dict
    constexprs: dict
    attrs: dict
    options: dict
    origin: str
    count: int = 1  # launches that share it

    user_constexprs: tuple[str, ...] = ()  # the kernel's own tl.constexpr parameters

    @property
    def config(self) -> str:
        names = list(self.signature)
        user = [f"{names[i]}={_short(v)}" for (i,), v in sorted(self.constexprs.items())
                if names[i] in self.user_constexprs and names[i] != "EMULATE_RNE"]
        return " ".join(user + [f"w{self.options['num_warps']}",
                                f"s{self.options['num_stages']}"])

    @property
    def dtypes(self) -> str:
        ptrs = sorted({t[1:] for t in self.signature.values() if t.startswith("*")})
        return ",".join(ptrs)

    @property
    def fp32_scalars(self) -> str:
        """The float32 scalar parameters of a launch that takes float64 tensors: Triton binds
        a Python float argument as fp32, so a float64 kernel would compute with its value
        rounded (Triton's interpreter passes the float unrounded: only this check sees it)."""
        if "*fp64" not in self.signature.values():
            return ""
        return ",".join(n for n, t in self.signature.items() if t == "fp32")


@dataclasses.dataclass
class Report:
    kernel: str
    target: str
    config: str
    dtypes: str
    registers: int
    local: int  # bytes of local memory per thread
    stack: int  # bytes of stack per thread: where ptxas puts spilled registers
    shared: int
    ld_widths: tuple[int, ...]
    st_widths: tuple[int, ...]
    i32_offsets: int  # 32-bit index x stride products (i32_products)
    launches: int
    origin: str
    error: str = ""
    fp32_scalars: str = ""  # float32 scalar parameters of a launch with float64 tensors

    @property
    def problems(self) -> list[str]:
        out = []
        if self.error:
            out.append(f"does not compile: {self.error}")
            return out
        if (self.local or self.stack) and not spill_allowed(self.kernel, self.target,
                                                            self.config, self.dtypes):
            out.append(f"spills: {self.stack} B of stack, {self.local} B of local memory "
                       "per thread")
        if self.i32_offsets and self.kernel not in ALLOWED_I32_OFFSETS:
            out.append(f"{self.i32_offsets} 32-bit index x stride products: offsets wrap "
                       "past 2^31 elements")
        if self.fp32_scalars:
            out.append(f"float32 scalar argument(s) {self.fp32_scalars} in a float64 launch: a "
                       "Python float reaches the kernel rounded to float32 (pass a tensor)")
        limit = SHARED_LIMIT[TARGETS[self.target]]
        if self.shared > limit:
            out.append(f"shared memory {self.shared} B above the {self.target} limit {limit} B")
        return out


def _short(v) -> str:
    s = str(v)
    return s.replace("triton.language.", "").replace("float", "f")


# --- capture -----------------------------------------------------------------------------

@dataclasses.dataclass
class Capture:
    launches: list[Launch] = dataclasses.field(default_factory=list)
    origin: str = ""  # set by the caller before each call


@contextlib.contextmanager
def capture(sm_count: int) -> Iterator[Capture]:
    """Record every Triton launch instead of running it; ops accept meta tensors meanwhile."""
    # triton is an optional dependency: imported where gpu-check runs
    from triton.runtime.jit import JITFunction

    # triton is optional: loaded where a kernel runs
    from mixology.ops._kernels import triton_utils

    got = Capture()

    def run(self, *args, grid, warmup, **kwargs):
        got.launches.append(Launch(self, args, kwargs, got.origin))

    saved = JITFunction.run
    JITFunction.run = run
    triton_utils.CAPTURE_SM_COUNT = sm_count
    try:
        yield got
    finally:
        JITFunction.run = saved
        triton_utils.CAPTURE_SM_COUNT = None


def _meta(shape, dtype, layout="contiguous"):
    """A meta tensor of ``shape``: contiguous, or with its last two dims stored transposed."""
    if layout == "transposed" and len(shape) >= 2:
        t = torch.empty(*shape[:-2], shape[-1], shape[-2], dtype=dtype, device="meta")
        return t.transpose(-1, -2)
    return torch.empty(*shape, dtype=dtype, device="meta")


def _call(fn: Callable, args: list, backward: bool) -> None:
    leaves = [a.requires_grad_() if isinstance(a, torch.Tensor) and a.is_floating_point()
              and backward else a for a in args]
    y = fn(*leaves)
    outs = [t for t in (y if isinstance(y, tuple) else (y,))  # an op may return several
            if isinstance(t, torch.Tensor) and t.requires_grad]
    if backward and outs:
        torch.autograd.backward(outs, [torch.empty_like(t) for t in outs])


# The spec's shapes around tile boundaries (spec/strategies.py boundary values), for each
# family's gpu_check_calls, in every float dtype and two layouts.
@dataclasses.dataclass(frozen=True)
class Sizes:
    dims: tuple[int, ...] = (1, 2, 3, 7, 16, 17, 31, 33, 63, 64, 65, 127, 129, 255, 257, 511,
                             513, 1023, 1025, 2047, 2049, 4095, 4097)
    head_dims: tuple[int, ...] = (1, 2, 3, 4, 7, 8, 15, 16, 17, 32, 33, 64)
    ts: tuple[int, ...] = (1, 2, 15, 16, 17, 63, 64, 65, 1021, 4096)


FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
LAYOUTS = ("contiguous", "transposed")


def _op_calls() -> Iterator[tuple[str, str, Callable, list]]:
    """(op, shape, call, args): every family's ``gpu_check_calls`` in each dtype and layout."""
    sizes = Sizes()
    for dtype in FLOATS:
        for layout in LAYOUTS:
            def meta(shape, contiguous=False, _dtype=dtype, _layout=layout):
                return _meta(shape, _dtype, "contiguous" if contiguous else _layout)

            for name in FAMILIES:
                calls = getattr(family(name), "gpu_check_calls", None)
                for op, shape, impl, args in calls(meta, sizes) if calls else ():
                    yield op, shape, registry.get(op, impl).fn, args


def _perf_calls(got: Capture, ops: set[str] | None) -> Iterator[Callable]:
    """The perf sweep's full GPU points for the Triton implementations, built on meta (a
    build may launch too: a backward alone runs its forward first)."""
    for p in sweep.sweep("full", "cuda"):
        if p.impl.startswith("triton") and (not ops or p.entry in ops):
            got.origin = f"perf {p}"
            yield sweep.ENTRIES[p.entry].build(p, "meta")[0]


def capture_launches(sizes: str, sm_count: int, progress: Callable = lambda s: None,
                     ops: set[str] | None = None) -> list[Launch]:
    with capture(sm_count) as got:
        if sizes in ("tests", "all"):
            for op, shape, fn, args in _op_calls():
                if ops and op not in ops:
                    continue
                got.origin = f"{op} {shape} {args[0].dtype}"
                for backward in (False, True):
                    _call(fn, args, backward)
            progress(f"tests sizes: {len(got.launches)} launches")
        if sizes in ("perf", "all"):
            n = len(got.launches)
            for fn in _perf_calls(got, ops):
                fn()
            progress(f"perf sizes: {len(got.launches) - n} launches")
    return got.launches


# --- bind and compile --------------------------------------------------------------------

def bind(launch: Launch, cc: int) -> Variant:
    """The signature, constexprs, attributes and options Triton's runtime would compile for
    this launch on the target (triton.runtime.jit.JITFunction.run's own steps)."""
    k = launch.kernel
    backend, binder = _binder(k, cc)
    kwargs = dict(launch.kwargs, debug=False, instrumentation_mode="",
                  fpsan_homomorphic_casts=False)
    bound, specialization, options = binder(*launch.args, **kwargs)
    options, signature, constexprs, attrs = k._pack_args(backend, kwargs, bound,
                                                         specialization, options)
    opts = {"num_warps": options.num_warps, "num_stages": options.num_stages}
    return Variant(k.fn.__module__, k.fn.__name__, signature, constexprs, attrs, opts,
                   launch.origin, user_constexprs=tuple(p.name for p in k.params
                                                        if p.is_constexpr))


@functools.cache
def _binder(kernel, cc: int):
    """The target's backend and the kernel's argument binder (built once: the spec's sizes
    make tens of thousands of launches of a few dozen kernels)."""
    # triton is optional: loaded where a kernel runs
    from triton.backends.compiler import GPUTarget
    from triton.compiler import make_backend
    from triton.runtime.jit import create_function_from_signature

    backend = make_backend(GPUTarget("cuda", cc, 32))
    return backend, create_function_from_signature(kernel.signature, kernel.params, backend)


def variants(launches: list[Launch], cc: int) -> list[Variant]:
    """Deduplicated by kernel, dtypes, the kernel's constexprs, num_warps and num_stages (the
    first launch of each kind is compiled: divisibility and strides of 1 come from it)."""
    seen: dict[tuple, Variant] = {}
    for launch in launches:
        v = bind(launch, cc)
        key = (v.module, v.name, v.dtypes, v.config)
        if key in seen:
            seen[key].count += 1
        else:
            seen[key] = v
    return list(seen.values())


def _tool(name: str) -> str:
    # triton is optional: loaded where a kernel runs
    import triton

    return os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name)


_WIDTH = re.compile(r"\b(ld|st)\.global((?:\.[\w:]+)*)")
_ASYNC = re.compile(r"\bcp\.async\.\w+\.shared\.global[^;]*?,\s*(0x[0-9a-f]+|\d+)\s*[,;]")


def access_widths(ptx: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Bytes per thread of each kind of global load and store in the PTX: ``ld.global.v4.b32``
    is 16, ``cp.async`` (a load into shared memory, pipelined) its copy size."""
    widths: dict[str, set[int]] = {"ld": set(), "st": set()}
    for kind, suffix in _WIDTH.findall(ptx):
        parts = suffix.strip(".").split(".")
        vec = next((int(p[1:]) for p in parts if re.fullmatch(r"v\d", p)), 1)
        bits = next((int(p[1:]) for p in reversed(parts) if re.fullmatch(r"[bfsu]\d+", p)), 0)
        if bits:
            widths[kind].add(vec * bits // 8)
    widths["ld"] |= {int(n, 0) for n in _ASYNC.findall(ptx)}
    return tuple(sorted(widths["ld"])), tuple(sorted(widths["st"]))


_CONST = re.compile(r"^\s*(%[\w.]+) = arith\.constant ", re.M)
_MULI = re.compile(r"^\s*%[\w.]+ = arith\.muli (%[\w.]+), (%[\w.]+) : ([^\n]*?) loc", re.M)


def i32_products(ttir: str) -> int:
    """32-bit multiplications of two runtime values in the TTIR (an index times a stride or a
    size): where an element offset can pass 2^31 and wrap. Products with a constant (a
    program id times its BLOCK) are bounded by the grid and not counted."""
    consts = set(_CONST.findall(ttir))
    return sum(1 for a, b, ty in _MULI.findall(ttir)
               if re.search(r"\bi32\b|xi32>", ty) and a not in consts and b not in consts)


def _resources(cubin: bytes) -> dict[str, int]:
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        out = subprocess.run([_tool("cuobjdump"), "--dump-resource-usage", f.name],
                             capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if "REG:" in x)
    return {k: int(v) for k, v in re.findall(r"(\w+):(\d+)", line)}


def compile_variant(v: Variant, target: str) -> Report:
    # triton is optional: loaded where a kernel runs
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    kernel = getattr(importlib.import_module(v.module), v.name)
    base = dict(kernel=v.name, target=target, config=v.config, dtypes=v.dtypes,
                launches=v.count, origin=v.origin, fp32_scalars=v.fp32_scalars)
    try:
        ck = triton.compile(ASTSource(kernel, v.signature, v.constexprs, v.attrs),
                            target=GPUTarget("cuda", TARGETS[target], 32), options=v.options)
    except Exception as e:  # noqa: BLE001  (reported, fails the check)
        msg = str(e).strip().splitlines()
        return Report(**base, registers=0, local=0, stack=0, shared=0, ld_widths=(),
                      st_widths=(), i32_offsets=0, error=msg[-1] if msg else type(e).__name__)
    res = _resources(ck.asm["cubin"])
    ld, st = access_widths(ck.asm["ptx"])
    return Report(**base, registers=res.get("REG", 0), local=res.get("LOCAL", 0),
                  stack=res.get("STACK", 0), shared=max(ck.metadata.shared, res.get("SHARED", 0)),
                  ld_widths=ld, st_widths=st, i32_offsets=i32_products(ck.asm["ttir"]))


def _compile_star(a):
    return compile_variant(*a)


def cache_key(v: Variant, target: str) -> str:
    """Everything the compile depends on: the kernel's source and the source of every function
    it calls (Triton's own cache_key), Triton's version, the target and the bound launch."""
    # triton is optional: loaded where a kernel runs
    import triton

    kernel = getattr(importlib.import_module(v.module), v.name)
    text = repr((kernel.cache_key, triton.__version__, target, sorted(v.signature.items()),
                 sorted((k, _short(c)) for k, c in v.constexprs.items()),
                 sorted(v.attrs.items()), sorted(v.options.items())))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def load_results(path: str | None) -> dict[str, Report]:
    if not path or not os.path.exists(path):
        return {}
    with open(path) as f:
        rows = json.load(f)
    return {k: Report(**{**r, "ld_widths": tuple(r["ld_widths"]),
                         "st_widths": tuple(r["st_widths"])}) for k, r in rows.items()}


def save_results(path: str, results: dict[str, Report]) -> None:
    rows = [f"{json.dumps(k)}: {json.dumps(dataclasses.asdict(r), sort_keys=True)}"
            for k, r in sorted(results.items())]
    with open(path, "w") as f:  # one line a variant: readable diffs
        f.write("{\n" + ",\n".join(rows) + "\n}\n")


def check(targets=("sm_90", "sm_80"), sizes="all", jobs: int | None = None,
          progress: Callable = lambda s: None, ops: set[str] | None = None,
          cache: dict[str, Report] | None = None) -> dict[str, Report]:
    """Capture, bind, compile and read every launch variant for every target. ``cache``:
    earlier results by cache_key; a variant found there is not compiled again (its compile
    inputs are the same). Returns the results by cache_key."""
    if os.environ.get("TRITON_INTERPRET") == "1":
        raise RuntimeError("gpu-check compiles real kernels: run it with TRITON_INTERPRET unset")
    cache = cache or {}
    results: dict[str, Report] = {}
    work = []
    # captured once: the target's SM count sizes persistent grids and partial buffers only,
    # neither of which is compiled
    launches = capture_launches(sizes, SM_COUNT[TARGETS[targets[0]]], progress, ops)
    for target in targets:
        cc = TARGETS[target]
        vs = variants(launches, cc)
        for v in vs:
            key = cache_key(v, target)
            if key in cache:
                results[key] = dataclasses.replace(cache[key], launches=v.count,
                                                   origin=v.origin, fp32_scalars=v.fp32_scalars)
            else:
                work.append((key, v, target))
        progress(f"{target}: {len(launches)} launches, {len(vs)} variants, "
                 f"{sum(1 for w in work if w[2] == target)} to compile")
    if work:
        jobs = max(1, min(jobs or os.cpu_count() or 1, len(work)))
        ctx = torch.multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
            done = pool.map(_compile_star, [(v, t) for _, v, t in work], chunksize=1)
            for i, ((key, _, _), r) in enumerate(zip(work, done, strict=True), 1):
                results[key] = r
                if i % 25 == 0 or i == len(work):
                    progress(f"compiled {i}/{len(work)}")
    return results


# --- report ------------------------------------------------------------------------------

def _widths(w: tuple[int, ...]) -> str:
    return "/".join(map(str, w)) or "-"


def markdown(reports: list[Report]) -> str:
    rows = ["| kernel | target | config | dtypes | regs | spill B | shared B | ld B | st B "
            "| i32 products | launches |", "|" + "---|" * 11]
    for r in sorted(reports, key=lambda r: (r.kernel, r.target, r.dtypes, r.config)):
        rows.append(f"| {r.kernel} | {r.target} | {r.config} | {r.dtypes} | {r.registers} "
                    f"| {r.stack + r.local} | {r.shared} | {_widths(r.ld_widths)} | "
                    f"{_widths(r.st_widths)} | {r.i32_offsets} | {r.launches} |")
    return "\n".join(rows)


def summary(reports: list[Report]) -> str:
    """Per kernel and target: variants, the most registers, local memory and shared memory."""
    by: dict[tuple[str, str], list[Report]] = {}
    for r in reports:
        by.setdefault((r.kernel, r.target), []).append(r)
    rows = ["| kernel | target | variants | max regs | max spill B | max shared B "
            "| narrowest ld B | widest ld B | max i32 products |", "|" + "---|" * 9]
    for (k, t), rs in sorted(by.items()):
        ok = [r for r in rs if not r.error]
        ld = [w for r in ok for w in r.ld_widths]
        rows.append(f"| {k} | {t} | {len(rs)} | {max((r.registers for r in ok), default=0)} "
                    f"| {max((r.stack + r.local for r in ok), default=0)} "
                    f"| {max((r.shared for r in ok), default=0)} | {min(ld, default=0)} "
                    f"| {max(ld, default=0)} | {max((r.i32_offsets for r in ok), default=0)} |")
    return "\n".join(rows)


def problems(reports: list[Report]) -> list[str]:
    return [f"{r.kernel} [{r.target} {r.config} {r.dtypes}] ({r.origin}): {p}"
            for r in reports for p in r.problems]


