"""Properties of linear attention: ``impl(q, k, v, g, scale, initial_state,
output_final_state) -> (o, final_state)`` (see mixology/ops/linear_attention/reference.py).

The comparisons see one tensor: o and, when the case asks for it, the final state, stacked
along the sequence dim, ``(B, H, T [+ d_k], d_v)`` in the final state's (accumulation) dtype
(:func:`packed`), so that the tolerance policy, the generic properties and the mutation
operators judge both outputs and every gradient (q, k, v, g, initial_state) at once.
"""

from __future__ import annotations

import dataclasses

import torch
from hypothesis import strategies as st

from mixology.numerics.dtypes import accumulation_dtype
from mixology.ops.linear_attention import reference as ref
from mixology.spec import prop, signature
from mixology.spec.helpers import assert_bitwise_equal, expect_rejected, leaf
from mixology.spec.numerics import assert_matches_reference
from mixology.spec.strategies import (
    ATTN_LAYOUTS,
    FLOATS,
    BadInput,
    Drawn,
    boundary,
    case,
    dtype_of,
    kernel_tier,
    make_4d,
    optional,
    relayout,
    sized,
)

OP = "linear_attention"
DECAYS = ("none", "retention", "gated")  # g=None; a constant g per head; a g per step


# --- cases -------------------------------------------------------------------------------

@case
class LinCase(Drawn):
    """q, k: (B, H, T, dk), v: (B, H, T, dv); g: None ("none"), one log-decay per head
    ("retention") or per head and step ("gated"), g = g_max - strength·U(0, 1); an initial
    state (B, H, dk, dv) in the accumulation dtype when ``initial``; the final state asked
    for when ``output_final_state``; ``scale`` None (d_k ** -0.5) or a float."""

    LAYOUTS = ATTN_LAYOUTS  # of every tensor (not a field)

    B: int
    H: int
    T: int
    dk: int
    dv: int
    dtype: torch.dtype
    layout: str = "contiguous"
    seed: int = 0
    decay: str = "gated"
    strength: float = 1.0
    initial: bool = False
    output_final_state: bool = False
    scale: float | None = None
    g_max: float = optional(0.0)  # g = g_max - strength·U(0, 1)
    zero: str = optional("")  # "q" or "k": that input all zeros

    def qkv(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g = self.gen()
        q, k, v = (make_4d((self.B, self.H, self.T, d), self.dtype, self.layout, g, self.device)
                   for d in (self.dk, self.dk, self.dv))
        if self.zero:
            q, k = (torch.zeros_like(t) if n == self.zero else t for n, t in (("q", q), ("k", k)))
        return q, k, v

    def g(self) -> torch.Tensor | None:
        if self.decay == "none":
            return None
        u = torch.rand(self.B, self.H, 1 if self.decay == "retention" else self.T,
                       generator=self.gen(7), dtype=torch.float64)
        g = (self.g_max - self.strength * u).expand(self.B, self.H, self.T)
        return _laid_out(g.to(self.dtype).to(self.device), self.layout)

    def initial_state(self) -> torch.Tensor | None:
        if not self.initial:
            return None
        return make_4d((self.B, self.H, self.dk, self.dv), accumulation_dtype(self.dtype),
                       self.layout, self.gen(8), self.device)

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """The differentiable inputs, in the op's order: q, k, v[, g][, initial_state]."""
        g, s = self.g(), self.initial_state()
        return (*self.qkv(), *(t for t in (g, s) if t is not None))

    def grad_names(self) -> tuple[str, ...]:
        return ("dq", "dk", "dv", *(("dg",) if self.decay != "none" else ()),
                *(("dinitial_state",) if self.initial else ()))

    def upstream(self) -> torch.Tensor:
        return self.randn(self.B, self.H, self.T + (self.dk if self.output_final_state else 0),
                          self.dv,
                          salt=1)


def _laid_out(t: torch.Tensor, layout: str) -> torch.Tensor:
    """t (B, H, ...) in one of ATTN_LAYOUTS ("projected": stored with H and the next dim
    swapped)."""
    if layout == "projected":
        return t.transpose(1, 2).contiguous().transpose(1, 2)
    return relayout(t.contiguous(), layout)


def lin_cases(*, kernel=True, **kw):
    """Shapes, dtypes, layouts, decays, initial and final states, scales; in the kernel tier
    long sequences (B = H = 1, d <= 8, T up to ``kernel_max_T``), wide heads (d up to 129, T
    up to 64) or many heads (B·H up to 15, T up to 33), each dim around a tile boundary."""
    return sized(_lin_cases(kernel=kernel, **kw), kernel)


@st.composite
def _lin_cases(draw, *, kernel=True, dtypes=FLOATS, layouts=ATTN_LAYOUTS, min_B=0, max_B=2,
               min_T=1, max_T=20, max_H=3, max_d=6, decays=DECAYS, strengths=(1.0, 0.1, 5.0),
               initial=None, final=None, scales=(None, 1.0, 0.3), g_max=0.0,
               kernel_max_T=4096):
    common = dict(dtype=draw(dtype_of(dtypes)), layout=draw(st.sampled_from(layouts)),
                  seed=draw(st.integers(0, 2**31 - 1)), decay=draw(st.sampled_from(decays)),
                  strength=draw(st.sampled_from(strengths)),
                  initial=draw(st.booleans()) if initial is None else initial,
                  output_final_state=draw(st.booleans()) if final is None else final,
                  scale=draw(st.sampled_from(scales)), g_max=g_max)
    if kernel and kernel_tier():
        regime = draw(st.sampled_from(("long", "wide", "many")))
        T_cap = {"long": kernel_max_T, "wide": min(kernel_max_T, 64)}.get(regime, 33)
        B, H = {"long": (1, 1), "wide": (1, draw(st.integers(1, 2)))}.get(
            regime, (draw(st.integers(max(min_B, 2), 3)), draw(boundary(2, 5))))
        d_cap = 129 if regime == "wide" else 8
        return LinCase(B=max(B, min_B), H=H, T=draw(boundary(max(min_T, 1), T_cap)),
                       dk=draw(boundary(1, d_cap)), dv=draw(boundary(1, d_cap)), **common)
    return LinCase(B=draw(st.integers(min_B, max_B)), H=draw(st.integers(1, max_H)),
                   T=draw(st.integers(min_T, max_T)), dk=draw(st.integers(1, max_d)),
                   dv=draw(st.integers(1, max_d)), **common)


@st.composite
def long_decay_cases(draw):
    """float16/bfloat16 over 1021 tokens to the profile's cap (1025 under ci, 4096 under dev)
    with strong decay (g down to -4 a step, so that exp(-G) of the whole sequence overflows
    even float64), B = H = 1, d <= 4 (the same in every tier: long is the point)."""
    return LinCase(B=1, H=1, T=draw(boundary(1021, 4096)),
                   dk=draw(st.sampled_from((4, 1, 2, 3))), dv=draw(st.sampled_from((4, 1, 2, 3))),
                   dtype=draw(st.sampled_from((torch.bfloat16, torch.float16))),
                   seed=draw(st.integers(0, 2**31 - 1)), decay="gated",
                   strength=draw(st.sampled_from((4.0, 1.0))), initial=draw(st.booleans()),
                   output_final_state=True)


def gradcheck_cases():
    """float64, small; g in [-1.05, -0.05] (gradcheck's perturbation keeps it < 0)."""
    return lin_cases(dtypes=(torch.float64,), layouts=("contiguous", "projected", "strided"),
                     min_B=1, max_B=1, max_T=6, max_H=2, max_d=3, g_max=-0.05, kernel=False)


def bad_inputs():
    """Calls of ``fn(q, k, v, g, scale, initial_state, output_final_state)`` that must raise
    TypeError/ValueError."""
    q, g, s = torch.randn(1, 2, 5, 4), -torch.rand(1, 2, 5), torch.zeros(1, 2, 4, 4)

    def bad(what, error, name, **kw):
        args = dict(q=q, k=q, v=q, g=g, scale=None, initial_state=s, output_final_state=False)
        args.update(kw)
        return BadInput(what, tuple(args.values()), error, (name,))

    return st.sampled_from([
        bad("q has ndim 3", ValueError, "q", q=q[0]),
        bad("k has another T", ValueError, "k", k=q[:, :, :3]),
        bad("v has another T", ValueError, "v", v=q[:, :, :4]),
        bad("q is int64", TypeError, "q", q=q.long()),
        bad("v is float64", TypeError, "v", v=q.double()),
        bad("g has shape (B, H, T - 1)", ValueError, "g", g=g[..., :4]),
        bad("g has shape (B, H, T, 1)", ValueError, "g", g=g[..., None]),
        bad("g > 0 somewhere", ValueError, "g", g=g.abs() + 0.01),
        bad("g is float64", TypeError, "g", g=g.double()),
        bad("g is a list", TypeError, "g", g=[0.0]),
        bad("initial_state has another d_v", ValueError, "initial_state",
            initial_state=s[..., :3]),
        bad("initial_state has another batch", ValueError, "initial_state",
            initial_state=torch.zeros(2, 2, 4, 4)),
        bad("initial_state is float64", TypeError, "initial_state", initial_state=s.double()),
        bad("initial_state is int64", TypeError, "initial_state", initial_state=s.long()),
        bad("scale is a tensor", TypeError, "scale", scale=torch.tensor(0.5)),
        bad("scale is a bool", TypeError, "scale", scale=True),
        bad("scale == 0", ValueError, "scale", scale=0.0),
        bad("scale is NaN", ValueError, "scale", scale=float("nan")),
        bad("output_final_state is an int", TypeError, "output_final_state",
            output_final_state=1),
    ])


# --- how a property calls an implementation -------------------------------------------------

def packed(fn, case):
    """``f(*case.tensors())``: o, and the final state when the case asks for it, stacked along
    the sequence dim (B, H, T [+ d_k], d_v), o cast (exactly) to the final state's dtype."""
    def f(q, k, v, *rest):
        rest = list(rest)
        g = rest.pop(0) if case.decay != "none" else None
        s = rest.pop(0) if case.initial else None
        o, final = fn(q, k, v, g, case.scale, s, case.output_final_state)
        if not case.output_final_state:
            assert final is None, "final_state returned though output_final_state=False"
            return o
        assert final is not None, "no final_state, though output_final_state=True"
        return torch.cat([o.to(final.dtype), final], dim=2)

    return f


def _matches(impl, case, grads=True, oracle=None):
    """impl within the tolerance policy of ``oracle`` (a function of the case's tensors; the
    reference packed by default), forward and, with ``grads``, every gradient."""
    assert_matches_reference(packed(impl, case), oracle or packed(ref.linear_attention, case),
                             case.tensors(), case.grad_names() if grads else (),
                             upstream=case.upstream() if grads else None,
                             upstream_layout=case.upstream_layout)


# --- properties --------------------------------------------------------------------------

@prop(OP, lin_cases())
def la_shape_dtype_device(impl, case):
    """o is (B, H, T, d_v) in q's dtype; final_state (B, H, d_k, d_v) in the accumulation
    dtype (float32; float64 for float64 inputs) when asked for, else None; on q's device."""
    q, k, v = case.qkv()
    o, final = impl(q, k, v, case.g(), case.scale, case.initial_state(),
                    case.output_final_state)
    want = (case.B, case.H, case.T, case.dv)
    assert (tuple(o.shape), o.dtype, o.device) == (want, q.dtype, q.device), (
        f"o is {tuple(o.shape)} {o.dtype} {o.device}, expected {want} {q.dtype} {q.device}")
    if case.output_final_state:
        want = ((case.B, case.H, case.dk, case.dv), accumulation_dtype(q.dtype), q.device)
        assert final is not None and (tuple(final.shape), final.dtype, final.device) == want, (
            f"final_state is {None if final is None else (tuple(final.shape), final.dtype)}, "
            f"expected {want}")
    else:
        assert final is None, "final_state returned though output_final_state=False"


@prop(OP, lin_cases(), cost=2)
def la_matches_reference(impl, case):
    """o, the final state and the gradients of q, k, v, g and the initial state within the
    tolerance policy: every decay (none, retention, gated), with and without an initial and a
    final state; in the kernel tier T up to the profile's cap (1025 under ci, 4096 under dev),
    chunk tails at every boundary."""
    _matches(impl, case)


@prop(OP, lin_cases(dtypes=(torch.float32,), min_B=1, min_T=2, max_T=24), cost=2)
def la_equals_the_recurrence(impl, case):
    """Within the tolerance policy of the token-by-token recurrence
    S_t = exp(g_t) S_(t-1) + k_t v_tᵀ, o_t = scale·q_t S_t, written here as a loop: the loop
    in float64 is the oracle (independent of the parallel reference), the parallel reference
    in float32 sets the error allowed (each form has its own: the loop's float32 dg is 1.2e-8
    off where the chunked form's is 9.5e-8, both right), forward and every gradient."""
    def recurrence(q, k, v, g, scale, s, final):
        S = (s if s is not None else q.new_zeros(*q.shape[:2], q.shape[-1], v.shape[-1]))
        S = S.to(q.dtype)
        outs = []
        for t in range(q.shape[2]):
            if g is not None:
                S = S * g[:, :, t, None, None].exp()
            S = S + k[:, :, t, :, None] * v[:, :, t, None, :]
            outs.append((q[:, :, t, :, None] * S).sum(-2))
        scale = q.shape[-1] ** -0.5 if scale is None else scale
        return scale * torch.stack(outs, 2), (S if final else None)

    loop, parallel = packed(recurrence, case), packed(ref.linear_attention, case)

    def oracle(*tensors):  # the loop where the policy wants the truth, else the reference
        return (loop if tensors[0].dtype == torch.float64 else parallel)(*tensors)

    _matches(impl, case, oracle=oracle)


@prop(OP, lin_cases(dtypes=(torch.float32, torch.float64), max_T=14, kernel_max_T=17))
def la_causality_exact(impl, case):
    """∂o_t/∂(q, k, v, g)_s is exactly zero for every s > t, chunk boundaries included."""
    case = dataclasses.replace(case, output_final_state=False)
    for t in range(case.T):
        tensors = [leaf(x) for x in case.tensors()]
        o = packed(impl, case)(*tensors)
        grads = torch.autograd.grad(o[:, :, t].sum(), tensors[:3 + (case.decay != "none")],
                                    allow_unused=True)
        for name, g in zip("qkvg", grads, strict=False):
            if g is None:
                continue
            future = g[:, :, t + 1:]
            assert torch.count_nonzero(future) == 0, (
                f"o at position {t} depends on {name} at later positions "
                f"{sorted(set((future != 0).nonzero()[:, 2].add(t + 1).tolist()))}")


@prop(OP, lin_cases(decays=("gated",)))
def la_zero_decay_is_plain_linear_attention(impl, case):
    """g = 0 is plain linear attention: impl with g all zeros within the tolerance policy of
    the reference with g=None, forward and gradients of q, k, v (and initial_state)."""
    plain = dataclasses.replace(case, decay="none")

    def with_zero_g(q, k, v, *rest):
        zeros = torch.zeros(case.B, case.H, case.T, dtype=q.dtype, device=q.device)
        return packed(impl, case)(q, k, v, zeros, *rest)

    assert_matches_reference(with_zero_g, packed(ref.linear_attention, plain), plain.tensors(),
                             plain.grad_names(), upstream=plain.upstream(),
                             upstream_layout=plain.upstream_layout)


@prop(OP, lin_cases(decays=("gated", "retention"), g_max=-300.0, strengths=(1.0, 700.0)))
def la_strong_decay_leaves_the_diagonal(impl, case):
    """With g <= -300 a step nothing survives a step (exp(-300) is 5e-131): the output is the
    diagonal term alone, o_t = scale·(q_t·k_t) v_t, and the final state k_T v_Tᵀ, within the
    tolerance policy (forward and gradients of q, k, v). The decay of step t applied to its
    own token, or the state read before its decay, shows here as O(1)."""
    def diagonal(q, k, v, g, scale, s, final):
        scale = q.shape[-1] ** -0.5 if scale is None else scale
        o = scale * (q * k).sum(-1, keepdim=True) * v
        last = k[:, :, -1:].transpose(-1, -2) * v[:, :, -1:] if q.shape[2] else None
        return o, (last if final else None)

    tensors = case.tensors()
    names = case.grad_names()
    # the g and initial_state gradients are exp(-300)-small: compare q, k, v's only
    fixed = tensors[3:]

    def impl_qkv(q, k, v):
        return packed(impl, case)(q, k, v, *fixed)

    def diag_qkv(q, k, v):
        return packed(diagonal, case)(q, k, v, *[t.to(q.dtype) for t in fixed])

    assert_matches_reference(impl_qkv, diag_qkv, tensors[:3], names[:3],
                             upstream=case.upstream(), upstream_layout=case.upstream_layout)


@prop(OP, lin_cases(min_T=2, max_T=24, final=True), cost=2)
def la_split_sequence_carries_the_state(impl, case):
    """Running the first part of the sequence with output_final_state and the rest with that
    state as initial_state equals one run over the whole sequence: o, the final state and
    every gradient within the tolerance policy (split after 1, in the middle, before the
    last token)."""
    for cut in sorted({1, case.T // 2, case.T - 1}):
        def split(q, k, v, *rest, cut=cut):
            rest = list(rest)
            g = rest.pop(0) if case.decay != "none" else None
            s = rest.pop(0) if case.initial else None
            first = (g[:, :, :cut] if g is not None else None)
            second = (g[:, :, cut:] if g is not None else None)
            o1, s1 = impl(q[:, :, :cut], k[:, :, :cut], v[:, :, :cut], first, case.scale, s,
                          True)
            o2, s2 = impl(q[:, :, cut:], k[:, :, cut:], v[:, :, cut:], second, case.scale,
                          s1, True)
            return torch.cat([o1.to(s2.dtype), o2.to(s2.dtype), s2], dim=2)

        try:
            assert_matches_reference(split, packed(ref.linear_attention, case), case.tensors(),
                                     case.grad_names(), upstream=case.upstream())
        except AssertionError as e:
            raise AssertionError(f"split after {cut} of {case.T} tokens: {e}") from None


@prop(OP, long_decay_cases(), cost=12, kind="numerics")
def la_long_sequence_strong_decay(impl, case):
    """float16/bfloat16 over 1021 tokens and more with g down to -4 a step: o, the final state
    and every gradient within the tolerance policy. exp(-G) of the whole sequence overflows
    (G reaches -8000): exponents must be differences within reach, and the state, kept in the
    input dtype, would round at every one of T updates."""
    _matches(impl, case)


@prop(OP, lin_cases(initial=True, final=True))
def la_initial_state_alone(impl, case):
    """With k = 0 only the initial state speaks: o_t = scale·exp(G_t) q_t S_0 and the final
    state exp(G_T) S_0, within the tolerance policy (forward and gradients); with q = 0, o is
    exactly 0 and the final state is the same."""
    def alone(q, k, v, g, scale, s, final):
        scale = q.shape[-1] ** -0.5 if scale is None else scale
        G = g.cumsum(-1) if g is not None else q.new_zeros(q.shape[:3])
        o = scale * G.exp()[..., None] * (q[..., :, None] * s[:, :, None]).sum(-2)
        last = G[..., -1:].exp()[..., None] if q.shape[2] else 1.0
        return o, last * s

    no_k = dataclasses.replace(case, zero="k")  # forward only: the oracle has no dk
    _matches(impl, no_k, grads=False, oracle=packed(alone, no_k))
    no_q = dataclasses.replace(case, zero="q")
    q, k, v = no_q.qkv()
    o, final = impl(q, k, v, no_q.g(), no_q.scale, no_q.initial_state(), True)
    assert torch.count_nonzero(o) == 0, "o is not 0 with q = 0"


@prop(OP, gradcheck_cases(), cost=3)
def la_gradcheck_float64(impl, case):
    """torch.autograd.gradcheck in float64 over q, k, v, g and the initial state."""
    torch.autograd.gradcheck(packed(impl, case), tuple(leaf(t) for t in case.tensors()))


@prop(OP, lin_cases(max_B=0) | lin_cases(min_T=1, max_T=1))
def la_edge_shapes(impl, case):
    """B == 0 and T == 1 work, forward and backward, within the tolerance policy."""
    _matches(impl, case)


@prop(OP, lin_cases(decays=("none",), initial=False, final=False))
def la_scale_multiplies_the_output(impl, case):
    """Without decay and initial state the output is linear in the scale: scale 2s gives
    exactly twice the output of scale s (a power of two, away from overflow and subnormals:
    not float16)."""
    if case.dtype == torch.float16:
        case = dataclasses.replace(case, dtype=torch.float32)
    q, k, v = case.qkv()
    s = case.scale or case.dk ** -0.5
    assert_bitwise_equal(impl(q, k, v, None, 2 * s, None, False)[0],
                         2 * impl(q, k, v, None, s, None, False)[0], "scale 2s vs 2 × scale s")


@prop(OP, bad_inputs(), kind="contract")
def la_bad_input_raises(impl, case):
    """Bad q/k/v, g (shape, dtype, g > 0), initial_state (shape, dtype), scale or flag:
    ValueError/TypeError naming the argument."""
    expect_rejected(impl, case, ref.linear_attention)


# --- the signature: how the generic properties and the mutation operators call the op ---

signature(OP, lin_cases(), tensors=lambda c: c.tensors(), call=packed,
          grads=lambda c: c.grad_names(), upstream=lambda c: c.upstream(),
          inputs={"q": 0, "k": 0, "v": 0, "g": 0, "initial_state": 0},
          options={"scale": None, "output_final_state": False}, tails={"T": (2, 1024)},
          accumulates=True)
