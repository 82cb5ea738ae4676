"""Mutation operators: bugs of common kinds, generated for every op they apply to.

Each operator turns an op's reference into a mutant, a plausible bug, from the op's signature
in its spec file (``spec.signature``: its tensor inputs and their batch dims, the arguments it
could ignore, its output's long dims). ``mixology mutants`` lists them under the operator's
name beside the hand-written ones, and the spec must reject every one:

- ``ignores(arg)``: the argument is replaced by its default, or a fixed value;
- ``detached(input)``: no gradient reaches the input;
- ``input_as_contiguous(input)``: the input's storage read as if it were contiguous (a kernel
  that drops its stride arguments);
- ``upstream_grad_as_contiguous``: the backward reads the upstream gradient that way;
- ``grad_summed_over_batch(input)``: the input's gradient summed over the batch, in every row;
- ``grad_from_first_batch_row(param)``: a parameter's gradient from batch row 0 alone;
- ``low_precision_intermediates``: every intermediate kept in the input dtype (float16 or
  bfloat16) where the reference computes wider: statistics, positions, angles;
- ``tail_unwritten(dim, past)``: the output past a tile boundary along ``dim`` never written
  (NaN);
- ``output_perturbed(k)``, ``grad_perturbed(input, k)``: the result off by k units of the
  reference's own error (its distance from the float64 reference, at least one rounding);
- ``writes_into_upstream_grad``: the backward overwrites the caller's upstream gradient;
- ``not_reentrant``: a second backward (retain_graph=True) gives other gradients.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch.overrides import TorchFunctionMode

from mixology import registry, spec
from mixology.ops import mutants as registered_mutants

KILL_K = 8  # the k of output_perturbed / grad_perturbed that the spec must reject


# --- what the operators share ------------------------------------------------------------

def _params(op: str) -> list[str]:
    return list(inspect.signature(registry.get(op).fn).parameters)


def _replace(args: tuple, index: int, fn: Callable) -> tuple:
    if index >= len(args):
        return args
    return (*args[:index], fn(args[index]), *args[index + 1:])


def _is_float_tensor(t) -> bool:
    return isinstance(t, torch.Tensor) and t.is_floating_point()


def _contiguous_strides(shape) -> tuple[int, ...]:
    strides, n = [], 1
    for size in reversed(shape):
        strides.append(n)
        n *= max(size, 1)
    return tuple(reversed(strides))


def _as_contiguous(t):
    """t's storage read as if t were contiguous, from its storage offset."""
    if not _is_float_tensor(t) or t.numel() == 0 or t.is_contiguous():
        return t
    return torch.as_strided(t, t.shape, _contiguous_strides(t.shape), t.storage_offset())


def _signs(t: torch.Tensor) -> torch.Tensor:
    """±1 of t's shape, the same for every call on that shape."""
    g = torch.Generator().manual_seed(t.numel() * 7919 + t.dim())
    return (torch.randint(0, 2, t.shape, generator=g) * 2 - 1).to(t.device, torch.float64)


def _own_error(low: torch.Tensor, high: Callable) -> float:
    """The reference's error: its result ``low`` against ``high()`` (the float64 reference),
    at least one rounding of the result; in float64, estimated from float32 as the policy
    does (mixology.numerics.tolerance)."""
    ref64 = high().detach().double()
    finite = torch.isfinite(ref64) & torch.isfinite(low.double())
    if not finite.any():
        return 0.0
    scale = float(ref64[finite].abs().max())
    u = torch.finfo(low.dtype).eps / 2
    if low.dtype == torch.float64:
        return u * scale  # one rounding: the float64 reference is its own oracle
    err = float((low.double() - ref64)[finite].abs().max())
    return max(err, u * scale)


class _Identity(torch.autograd.Function):
    """y as it is, with a backward hook: ``backward(g) -> gradient of y``."""

    @staticmethod
    def forward(ctx, y, backward):
        ctx.hook = backward
        ctx.calls = 0
        return y.view_as(y)

    @staticmethod
    def backward(ctx, g):
        ctx.calls += 1
        return ctx.hook(g, ctx.calls), None


class _GradHook(torch.autograd.Function):
    """t as it is, with its gradient replaced by ``hook(gradient)``."""

    @staticmethod
    def forward(ctx, t, hook):
        ctx.hook = hook
        return t.view_as(t)

    @staticmethod
    def backward(ctx, g):
        return ctx.hook(g), None


class _Backward(torch.autograd.Function):
    """``ref(*args)`` whose backward is ``backward(args, grads, gs)``: the reference's own
    gradients of the positional float tensors, changed as the mutant changes them (``gs``:
    the upstream gradient of each output)."""

    @staticmethod
    def forward(ctx, ref, args, backward, *tensors):
        ctx.ref, ctx.args, ctx.backward = ref, args, backward
        ctx.inner = [t.detach().requires_grad_(t.requires_grad) for t in tensors]
        with torch.enable_grad():
            ctx.y = ref(*_fill(args, ctx.inner))
        ctx.several = isinstance(ctx.y, tuple)
        ys = ctx.y if ctx.several else (ctx.y,)
        out = tuple(t.detach() if isinstance(t, torch.Tensor) else t for t in ys)
        return out if ctx.several else out[0]

    @staticmethod
    def backward(ctx, *gs):
        want = [t for t in ctx.inner if t.requires_grad]
        got = iter(_vjp(ctx.y, want, gs, retain_graph=True))
        grads = [next(got) if t.requires_grad else None for t in ctx.inner]
        args = _fill(ctx.args, [t.detach() for t in ctx.inner])
        full = [None] * len(args)
        for j, grad in zip(_positions(args), grads, strict=True):
            full[j] = grad
        full = ctx.backward(args, full, gs)
        return (None, None, None, *[full[j] for j in _positions(args)])


def _outputs(y) -> list:
    """An op's output as a list: several for an op that returns a tuple."""
    return list(y) if isinstance(y, tuple) else [y]


def _vjp(y, inputs, gs, retain_graph=False):
    """The gradients of ``inputs`` given the upstream gradient ``gs[i]`` of each output
    (None: zero), for one output or a tuple of them."""
    pairs = [(t, g) for t, g in zip(_outputs(y), gs, strict=False)
             if isinstance(t, torch.Tensor) and t.requires_grad and g is not None]
    if not pairs:
        return [None] * len(inputs)
    return torch.autograd.grad([t for t, _ in pairs], inputs, [g for _, g in pairs],
                               retain_graph=retain_graph, allow_unused=True)


def _each_output(y, f):
    """``f`` applied to the output, or to each float tensor of a tuple of outputs."""
    if isinstance(y, tuple):
        return tuple(f(t) if _is_float_tensor(t) else t for t in y)
    return f(y) if _is_float_tensor(y) else y


def _positions(args) -> list[int]:
    return [j for j, a in enumerate(args) if _is_float_tensor(a)]


def _fill(args, tensors) -> tuple:
    out, it = list(args), iter(tensors)
    for j in _positions(args):
        out[j] = next(it)
    return tuple(out)


def _with_backward(ref: Callable, backward: Callable) -> Callable:
    def mutant(*args):
        tensors = [args[j] for j in _positions(args)]
        if not any(t.requires_grad for t in tensors):
            return ref(*args)
        return _Backward.apply(ref, args, backward, *tensors)

    return mutant


def _on_output(ref: Callable, hook: Callable) -> Callable:
    def mutant(*args):
        return _each_output(ref(*args), lambda y: _Identity.apply(y, hook)
                            if y.requires_grad else y)

    return mutant


class _InputDtype(TorchFunctionMode):
    """Calls that ask for float32/float64 get the inputs' float16/bfloat16 instead."""

    def __init__(self, low: torch.dtype):
        super().__init__()
        self.low = low

    def __torch_function__(self, func, types, args=(), kwargs=None):
        wide = (torch.float32, torch.float64)
        kwargs = {k: self.low if v in wide else v for k, v in (kwargs or {}).items()}
        args = tuple(self.low if isinstance(a, torch.dtype) and a in wide else a for a in args)
        if func in (torch.Tensor.float, torch.Tensor.double):
            return args[0].to(self.low)
        return func(*args, **kwargs)


# --- the operators -----------------------------------------------------------------------

def _ignores(op, sig, ref):
    names = _params(op)
    for arg, value in sig.options.items():
        i = names.index(arg)

        def mutant(*args, _i=i, _value=value):
            return ref(*_replace(args, _i, lambda _: _value))

        yield (f"ignores({arg})", mutant,
               f"Ignores {arg}: always {value!r}, whatever the caller passes.")


def _detached(op, sig, ref):
    names = _params(op)
    for name in sig.inputs:
        i = names.index(name)

        def mutant(*args, _i=i):
            return ref(*_replace(args, _i, lambda t: t.detach() if _is_float_tensor(t) else t))

        yield f"detached({name})", mutant, f"{name} enters detached: no gradient reaches it."


def _input_as_contiguous(op, sig, ref):
    names = _params(op)
    for name in sig.inputs:
        i = names.index(name)

        def mutant(*args, _i=i):
            return ref(*_replace(args, _i, _as_contiguous))

        yield (f"input_as_contiguous({name})", mutant,
               f"Reads {name}'s storage as if it were contiguous (the strides dropped).")


def _upstream_grad_as_contiguous(op, sig, ref):
    yield ("upstream_grad_as_contiguous", _on_output(ref, lambda g, _: _as_contiguous(g)),
           "The backward reads the upstream gradient's storage as if it were contiguous.")


def _grad_summed_over_batch(op, sig, ref):
    names = _params(op)
    for name, batch in sig.inputs.items():
        if batch is None:
            continue
        i = names.index(name)

        def hook(g, _b=batch):
            return g.sum(_b, keepdim=True).expand_as(g).clone()

        def mutant(*args, _i=i, _hook=hook):
            return ref(*_replace(args, _i, lambda t: _GradHook.apply(t, _hook)
                                 if _is_float_tensor(t) and t.requires_grad else t))

        yield (f"grad_summed_over_batch({name})", mutant,
               f"{name}'s gradient is summed over the batch, the same in every row.")


def _grad_from_first_batch_row(op, sig, ref):
    names = _params(op)
    batched = [names.index(n) for n, b in sig.inputs.items() if b is not None]
    if not batched:
        return
    for name, batch in sig.inputs.items():
        if batch is not None:
            continue
        i = names.index(name)

        def mutant(*args, _i=i):
            if not (_is_float_tensor(args[_i]) and args[_i].requires_grad):
                return ref(*args)
            y = ref(*_replace(args, _i, lambda t: t.detach()))
            if not _is_float_tensor(y) or y.dim() == 0 or y.shape[0] == 0:
                return ref(*args)
            only = tuple(a.detach() if _is_float_tensor(a) and j != _i else a
                         for j, a in enumerate(args))
            row0 = ref(*only)
            mask = torch.zeros_like(row0)
            mask[:1] = 1
            return y + (row0 * mask - (row0 * mask).detach())

        yield (f"grad_from_first_batch_row({name})", mutant,
               f"{name}'s gradient comes from batch row 0 alone (the other rows forgotten).")


def _low_precision_intermediates(op, sig, ref):
    if not sig.accumulates:
        return

    def mutant(*args):
        low = next((a.dtype for a in args if _is_float_tensor(a)), None)
        if low not in (torch.float16, torch.bfloat16):
            return ref(*args)
        with _InputDtype(low):
            return ref(*args)

    yield ("low_precision_intermediates", mutant,
           "Every intermediate in the input dtype (float16/bfloat16): statistics, positions "
           "and angles rounded where the reference computes them wider.")


def _tail_unwritten(op, sig, ref):
    for dim_name, (d, past) in sig.tails.items():
        def mutant(*args, _d=d, _past=past):
            out = ref(*args)
            y, *rest = _outputs(out)  # the first output's dims are the signature's tails
            if _is_float_tensor(y) and y.dim() > _d and y.shape[_d] > _past:
                keep = torch.ones_like(y, dtype=torch.bool)
                keep.narrow(_d, _past, y.shape[_d] - _past).fill_(False)
                y = torch.where(keep, y, torch.full_like(y, float("nan")))
            return (y, *rest) if isinstance(out, tuple) else y

        yield (f"tail_unwritten({dim_name}, past={past})", mutant,
               f"The output past index {past} along {dim_name} is never written (NaN): a tile "
               "boundary that no program crosses.")


def _output_perturbed(op, sig, ref, k=KILL_K):
    def mutant(*args):
        out = ref(*args)
        high = []  # the float64 reference's outputs, computed once when first needed

        def perturbed(i, y):
            if not _is_float_tensor(y) or y.numel() == 0:
                return y
            if not high:
                high.extend(_outputs(ref(*[a.detach().double() if _is_float_tensor(a) else a
                                           for a in args])))
            unit = _own_error(y.detach(), lambda: high[i])
            return y + (k * unit * _signs(y)).to(y.dtype)

        ys = [perturbed(i, y) for i, y in enumerate(_outputs(out))]
        return tuple(ys) if isinstance(out, tuple) else ys[0]

    yield (f"output_perturbed({k})", mutant,
           f"The output off by {k} units of the reference's own error.")


def _grad_perturbed(op, sig, ref, k=KILL_K):
    names = _params(op)
    for name in sig.inputs:
        i = names.index(name)

        def backward(args, grads, gs, _i=i):
            if grads[_i] is None:
                return grads
            # the reference's own error in this gradient: the same backward in float64
            a64 = [a.detach().double().requires_grad_(j == _i) if _is_float_tensor(a) else a
                   for j, a in enumerate(args)]
            with torch.enable_grad():
                (g64,) = _vjp(ref(*a64), [a64[_i]],
                              [g.double() if g is not None else None for g in gs])
            unit = _own_error(grads[_i], lambda: g64)
            grads = list(grads)
            grads[_i] = grads[_i] + (k * unit * _signs(grads[_i])).to(grads[_i].dtype)
            return grads

        yield (f"grad_perturbed({name}, {k})", _with_backward(ref, backward),
               f"{name}'s gradient off by {k} units of the reference's own error in it.")


def _writes_into_upstream_grad(op, sig, ref):
    def hook(g, calls):
        out = g.clone()
        g.mul_(-1)  # the gradient computed in the caller's buffer, as some kernels do
        return out

    yield ("writes_into_upstream_grad", _on_output(ref, hook),
           "The backward writes into the caller's upstream-gradient buffer.")


def _not_reentrant(op, sig, ref):
    yield ("not_reentrant", _on_output(ref, lambda g, calls: g if calls == 1 else 2 * g),
           "A second backward (retain_graph=True) gives twice the first's gradients: the "
           "backward changes what the forward saved.")


OPERATORS = (_ignores, _detached, _input_as_contiguous, _upstream_grad_as_contiguous,
             _grad_summed_over_batch, _grad_from_first_batch_row, _low_precision_intermediates,
             _tail_unwritten, _output_perturbed, _grad_perturbed, _writes_into_upstream_grad,
             _not_reentrant)


def generated(op: str | None = None, device: str | None = None) -> list[registry.Mutant]:
    """The mutants the operators generate for ``op`` (every op with a signature)."""
    out = []
    for sig in spec.signatures():
        if op is not None and sig.op != op:
            continue
        ref = registry.get(sig.op).fn
        for operator in OPERATORS:
            for name, fn, doc in operator(sig.op, sig, ref):
                fn.__name__ = fn.__qualname__ = name
                fn.__doc__ = doc
                out.append(registry.Mutant(sig.op, name, fn, doc, operator=operator.__name__[1:]))
    return out


def every_mutant(op: str | None = None, device: str | None = None) -> list[registry.Mutant]:
    """The hand-written mutants (each family's mutants.py) and the generated ones."""
    return registered_mutants(op, device) + generated(op, device)


def matrix() -> str:
    """Markdown: for each op (a row) and operator (a column), what the operator is generated
    for: its inputs or arguments ("-": it does not apply)."""
    by = {}
    for m in generated():
        arg = m.name[len(m.operator):].strip("()") or "yes"
        by.setdefault((m.operator, m.op), []).append(arg)
    names = [operator.__name__[1:] for operator in OPERATORS]
    lines = ["| op | " + " | ".join(f"`{n}`" for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for op in (o for o in registry.ops() if o in spec.SIGNATURES):
        lines.append(f"| {op} | " + " | ".join("; ".join(by.get((n, op), ["-"])) for n in names)
                     + " |")
    return "\n".join(lines)
