"""Properties of whole blocks: ``rankmixer_block(x, params, num_heads, activation, eps)`` and
``transformer_block(x, params, num_heads, mixer, causal, residual, norm, activation, eps,
positional)``.

Beyond agreeing with the reference composition, a block must have the parameters its
formula says (and train every one), reduce to its residual path when its output projections
are zero, keep a causal mixer causal, and (RankMixer) keep each token's FFN to its token.
"""

from __future__ import annotations

import dataclasses
import functools

import torch

from mixology.nn import RankMixer, TransformerBlock
from mixology.numerics.tolerance import eps, max_abs_err, scale_of
from mixology.ops.blocks import reference as ref
from mixology.ops.norms import reference as norms
from mixology.ops.token_mix import reference as mixing
from mixology.spec import prop, prop_each
from mixology.spec.helpers import assert_bitwise_equal, expect_rejected, leaf
from mixology.spec.numerics import assert_matches_reference, forward_backward
from mixology.spec.strategies import (
    BLOCK_ACTIVATIONS,
    LAYOUTS,
    POSITIONAL_OF,
    bad_block_inputs,
    rankmixer_cases,
    transformer_cases,
)

TB, RM = "transformer_block", "rankmixer_block"
EPS = 1e-5
NO_EXPANDED = tuple(lay for lay in LAYOUTS if lay != "expanded")


def _shapes(op, case):
    if op == RM:
        return ref.rankmixer_shapes(case.T, case.D, case.F)
    return ref.transformer_shapes(case.D, case.F, case.mixer, case.residual, case.norm,
                                  case.activation)


def _call(op, impl, case, names):
    """impl as a function of (x, *params in ``names`` order)."""
    def fn(x, *ps):
        params = dict(zip(names, ps, strict=True))
        if op == RM:
            return impl(x, params, case.H, case.activation, EPS)
        return impl(x, params, *case.config())

    return fn


def _setup(op, impl, case):
    """(fn of tensors, tensors, gradient names, parameter names) for ``impl`` on the case."""
    params = case.params(_shapes(op, case))
    keys = tuple(params)
    return (_call(op, impl, case, keys), (case.x(), *params.values()),
            ("dx", *(f"d{n}" for n in keys)), keys)


_both = functools.partial(prop_each, {TB: "block", RM: "rankmixer"})  # both blocks


def _cases(op, **kw):
    return (transformer_cases if op == TB else rankmixer_cases)(**kw)


@_both(lambda op: _cases(op))
def shape_dtype_device(op, impl, case):
    """Output (B, T, D) in x's dtype and device."""
    fn, tensors, *_ = _setup(op, impl, case)
    y, x = fn(*tensors), tensors[0]
    assert (y.shape, y.dtype, y.device) == (x.shape, x.dtype, x.device), (
        f"got {tuple(y.shape)} {y.dtype}, expected {tuple(x.shape)} {x.dtype}")


# A block's numerics are its components' (each checked in every dtype by its own spec, under
# the policy); the block property checks the composition. Different correct compositions round
# differently at every component boundary, and norms and softmax amplify that, so a pairwise
# low-precision bound between them is a statistical bet (measured over 600 random blocks: up
# to 15x the policy's 2x, and exact-zero gradients, such as dq with one key, that one
# implementation gets as 1e-17). In float64 those differences stay below 41 eps of the block's
# largest output or gradient over 640 random blocks (native and triton), while a wiring bug is
# off by O(1): the structural bound is 2^12 eps of that scale, a hundredfold margin both ways.
STRUCTURAL_EPS = 2**12


@_both(lambda op: _cases(op, dtypes=(torch.float64,), min_B=1), cost=2)
def matches_reference_in_float64(op, impl, case):
    """Forward and the gradients of x and every parameter equal the reference composition's
    (every component its einops reference) in float64, to 2^12 eps of the block's largest
    output or gradient: the wiring, not the rounding (which each component's spec checks)."""
    _matches_reference(op, impl, case)


def _matches_reference(op, impl, case):
    fn, tensors, names, keys = _setup(op, impl, case)
    up = case.upstream()
    got = forward_backward(fn, tensors, up)
    want = forward_backward(_call(op, getattr(ref, op), case, keys), tensors, up)
    bound = STRUCTURAL_EPS * eps(torch.float64) * max(scale_of(w) for w in want)
    errs = {n: max_abs_err(g, w) if g is not None else float("inf")
            for n, g, w in zip(("y", *names), got, want, strict=True)}
    bad = {n: e for n, e in errs.items() if not e <= bound}
    where = f"{case.activation}/{case.positional}: " if op == TB else ""
    assert not bad, (f"{where}differs from the reference composition by more than {bound:.2e}: "
                     + ", ".join(f"{n} {e:.2e}" for n, e in bad.items()))


@prop(TB, transformer_cases(dtypes=(torch.float64,), min_B=1, kernel=False), cost=2)
def block_every_channel_mixer_and_position_encoding(impl, case):
    """Every channel mixer (relu, gelu, swish, swiglu, bilinear, and none: attention-only) with
    the drawn position encoding, and every position encoding the mixer takes (none, rope,
    alibi) with the drawn channel mixer, match the reference composition in float64, forward
    and every gradient: each configuration is run in every example, not left to the draw."""
    variants = [dataclasses.replace(case, activation=a) for a in BLOCK_ACTIVATIONS]
    variants += [dataclasses.replace(case, positional=p) for p in POSITIONAL_OF[case.mixer]
                 if p != case.positional]
    for v in variants:
        if v.positional == "rope" and (v.D // v.H) % 2:
            continue  # RoPE needs an even head size (the drawn case has one when it is rope)
        _matches_reference(TB, impl, v)


@_both(lambda op: _cases(op, dtypes=(torch.float64,), min_B=1, max_B=1, max_T=3, max_H=2, kernel=False,
                         max_head_dim=3, max_F=3, layouts=NO_EXPANDED), cost=3)
def gradcheck_float64(op, impl, case):
    """torch.autograd.gradcheck in float64 over x and every parameter."""
    fn, tensors, *_ = _setup(op, impl, case)
    torch.autograd.gradcheck(fn, tuple(leaf(t) for t in tensors))


def _count_formula(op, case, num_layers=1, vocab=()):
    """The parameter count, written out by hand (not from the shape tables):
    transformer: mixer 4(D² + D) with q, k, v, o projections (D² + D for token_mix, whose
    branch has the output projection only); FFN 2DF + F + D (SwiGLU and bilinear 3DF, no
    biases; none for an attention-only block); norms 2D (LayerNorm), D (RMSNorm) or 0, one a
    branch (two for Sandwich). The standard FFN with
    biases and its own LayerNorm is 8D² + 7D at F = 4D.
    RankMixer: ΣV·D embeddings + L·(two LayerNorms 4D + T per-token FFNs T(2DF + F + D))."""
    D, F, T = case.D, case.F, case.T
    if op == RM:
        return sum(vocab) * D + num_layers * (4 * D + T * (2 * D * F + F + D))
    mixer = (1 if case.mixer == "token_mix" else 4) * (D * D + D)
    ffn = {"swiglu": 3 * D * F, "bilinear": 3 * D * F, "none": 0}.get(case.activation,
                                                                     2 * D * F + F + D)
    norm = {"layer": 2 * D, "rms": D, "none": 0}[case.norm]
    branches = 1 if case.activation == "none" else 2
    return mixer + ffn + norm * branches * (2 if case.residual == "sandwich" else 1)


@_both(lambda op: _cases(op, dtypes=(torch.float64, torch.float32), min_B=1), cost=2)
def parameter_count_and_every_parameter_gets_a_gradient(op, impl, case):
    """The module's parameter count equals its formula (standard FFN + its own LayerNorm:
    8D² + 7D at F = 4D; RankMixer: ΣV·D + L·(4D + T(2DF + F + D))), and one backward gives
    every parameter a gradient (none is counted but bypassed or detached)."""
    kw = dict(impl=impl, dtype=case.dtype, device=case.device)
    torch.manual_seed(case.seed)
    if op == TB:
        model = TransformerBlock(case.D, case.H, case.F, mixer=case.mixer, causal=case.causal,
                                 residual=case.residual, norm=case.norm,
                                 activation=case.activation, positional=case.positional, **kw)
        want, x = _count_formula(op, case), case.x()
    else:
        vocab = [2 + t for t in range(case.T)]
        model = RankMixer(vocab, case.D, 2, case.H, case.F, activation=case.activation, **kw)
        want = _count_formula(op, case, num_layers=2, vocab=vocab)
        x = torch.stack([torch.arange(case.B) % v for v in vocab], dim=1).to(case.device)
    got = sum(p.numel() for p in model.parameters())
    assert got == want, f"{type(model).__name__} has {got} parameters, the formula says {want}"
    (model(x).double() * case.upstream()).sum().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None]
    assert not dead, f"no gradient reaches {dead}"


# --- transformer block ---------------------------------------------------------------------

def _zero_outputs(params):
    outputs = ("wo", "bo", "w_down", "w_out") + (("w2", "b2") if "b2" in params else ())
    return {k: torch.zeros_like(v) if k in outputs else v for k, v in params.items()}


@prop(TB, transformer_cases(dtypes=(torch.float64, torch.float32, torch.bfloat16), min_B=1))
def block_zeroed_output_projections_leave_the_residual_path(impl, case):
    """With W_o, b_o and the FFN's output projection zero, the block is its residual path:
    Pre-LN the identity (bit for bit), Sandwich x + β'₁ + β'₂ (the post norms of a zero
    branch give their bias), Post-LN N2(N1(x)); forward and dx within the tolerance policy."""
    params = _zero_outputs(case.params(_shapes(TB, case)))
    fn = _call(TB, impl, case, tuple(params))
    ps = tuple(params.values())

    def p(name, like):  # the path runs in float32 and float64 too (the policy's own runs)
        return params[name].to(like.dtype)

    branches = (1,) if case.activation == "none" else (1, 2)  # attention-only: one branch

    def path(x):
        if case.norm == "none" or case.residual == "pre":
            return x * 1
        if case.residual == "sandwich":
            if case.norm == "rms":
                return x * 1
            for i in branches:
                x = x + p(f"norm{i}_post_bias", x)
            return x
        if case.norm == "layer":
            def n(h, i):
                return norms.layer_norm(h, p(f"norm{i}_weight", h), p(f"norm{i}_bias", h), EPS)
        else:
            def n(h, i):
                return norms.rms_norm(h, p(f"norm{i}_weight", h), EPS)
        for i in branches:
            x = n(x, i)
        return x

    x = case.x()
    if case.residual == "pre":
        assert_bitwise_equal(fn(x, *ps), x.contiguous() * 1, "pre-LN block, zeroed projections")
    assert_matches_reference(lambda x_: fn(x_, *ps), path, (x,), ("dx",),
                             upstream=case.upstream())


@prop(TB, transformer_cases(dtypes=(torch.float64, torch.float32, torch.bfloat16), min_B=1,
                            min_T=2, causal_only=True), exact=True)
def block_causal_mixer_keeps_the_block_causal(impl, case):
    """With a causal mixer the whole block is causal: changing tokens s.. leaves outputs
    ..s-1 bit for bit, and a gradient into outputs ..s-1 reaches x[:, s:] as exact zeros."""
    fn, tensors, *_ = _setup(TB, impl, case)
    x, ps = tensors[0].contiguous(), tensors[1:]
    s = 1 + case.seed % (case.T - 1)
    later = dataclasses.replace(case, seed=case.seed + 1).x().contiguous()
    moved = torch.cat([x[:, :s], later[:, s:]], dim=1)
    assert_bitwise_equal(fn(moved, *ps)[:, :s], fn(x, *ps)[:, :s], f"outputs before token {s}")
    xl = leaf(x)
    upstream = torch.zeros_like(x)
    upstream[:, :s] = 1
    fn(xl, *ps).backward(upstream)
    bad = xl.grad[:, s:] != 0
    assert not bad.any(), f"{int(bad.sum())} gradient entries reach tokens >= {s}"


# --- RankMixer block -----------------------------------------------------------------------

@prop(RM, rankmixer_cases(min_B=1))
def rankmixer_zeroed_pffn_output_is_normed_token_mixer(impl, case):
    """With W2 and b2 zero the block is LayerNorm(TokenMixer(x)), the second LayerNorm of the
    first's output (the residual around the PFFN carries S alone); forward and dx within the
    tolerance policy of that composition."""
    params = case.params(_shapes(RM, case))
    params["w2"], params["b2"] = torch.zeros_like(params["w2"]), torch.zeros_like(params["b2"])
    fn = _call(RM, impl, case, tuple(params))
    ps = tuple(params.values())

    def path(x):  # runs in float32 and float64 too (the policy's own runs)
        p = {k: v.to(x.dtype) for k, v in params.items()}
        s = mixing.token_mixer(x, case.H, p["mix_norm_weight"], p["mix_norm_bias"], EPS)
        return norms.layer_norm(s, p["ffn_norm_weight"], p["ffn_norm_bias"], EPS)

    assert_matches_reference(lambda x: fn(x, *ps), path, (case.x(),), ("dx",),
                             upstream=case.upstream())


@prop(RM, rankmixer_cases(dtypes=(torch.float64, torch.float32, torch.bfloat16), min_B=1,
                          min_T=2), exact=True)
def rankmixer_token_ffn_weights_reach_only_their_token(impl, case):
    """Token t's FFN weights (W1[t], b1[t], W2[t], b2[t]) act on output token t alone: a
    gradient into output token t reaches every other token's FFN weights as exact zeros."""
    fn, tensors, names, _ = _setup(RM, impl, case)
    leaves = [leaf(t) for t in tensors]
    t = case.seed % case.T
    upstream = torch.zeros(case.B, case.T, case.D, dtype=case.dtype, device=case.device)
    upstream[:, t] = 1
    fn(*leaves).backward(upstream)
    others = torch.arange(case.T, device=case.device) != t
    for name, a in zip(names, leaves, strict=True):
        if name in ("dw1", "db1", "dw2", "db2"):
            bad = a.grad[others] != 0
            assert not bad.any(), f"{name}: {int(bad.sum())} nonzero entries off token {t}"


@prop(RM, rankmixer_cases(dtypes=(torch.float64, torch.float32), min_B=1, min_T=2,
                          heads_equal_tokens=True), exact=True)
def rankmixer_every_output_token_sees_every_input_token(impl, case):
    """With H == T (the paper's setting) each output token is built from a head of every input
    token: its gradient reaches every input token (a mixer that permutes back, the identity,
    or any token-local block fails)."""
    fn, tensors, *_ = _setup(RM, impl, case)
    x = leaf(tensors[0])
    t = case.seed % case.T
    upstream = torch.zeros(case.B, case.T, case.D, dtype=case.dtype, device=case.device)
    upstream[:, t] = case.upstream()[:, t].to(case.dtype)
    fn(x, *tensors[1:]).backward(upstream)
    blind = [s for s in range(case.T) if not x.grad[:, s].any()]
    assert not blind, f"output token {t} does not depend on input tokens {blind}"


for _op, _short in ((TB, "block"), (RM, "rankmixer")):
    def _bad(impl, case, _op=_op):
        expect_rejected(impl, case, getattr(ref, _op))

    _bad.__doc__ = "Bad x, params or configuration: ValueError/TypeError naming it."
    prop(_op, bad_block_inputs(_op), name=f"{_short}_bad_input_raises", kind="contract")(_bad)
