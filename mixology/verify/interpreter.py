"""Triton's CPU interpreter (``TRITON_INTERPRET=1``), made to behave as compiled Triton does on
CUDA, so that a correct kernel is not rejected for the interpreter's sake.

Each departure of the interpreter (triton 3.x) has one shim here, and a test in
tests/kernels/test_interpreter.py that shows the departure without it and the fix with it:

- ``float_arguments``: a Python float argument reaches the kernel as a bare ``float``, so
  ``eps.to(tl.float32)`` raises AttributeError. On CUDA it is an fp32 scalar. The shim passes it
  as one.
- ``bfloat16_arithmetic``: the interpreter keeps bfloat16 values as their 16-bit patterns
  (numpy has no bfloat16) and applies arithmetic, comparisons and math to the patterns as
  integers: bf16 + bf16 gives garbage. On CUDA each operation is computed in float32 and rounded
  to bfloat16. The shim computes on the decoded values and rounds to nearest even.
- ``bfloat16_rounding``: casts from float32 (and float64) to bfloat16 truncate toward zero;
  CUDA rounds to nearest even (``fp_downcast_rounding`` unset). The shim rounds to nearest even.
- ``libdevice``: ``triton.language.extra.libdevice``'s functions are stubs that return None in
  the interpreter (``libdevice.tanh(x)`` is None); the shim gives them numpy implementations in
  float32/float64, as libdevice takes, and a clear error for a function it lacks.

:func:`speed_up` (applied with the first of mixology's kernels, whenever the interpreter is on)
changes no result: the interpreter finds the builtins it patches at every launch by
``inspect.getmembers`` of triton.language, its tensor and math (about a quarter of a small
kernel's launch); it lists them once instead.

:func:`install` applies every shim, once, and only when the interpreter is on; verify,
``mixology.check`` and the pytest plugin install them before checking a candidate.
mixology's own kernels are written not to need them: they round to bfloat16 themselves
(``cast_out``) and take no Python float beside float64 tensors (gpu-check refuses one).
"""

from __future__ import annotations

import functools
import os

import numpy as np

SHIMS = ("float_arguments", "bfloat16_arithmetic", "bfloat16_rounding", "libdevice")
_installed: set[str] = set()


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def install(shims=SHIMS) -> tuple[str, ...]:
    """Apply ``shims`` (default: every one) to Triton's interpreter, each at most once; nothing
    without ``TRITON_INTERPRET=1`` or without triton. Returns the shims now installed."""
    if not interpreting():
        return ()
    try:
        from triton.runtime import interpreter  # noqa: F401
    except ImportError:  # no triton: no Triton kernel to interpret
        return ()
    for name in shims:
        if name not in SHIMS:
            raise ValueError(f"shims: unknown shim {name!r}; known: {', '.join(SHIMS)}")
        if name not in _installed:
            globals()[f"_install_{name}"]()
            _installed.add(name)
    return tuple(sorted(_installed))


# --- speed -------------------------------------------------------------------------------

_sped_up = [False]


def speed_up() -> bool:
    """List the builtins of each package the interpreter patches once, not at every launch.
    The same members are patched: a cached name whose attribute has since changed is patched
    if it is still a builtin, as a fresh listing would. Nothing without the interpreter."""
    if _sped_up[0] or not interpreting():
        return _sped_up[0]
    import inspect  # only where the interpreter runs

    try:
        # triton is optional: loaded where a kernel runs
        import triton.language as tl
        from triton.runtime import interpreter
    except ImportError:  # no triton: no Triton kernel to interpret
        return False
    builtins: dict[int, tuple[object, list]] = {}  # id(pkg) -> (pkg, [(name, member)])

    def patch_builtin(pkg, builder, scope):
        entry = builtins.get(id(pkg))
        if entry is None or entry[0] is not pkg:
            members = [(n, m) for n, m in inspect.getmembers(pkg) if tl.core.is_builtin(m)]
            entry = builtins[id(pkg)] = (pkg, members)
        for name, member in entry[1]:
            now = getattr(pkg, name, None)
            if now is not member:  # patched by an enclosing launch (then skipped), or replaced
                if not tl.core.is_builtin(now):
                    continue
                member = now
            interpreter._patch_attr(pkg, name, member, builder, scope)

    interpreter._patch_builtin = patch_builtin
    _sped_up[0] = True
    return True


# --- float arguments -----------------------------------------------------------------------

def _install_float_arguments():
    # on use: triton is optional, and patched only when the shims are installed
    import triton.language as tl
    from triton.runtime import interpreter

    convert = interpreter._implicit_cvt

    @functools.wraps(convert)
    def implicit_cvt(arg):
        if isinstance(arg, float):  # bool and int are handled (bool is not a float)
            handle = interpreter.TensorHandle(np.array([arg], dtype=np.float32), tl.float32)
            return tl.tensor(handle, tl.float32)
        return convert(arg)

    interpreter._implicit_cvt = implicit_cvt


# --- bfloat16 ------------------------------------------------------------------------------

def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    """float32 values of bfloat16 bit patterns (uint16): exact."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) of float32 values, rounded to nearest even (NaN stays NaN,
    with its sign)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((u + (np.uint32(0x7FFF) + ((u >> 16) & 1))) >> 16).astype(np.uint16)
    nan = ((u >> 16) & 0x8000).astype(np.uint16) | np.uint16(0x7FC0)
    return np.where(np.isnan(x), nan, rounded).astype(np.uint16)


def _install_bfloat16_arithmetic():
    # on use: triton is optional, and patched only when the shims are installed
    import triton.language as tl
    from triton.runtime.interpreter import InterpreterBuilder, TensorHandle

    def is_bf16(h):
        return isinstance(h, TensorHandle) and h.dtype.scalar == tl.bfloat16

    def decoded(h):
        return TensorHandle(bf16_bits_to_f32(h.data), tl.float32) if is_bf16(h) else h

    def rounded(h):
        if h.data.dtype == np.float32:
            return TensorHandle(f32_to_bf16_bits(h.data), tl.bfloat16)
        return h  # a comparison's boolean result

    def in_float32(method):
        @functools.wraps(method)
        def run(self, *args):
            *handles, op = args
            if not any(is_bf16(h) for h in handles):
                return method(self, *args)
            return rounded(method(self, *(decoded(h) for h in handles), op))

        return run

    for name in ("binary_op", "unary_op", "ternary_op"):
        setattr(InterpreterBuilder, name, in_float32(getattr(InterpreterBuilder, name)))

    fma = InterpreterBuilder.create_fma

    @functools.wraps(fma)
    def create_fma(self, x, y, z):
        if not any(is_bf16(h) for h in (x, y, z)):
            return fma(self, x, y, z)
        return rounded(fma(self, decoded(x), decoded(y), decoded(z)))

    InterpreterBuilder.create_fma = create_fma

    # reductions and scans over bfloat16 (tl.sum, tl.max, tl.cumsum, ...): on the values, in
    # float32, rounded once; a generic reduce's combine function goes through binary_op above
    from triton.runtime.interpreter import ReduceOps, ScanOps

    def as_f32(t):
        ty = tl.block_type(tl.float32, t.shape) if t.shape else tl.float32
        return tl.tensor(decoded(t.handle), ty)

    def as_bf16(t):
        if not isinstance(t, tl.tensor) or t.handle.data.dtype != np.float32:
            return t  # an index (argmax)
        ty = tl.block_type(tl.bfloat16, t.shape) if t.shape else tl.bfloat16
        return tl.tensor(rounded(t.handle), ty)

    def on_values(method):
        @functools.wraps(method)
        def run(self, input, *args, **kwargs):
            if input.dtype.scalar != tl.bfloat16:
                return method(self, input, *args, **kwargs)
            out = method(self, as_f32(input), *args, **kwargs)
            return [as_bf16(t) for t in out] if isinstance(out, list) else (
                tuple(as_bf16(t) for t in out) if isinstance(out, tuple) else as_bf16(out))

        return run

    for cls, names in ((ReduceOps, ("sum", "min_max")), (ScanOps, ("cumsum", "cumprod"))):
        for name in names:
            setattr(cls, name, on_values(getattr(cls, name)))


def _install_bfloat16_rounding():
    # on use: triton is optional, and patched only when the shims are installed
    import triton.language as tl
    from triton.runtime.interpreter import InterpreterBuilder, TensorHandle

    cast = InterpreterBuilder.cast_impl

    @functools.wraps(cast)
    def cast_impl(self, src, dst_type):
        source = src.dtype.scalar
        if dst_type.scalar == tl.bfloat16 and source in (tl.float32, tl.float64):
            return TensorHandle(f32_to_bf16_bits(src.data.astype(np.float32)), tl.bfloat16)
        return cast(self, src, dst_type)

    InterpreterBuilder.cast_impl = cast_impl
    InterpreterBuilder.create_fp_trunc = lambda self, src, dst_type: self.cast_impl(src, dst_type)


# --- libdevice -----------------------------------------------------------------------------

def _erf(x):
    # on use: triton is optional, and patched only when the shims are installed
    import math
    return np.vectorize(math.erf, otypes=[x.dtype])(x)


def _erfc(x):
    # on use: triton is optional, and patched only when the shims are installed
    import math
    return np.vectorize(math.erfc, otypes=[x.dtype])(x)


# libdevice name -> numpy function of float32/float64 arrays
LIBDEVICE = {
    "abs": np.abs, "fabs": np.abs, "acos": np.arccos, "acosh": np.arccosh, "asin": np.arcsin,
    "asinh": np.arcsinh, "atan": np.arctan, "atan2": np.arctan2, "atanh": np.arctanh,
    "cbrt": np.cbrt, "ceil": np.ceil, "copysign": np.copysign, "cos": np.cos, "cosh": np.cosh,
    "erf": _erf, "erfc": _erfc, "exp": np.exp, "exp2": np.exp2, "exp10": lambda x: 10.0 ** x,
    "expm1": np.expm1, "floor": np.floor, "fma": lambda x, y, z: x * y + z, "fmax": np.fmax,
    "fmin": np.fmin, "fmod": np.fmod, "hypot": np.hypot, "log": np.log, "log10": np.log10,
    "log1p": np.log1p, "log2": np.log2, "pow": np.power, "rint": np.rint, "round": np.round,
    "nearbyint": np.rint, "rsqrt": lambda x: 1 / np.sqrt(x), "sin": np.sin, "sinh": np.sinh,
    "sqrt": np.sqrt, "tan": np.tan, "tanh": np.tanh, "trunc": np.trunc,
    "div_rn": np.divide, "fast_dividef": np.divide, "fast_expf": np.exp, "fast_logf": np.log,
    "isnan": np.isnan, "isinf": np.isinf, "signbit": np.signbit,
    "isfinited": np.isfinite, "finitef": np.isfinite,
}


def _libdevice_function(name, fn):
    # on use: triton is optional, and patched only when the shims are installed
    import triton.language as tl
    from triton.runtime.interpreter import TensorHandle

    def apply(*args, _semantic=None, **_):
        tensors = [a for a in args if isinstance(a, tl.tensor)]
        if not tensors:
            raise TypeError(f"libdevice.{name}: expected a tensor argument")
        like = max(tensors, key=lambda t: t.handle.data.size)
        scalar = like.dtype.scalar if hasattr(like.dtype, "scalar") else like.dtype
        if scalar not in (tl.float32, tl.float64):
            raise TypeError(f"libdevice.{name} takes fp32 or fp64 (as on CUDA), got {scalar}")
        np_dtype = np.float32 if scalar == tl.float32 else np.float64
        data = [np.asarray(a.handle.data if isinstance(a, tl.tensor)
                           else getattr(a, "value", a), dtype=np_dtype) for a in args]
        with np.errstate(all="ignore"):
            out = np.asarray(fn(*data))
        if out.dtype == np.bool_:
            kind = tl.int1
            ty = tl.block_type(tl.int1, like.shape) if like.shape else tl.int1
            return tl.tensor(TensorHandle(out, kind), ty)
        return tl.tensor(TensorHandle(out.astype(np_dtype), scalar), like.type)

    apply.__name__ = name
    return apply


def _missing(name):
    def missing(*args, **kwargs):
        raise NotImplementedError(f"libdevice.{name} has no implementation in mixology's "
                                  "interpreter shims (mixology.verify.interpreter.LIBDEVICE)")

    missing.__name__ = name
    return missing


def _install_libdevice():
    # on use: triton is optional, and patched only when the shims are installed
    import inspect

    # on use: triton is optional, and patched only when the shims are installed
    from triton.language.extra import libdevice
    from triton.runtime import interpreter

    modules = [libdevice]
    try:
        # on use: triton is optional, and patched only when the shims are installed
        from triton.language.extra.cuda import libdevice as cuda_libdevice
        modules.append(cuda_libdevice)
    except ImportError:  # a triton without the CUDA backend's module
        pass
    stubs = {}  # id(stub function) -> interpreter implementation
    table = {}
    for module in modules:
        for name, value in vars(module).items():
            if inspect.isfunction(value) and not name.startswith("_"):
                impl = table.setdefault(name, _libdevice_function(name, LIBDEVICE[name])
                                        if name in LIBDEVICE else _missing(name))
                stubs[id(value)] = impl
    patch_lang = interpreter._patch_lang

    @functools.wraps(patch_lang)
    def _patch_lang(fn):
        scope = patch_lang(fn)
        names = fn.__globals__
        for name, value in list(names.items()):
            if id(value) in stubs:  # from triton.language.extra.libdevice import tanh
                scope.set_attr(_Globals(names), name, stubs[id(value)])
            elif value in modules:  # libdevice.tanh(x)
                for fname, impl in table.items():
                    scope.set_attr(value, fname, impl)
        return scope

    interpreter._patch_lang = _patch_lang


class _Globals:
    """A function's globals as attributes, so that the interpreter's patch scope restores them."""

    def __init__(self, names: dict):
        object.__setattr__(self, "_names", names)

    def __getattr__(self, name):
        try:
            return self._names[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self._names[name] = value

    def __delattr__(self, name):
        del self._names[name]
