"""The scale of a computation's rounding error: the tolerance policy's floor.

``rounding_error(fn, tensors, upstream)`` runs ``fn`` (an op's reference) forward and backward
under a dispatch mode that carries, beside every floating tensor the computation makes, a
float64 tensor ``v`` of the same shape: the variance of that value's accumulated rounding
error, to first order, when every operation rounds in its own dtype and each rounding is an
independent error uniform in ±u·|result| (u = eps/2, the largest relative error of one
rounding to nearest; its standard deviation is u/√3). This is the probabilistic form of
Wilkinson's running error analysis (Higham & Mary 2019): errors that are summed grow as the
root of the sum of their squares (independent errors of T terms cost √T, not T, of them).

- pointwise ``y = f(a, b, ...)``: v(y) = Σ_i (∂f/∂a_i)² v(a_i) + (s(y)·y)² (selections such
  as ``where``, ``neg``, ``relu`` do not round); s(dtype) = u/√3;
- sums and products of arrays (``sum``, ``mean``, ``mm``, ``bmm``, ...), multilinear in their
  inputs: v(y) = Σ_i f(a_1², .., v(a_i), .., a_n²) + n·(s(acc)·f(|a_1|, .., |a_n|))²: the
  errors of the terms add in quadrature, and the sum of n terms rounds n times (its products
  and partial sums), each time at a magnitude no larger than Σ|terms|, in the accumulation
  dtype (float32 for half inputs, as every kernel here and torch's accumulate). This holds
  for any order of summation: tree, sequential, blocked over tiles or Welford's updates, so
  a kernel is free to choose one; + (s(y)·y)² when the sum is rounded to a narrower dtype;
- data movement (views, ``cat``, indexing, ...) moves the variances with the values; a cast to
  a narrower dtype adds (s(new)·y)²;
- other ops run a decomposition (``torch._decomp``'s, or the two below), so every op of the
  reference is reduced to the rules above.

Inputs are exact (the spec casts its inputs before anything runs). Autograd runs the backward's
ops through the same mode, so gradients get their own scales. The scale is σ = √v.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch._decomp import decomposition_table
from torch.utils._python_dispatch import TorchDispatchMode

from mixology.numerics.dtypes import accumulation_dtype

aten = torch.ops.aten
F64 = torch.float64

# Ops that only move, select or copy values: the same op applied to the bounds.
_MOVE = {
    aten.view, aten._unsafe_view, aten.reshape, aten._reshape_alias, aten.permute,
    aten.transpose, aten.t, aten.expand, aten.unsqueeze, aten.squeeze, aten.select,
    aten.slice, aten.index, aten.index_select, aten.gather, aten.cat, aten.stack, aten.clone,
    aten.alias, aten.detach, aten.unbind, aten.split, aten.split_with_sizes, aten.chunk,
    aten.narrow, aten.diagonal, aten.flip, aten.roll, aten.repeat, aten.constant_pad_nd,
    aten.as_strided, aten.select_backward, aten.slice_backward, aten.index_put,
    aten.unfold, aten.tril, aten.triu, aten.lift_fresh, aten.lift_fresh_copy,
    aten.new_empty_strided, aten.movedim, aten.contiguous,
    aten.expand_copy, aten.permute_copy, aten.view_copy, aten.unsqueeze_copy,
    aten.squeeze_copy, aten.transpose_copy, aten.t_copy, aten.diagonal_backward,
    aten.scatter, aten.masked_scatter, aten.view_as_real,
}
# Casts: the bound moves with the value; narrowing rounds once more.
_CAST = {aten._to_copy, aten.copy_, aten.copy, aten.to, torch.ops.prims.convert_element_type}
# Reductions and products, multilinear in their floating inputs with non-negative coefficients.
_MULTILINEAR = {aten.sum, aten.mean, aten.mm, aten.bmm, aten.dot, aten.mv, aten.cumsum,
                aten.index_add, aten.scatter_add}
# Maxima: the bound of the selected element is at most the largest bound.
_EXTREMA = {aten.amax, aten.amin, aten.max, aten.min}
# Pointwise ops that select or negate without rounding.
_EXACT = {aten.neg, aten.abs, aten.where, aten.relu, aten.threshold_backward, aten.masked_fill,
          aten.clamp_min, aten.clamp_max, aten.clamp, aten.maximum, aten.minimum}
# Creations: values, not results of arithmetic on the inputs.
_FACTORY = {aten.zeros, aten.ones, aten.full, aten.empty, aten.empty_strided, aten.arange,
            aten.rand, aten.randn, aten.eye, aten.scalar_tensor, aten.zeros_like,
            aten.ones_like, aten.full_like, aten.empty_like, aten.new_zeros, aten.new_ones,
            aten.new_full, aten.new_empty, aten.rand_like, aten.randn_like, aten.bernoulli,
            aten.randperm, aten.linspace, aten.zero, aten.fill}


def unit(dtype: torch.dtype) -> float:
    """s: the standard deviation of one rounding to nearest in ``dtype``, relative to the
    value: a uniform error in ±u, u = eps/2, has standard deviation u/√3."""
    return torch.finfo(dtype).eps / 2 / math.sqrt(3)


def _restride(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``v`` with the strides of ``like``, so that a view that works on the value works on it."""
    if v.stride() == like.stride():
        return v
    out = torch.empty_strided(like.shape, like.stride(), dtype=v.dtype, device=v.device)
    try:
        return out.copy_(v)
    except RuntimeError:  # overlapping memory (an expanded value): its variances are equal
        return v.contiguous()


def _is_float(t) -> bool:
    return isinstance(t, torch.Tensor) and t.is_floating_point()


def _finite(e: torch.Tensor) -> torch.Tensor:
    """Variances are kept finite: where a value is itself Inf/NaN, the comparison of non-finite
    values decides, not the floor."""
    return torch.nan_to_num(e, nan=0.0, posinf=0.0, neginf=0.0)


def _tree(x, fn):
    if isinstance(x, (list, tuple)):
        return type(x)(_tree(a, fn) for a in x)
    return fn(x)


def _leaves(x):
    if isinstance(x, (list, tuple)):
        for a in x:
            yield from _leaves(a)
    else:
        yield x


class RoundingError(TorchDispatchMode):
    """Carries the float64 variance of the rounding error beside every floating tensor made
    under it."""

    def __init__(self):
        super().__init__()
        self._variances: dict[tuple, torch.Tensor] = {}

    @staticmethod
    def _key(t: torch.Tensor) -> tuple:
        # The view, not the Python object: autograd re-wraps saved tensors (same memory).
        return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape),
                tuple(t.stride()), t.dtype, t.device)

    def variance(self, t: torch.Tensor) -> torch.Tensor:
        e = self._variances.get(self._key(t))
        if e is None:
            return torch.zeros(t.shape, dtype=F64, device=t.device)
        return e

    def _set(self, t, e) -> None:
        if _is_float(t):
            self._variances[self._key(t)] = _finite(e.to(F64).expand(t.shape))

    def _abs64(self, a):
        return a.detach().to(F64).abs() if _is_float(a) else a

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        packet = func.overloadpacket
        if packet not in _RULED and func in _decompositions():
            with self:  # re-enter: the decomposition's ops are bounded one by one
                return _decompositions()[func](*args, **kwargs)
        if func._schema.is_mutable and packet in _FACTORY:  # filled in place: exact values
            self._variances.pop(self._key(args[0]), None)
            return func(*args, **kwargs)
        if func._schema.is_mutable:  # in place: bound it before it overwrites its input
            copies = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
            e = self._rule(packet, func, args, kwargs, func(*copies, **kwargs))
            out = func(*args, **kwargs)
            self._set(args[0], e)
            return out
        out = func(*args, **kwargs)
        if packet in _FACTORY or not any(_is_float(o) for o in _leaves(out)):
            return out
        e = self._rule(packet, func, args, kwargs, out)
        for o, eo in zip(_leaves(out), _leaves(e), strict=False):
            if eo is not None:
                self._set(o, eo)
        return out

    def _rule(self, packet, func, args, kwargs, out):
        if packet in _CAST:  # (broadcast to out's shape by _set)
            src = args[1] if packet in (aten.copy_, aten.copy) else args[0]
            e = self.variance(src)
            if _is_float(src) and torch.finfo(out.dtype).eps > torch.finfo(src.dtype).eps:
                e = e + (unit(out.dtype) * self._abs64(out)) ** 2
            return e
        if packet in _MOVE:  # the same op on variances laid out like the values (views)
            def laid_out(x):
                return _restride(self.variance(x), x) if _is_float(x) else x

            return _tree(func(*_tree(args, laid_out), **kwargs),
                         lambda e: e if _is_float(e) else None)
        if packet in _EXTREMA:
            e = func(*_tree(args, lambda x: self.variance(x) if _is_float(x) else x), **kwargs)
            return _tree(e, lambda t: t if _is_float(t) else None)
        if packet in _MULTILINEAR:
            return self._multilinear(func, args, kwargs, out)
        if torch.Tag.pointwise in func.tags:
            return self._pointwise(packet, func, args, kwargs, out)
        raise NotImplementedError(f"mixology.numerics.rounding: no rule for {func}")

    def _multilinear(self, func, args, kwargs, out):
        mags = [self._abs64(a) for a in args]
        kwargs = {k: v for k, v in kwargs.items() if k != "dtype"}  # variances stay float64
        # the sum's own rounding: n roundings (n terms per output element, found by summing
        # ones), each of a partial sum or product no larger than Σ|terms|, whatever the order
        # (tree, sequential, blocked, Welford-like): variance ≤ n·(s·Σ|terms|)²
        n = args[0].numel() // max(out.numel(), 1) if func.overloadpacket is aten.mean else 1
        terms = func(*[torch.ones_like(m) if _is_float(a) else a
                       for a, m in zip(args, mags, strict=True)], **kwargs) * n
        v = terms.clamp(min=1) * (unit(accumulation_dtype(out.dtype)) * func(*mags, **kwargs)) ** 2
        # errors already in the terms add up in quadrature: coefficients 1 (1/n for a mean)
        squares = [m ** 2 if _is_float(a) else m for a, m in zip(args, mags, strict=True)]
        for i, a in enumerate(args):
            if _is_float(a) and torch.count_nonzero(vi := self.variance(a)):
                v = v + func(*[vi if j == i else q for j, q in enumerate(squares)],
                             **kwargs) / max(n, 1)
        if accumulation_dtype(out.dtype) != out.dtype:  # the sum is rounded to out's dtype
            v = v + (unit(out.dtype) * self._abs64(out)) ** 2
        return v

    def _pointwise(self, packet, func, args, kwargs, out):
        e = torch.zeros(out.shape, dtype=F64, device=out.device)
        if packet not in _EXACT:
            e = e + (unit(out.dtype) * self._abs64(out)) ** 2
        args64 = [a.detach().to(F64) if _is_float(a) else a for a in args]
        for i, a in enumerate(args):
            if not _is_float(a):
                continue
            ei = self.variance(a)
            if not torch.count_nonzero(ei):
                continue
            slope = _SLOPES[packet] if packet in _SLOPES else _central_difference
            e = e + _finite(slope(func, args64, kwargs, i) ** 2 * ei.expand(a.shape))
        return e


def _mask(t) -> torch.Tensor:
    return t.to(F64)


# |∂f/∂args[i]| of the pointwise ops references are made of, in float64.
_SLOPES: dict = {
    aten.add: lambda f, a, k, i: torch.ones_like(a[i]) * (abs(k.get("alpha", 1)) if i else 1),
    aten.sub: lambda f, a, k, i: torch.ones_like(a[i]) * (abs(k.get("alpha", 1)) if i else 1),
    aten.rsub: lambda f, a, k, i: torch.ones_like(a[i]),
    aten.mul: lambda f, a, k, i: (_mask(a[1 - i]) if isinstance(a[1 - i], torch.Tensor)
                                  else torch.full_like(a[i], abs(a[1 - i]))),
    aten.div: lambda f, a, k, i: (1 / a[1] if i == 0 and isinstance(a[1], torch.Tensor)
                                  else torch.full_like(a[0], 1 / abs(a[1])) if i == 0
                                  else a[0] / a[1] ** 2),
    aten.pow: lambda f, a, k, i: a[1] * a[0] ** (a[1] - 1),
    aten.rsqrt: lambda f, a, k, i: 0.5 * a[0].abs() ** -1.5,
    aten.sqrt: lambda f, a, k, i: 0.5 / a[0].sqrt(),
    aten.exp: lambda f, a, k, i: a[0].exp(),
    aten.log: lambda f, a, k, i: 1 / a[0],
    aten.reciprocal: lambda f, a, k, i: 1 / a[0] ** 2,
    aten.sin: lambda f, a, k, i: a[0].cos(),
    aten.cos: lambda f, a, k, i: a[0].sin(),
    aten.tanh: lambda f, a, k, i: 1 - a[0].tanh() ** 2,
    aten.sigmoid: lambda f, a, k, i: a[0].sigmoid() * (1 - a[0].sigmoid()),
    aten.erf: lambda f, a, k, i: 2 / math.sqrt(math.pi) * (-a[0] ** 2).exp(),
    aten.neg: lambda f, a, k, i: torch.ones_like(a[0]),
    aten.abs: lambda f, a, k, i: torch.ones_like(a[0]),
    aten.where: lambda f, a, k, i: _mask(a[0] if i == 1 else ~a[0]),
    aten.masked_fill: lambda f, a, k, i: _mask(~a[1]),
    aten.relu: lambda f, a, k, i: _mask(a[0] > 0),
    aten.threshold_backward: lambda f, a, k, i: _mask(a[1] > a[2]) if i == 0 else 0 * a[1],
    aten.clamp_min: lambda f, a, k, i: _mask(a[0] > a[1]) if i == 0 else _mask(a[0] <= a[1]),
    aten.clamp_max: lambda f, a, k, i: _mask(a[0] < a[1]) if i == 0 else _mask(a[0] >= a[1]),
    aten.maximum: lambda f, a, k, i: _mask(a[i] >= a[1 - i]),
    aten.minimum: lambda f, a, k, i: _mask(a[i] <= a[1 - i]),
}


def _central_difference(func, args64, kwargs, i) -> torch.Tensor:
    """∂func/∂args[i] by a central difference in float64, for a pointwise op with neither a
    slope above nor a decomposition (forward AD does not run below the autograd keys, where
    dispatch modes run): moving every element of args[i] at once moves each output by its own
    derivative."""
    a = args64[i]
    h = 1e-6 * a.abs().clamp_min(1.0)

    def at(shift):
        return func(*[a + shift if j == i else b for j, b in enumerate(args64)], **kwargs)

    return (at(h) - at(-h)) / (2 * h)


def _var_mean(a, dim=None, *, correction=None, keepdim=False):
    """(var, mean) in two passes over ops the rules know (torch's own decomposition goes down
    to prims)."""
    dims = list(range(a.ndim)) if dim is None else [d % a.ndim for d in dim]
    n = math.prod(a.shape[d] for d in dims)
    mean = a.mean(dims, keepdim=True)
    dof = max(n - (1 if correction is None else correction), 0)
    var = ((a - mean) ** 2).sum(dims, keepdim=keepdim) / dof
    return var, (mean if keepdim else mean.squeeze(dims))


def _native_layer_norm(x, normalized_shape, weight, bias, eps):
    """LayerNorm's forward as torch computes it (statistics in the accumulation dtype)."""
    dims = list(range(x.ndim - len(normalized_shape), x.ndim))
    xa = x.to(accumulation_dtype(x.dtype))
    var, mean = _var_mean(xa, dims, correction=0, keepdim=True)
    rstd = torch.rsqrt(var + eps)
    out = (xa - mean) * rstd
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out.to(x.dtype), mean, rstd


# Ops with a rule of their own (the rest are decomposed where torch can); checked on every
# dispatched op, so built once.
_RULED = frozenset(_CAST | _MOVE | _MULTILINEAR | _EXTREMA | _FACTORY | _SLOPES.keys())
_DECOMP: dict = {}


def _decompositions() -> dict:
    if not _DECOMP:
        _DECOMP.update(decomposition_table)
        _DECOMP[aten.var_mean.correction] = _var_mean
        _DECOMP[aten.var.correction] = lambda *a, **k: _var_mean(*a, **k)[0]
        _DECOMP[aten.native_layer_norm.default] = _native_layer_norm
    return _DECOMP


def rounding_error(fn: Callable, tensors: Sequence[torch.Tensor],
                   upstream: torch.Tensor | None = None) -> list[torch.Tensor]:
    """The scale σ (float64, shaped like each result) of the rounding error of ``[y, *grads]``
    of ``fn(*tensors)`` (just ``[y]`` without an upstream gradient), computed in the tensors'
    own dtype."""
    leaves = [t.detach().requires_grad_(upstream is not None) for t in tensors]
    mode = RoundingError()
    with mode:
        y = fn(*leaves)
        out = [mode.variance(y)]
        if upstream is not None:
            grads = torch.autograd.grad(y, leaves, upstream.to(y.dtype), allow_unused=True)
            out += [torch.zeros(t.shape, dtype=F64, device=t.device) if g is None
                    else mode.variance(g) for g, t in zip(grads, leaves, strict=True)]
    return [v.sqrt() for v in out]
