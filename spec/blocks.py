"""Properties of whole blocks: ``rankmixer_block(x, params, num_heads, activation, eps)`` and
``transformer_block(x, params, num_heads, mixer, causal, residual, norm, activation, eps,
positional, feature_map)``.

Beyond agreeing with the reference composition, a block must have the parameters its
formula says (and train every one), reduce to its residual path when its output projections
are zero, keep a causal mixer causal, and (RankMixer) keep each token's FFN to its token.
"""

from __future__ import annotations

import dataclasses
import functools

import torch
from hypothesis import strategies as st

from mixology.nn import RankMixer, TransformerBlock
from mixology.numerics.tolerance import eps, max_abs_err, scale_of
from mixology.ops.blocks import reference as ref
from mixology.ops.blocks.reference import rankmixer_shapes, transformer_shapes
from mixology.ops.norms import reference as norms
from mixology.ops.token_mix import reference as mixing
from mixology.spec import prop, prop_each, signature
from mixology.spec.helpers import assert_bitwise_equal, expect_rejected, leaf
from mixology.spec.numerics import assert_matches_reference
from mixology.spec.strategies import (
    FLOATS,
    LAYOUTS,
    UPSTREAM_LAYOUTS,
    BadInput,
    TokensCase,
    boundary,
    case,
    dtype_of,
    kernel_tier,
    optional,
    relayout,
    sized,
)
from mixology.spec.token_mix import EPSILONS

# --- cases -------------------------------------------------------------------------------

@case
class BlockCase(TokensCase):
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
    eps: float = optional(1e-5)  # every norm's eps
    feature_map: str = "none"  # linear attention's φ on q and k

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
        return (self.H, self.mixer, self.causal, self.residual, self.norm, self.activation,
                self.eps, self.positional, self.feature_map)


def _min_head_dim(H: int) -> int:
    """Blocks get D >= 3. LayerNorm is constant at D = 1 (its bias) and piecewise constant at
    D = 2 (±weight + bias), so its exact zero gradient is a sum of terms of size |g|·w/sqrt(var
    + eps) that autograd adds into the residual stream's gradient one at a time: the float64
    reference is then itself off by an ulp of those terms (seen: 1.2e-14 on dx = 0.61), while
    a fused norm kernel is exact. The norms' own spec covers D = 1 and 2."""
    return -(-3 // H)


MIXER_CAUSAL = (("softmax_attention", False), ("softmax_attention", True),
                ("quadratic_attention", True), ("linear_attention", True), ("token_mix", False))


def transformer_cases(*, kernel=True, **kw):
    """In the kernel tier: T up to 33, D up to 2·129, F up to 257, around tile boundaries."""
    return sized(_transformer_cases(kernel=kernel, **kw), kernel)


BLOCK_ACTIVATIONS = ("relu", "gelu", "swish", "swiglu", "bilinear", "none")
# the positional encodings each mixer takes
POSITIONAL_OF = {"softmax_attention": ("none", "rope", "alibi"),
                 "quadratic_attention": ("none", "rope"), "linear_attention": ("none", "rope"),
                 "token_mix": ("none",)}
FEATURE_MAPS = tuple(ref.FEATURE_MAPS)


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
    feature_map = draw(st.sampled_from(FEATURE_MAPS)) if mixer == "linear_attention" else "none"
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
                     dtype=draw(dtype_of(dtypes)), layout=draw(st.sampled_from(layouts)),
                     seed=draw(st.integers(0, 2**31 - 1)), mixer=mixer, causal=causal,
                     residual=draw(st.sampled_from(residuals)),
                     norm=draw(st.sampled_from(norms)),
                     activation=draw(st.sampled_from(activations)), positional=positional,
                     eps=draw(st.sampled_from(EPSILONS)), feature_map=feature_map)


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
                     dtype=draw(dtype_of(dtypes)), layout=draw(st.sampled_from(layouts)),
                     seed=draw(st.integers(0, 2**31 - 1)),
                     activation=draw(st.sampled_from(("relu", "gelu", "silu"))),
                     eps=draw(st.sampled_from(EPSILONS)))


def bad_block_inputs(op: str):
    """Calls of ``rankmixer_block`` / ``transformer_block`` that must raise TypeError/ValueError."""

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
            BadInput("linear attention not causal", args(mixer="linear_attention"),
                     ValueError, ("causal",)),
            BadInput("feature_map unknown", args(mixer="linear_attention", causal=True,
                                                 positional="none", feature_map="cosine"),
                     ValueError, ("feature_map",)),
            BadInput("feature_map on softmax attention", args(positional="none",
                                                              feature_map="elu"),
                     ValueError, ("feature_map",)),
            BadInput("sandwich without its post norms", args(residual="sandwich"), ValueError,
                     ("norm1_post",)),
        ]
    return st.sampled_from(cases)


# --- properties --------------------------------------------------------------------------
TB, RM = "transformer_block", "rankmixer_block"
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
            return impl(x, params, case.H, case.activation, case.eps)
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


@_both(lambda op: _cases(op, dtypes=(torch.float64,), min_B=1), cost=2,
       covers={"upstream": UPSTREAM_LAYOUTS})
def matches_reference_in_float64(op, impl, case):
    """Forward and the gradients of x and every parameter equal the reference composition's
    (every component its einops reference) in float64, to 2^12 eps of the block's largest
    output or gradient: the wiring, not the rounding (which each component's spec checks).
    One forward, then a backward for the upstream gradient in each layout (retain_graph)."""
    start = UPSTREAM_LAYOUTS.index(case.upstream_layout)
    _matches_reference(op, impl, case, UPSTREAM_LAYOUTS[start:] + UPSTREAM_LAYOUTS[:start])


def _matches_reference(op, impl, case, upstream_layouts=None):
    """The block against the reference composition: one forward of each, then a backward of
    each per upstream layout (an expanded upstream gradient has other values: row 0's)."""
    fn, tensors, names, keys = _setup(op, impl, case)
    up = case.upstream()
    layouts = upstream_layouts or (case.upstream_layout,)
    runs = []
    for f in (fn, _call(op, getattr(ref, op), case, keys)):
        leaves = [leaf(t) for t in tensors]
        runs.append((f(*leaves), leaves))
    (y, leaves), (y_ref, ref_leaves) = runs
    for i, layout in enumerate(layouts):
        g = relayout(up, layout)
        more = i + 1 < len(layouts)
        got = torch.autograd.grad(y, leaves, g, allow_unused=True, retain_graph=more)
        want = torch.autograd.grad(y_ref, ref_leaves, g, allow_unused=True, retain_graph=more)
        want = [y_ref.detach(), *want]
        bound = STRUCTURAL_EPS * eps(torch.float64) * max(scale_of(w) for w in want)
        errs = {n: max_abs_err(a, w) if a is not None else float("inf")
                for n, a, w in zip(("y", *names), (y.detach(), *got), want, strict=True)}
        bad = {n: e for n, e in errs.items() if not e <= bound}
        where = (f"{case.mixer}/{case.activation}/{case.positional}/{case.feature_map}: "
                 if op == TB else "")
        assert not bad, (f"{where}upstream gradient {layout}: differs from the reference "
                         f"composition by more than {bound:.2e}: "
                         + ", ".join(f"{n} {e:.2e}" for n, e in bad.items()))


@prop(TB, transformer_cases(dtypes=(torch.float64,), min_B=1, kernel=False), cost=2,
      covers={"activation": BLOCK_ACTIVATIONS, "mixer": ref.MIXERS, "causal": (False, True),
              "positional": ref.POSITIONALS, "feature_map": FEATURE_MAPS,
              "upstream": UPSTREAM_LAYOUTS})
def block_every_channel_mixer_and_position_encoding(impl, case):
    """Every channel mixer (relu, gelu, swish, swiglu, bilinear, and none: attention-only) with
    the drawn token mixer and position encoding, and every token mixer (softmax attention,
    causal or not; quadratic and linear attention; token mixing) with every position encoding it takes
    (none, rope, alibi), and linear attention with every feature map (with RoPE), with the
    drawn channel mixer, match the reference composition in float64, forward and every
    gradient: each configuration is run in every example, not left to the draw. The variants
    take the upstream gradient's layouts in turn."""
    variants = [dataclasses.replace(case, activation=a) for a in BLOCK_ACTIVATIONS]
    drawn = (case.mixer, case.causal, case.positional, case.feature_map)
    variants += [dataclasses.replace(case, mixer=m, causal=c, positional=p, feature_map="none")
                 for m, c in MIXER_CAUSAL for p in POSITIONAL_OF[m] if (m, c, p, "none") != drawn]
    variants += [dataclasses.replace(case, mixer="linear_attention", causal=True,
                                     positional="rope", feature_map=f)
                 for f in FEATURE_MAPS if f != "none"]
    for i, v in enumerate(variants):
        if v.positional == "rope" and (v.D // v.H) % 2:  # RoPE rotates pairs: an even head
            v = dataclasses.replace(v, D=v.D + v.H)
        _matches_reference(TB, impl, v, (UPSTREAM_LAYOUTS[i % len(UPSTREAM_LAYOUTS)],))


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
                                 activation=case.activation, positional=case.positional,
                                 feature_map=case.feature_map, **kw)
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
                return norms.layer_norm(h, p(f"norm{i}_weight", h), p(f"norm{i}_bias", h), case.eps)
        else:
            def n(h, i):
                return norms.rms_norm(h, p(f"norm{i}_weight", h), case.eps)
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
        s = mixing.token_mixer(x, case.H, p["mix_norm_weight"], p["mix_norm_bias"], case.eps)
        return norms.layer_norm(s, p["ffn_norm_weight"], p["ffn_norm_bias"], case.eps)

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

# --- signatures: how the generic properties and the mutation operators call the ops ---

def _block_tensors(op, case):
    return (case.x(), *case.params(_shapes(op, case)).values())


def _block_call(op, fn, case):
    return _call(op, fn, case, tuple(_shapes(op, case)))


def _block_grads(op, case):
    return ("dx", *(f"d{name}" for name in _shapes(op, case)))


for _op in (RM, TB):
    signature(_op, _cases(_op), tensors=functools.partial(_block_tensors, _op),
              call=functools.partial(_block_call, _op),
              grads=functools.partial(_block_grads, _op),
              upstream=lambda c: c.upstream(), inputs={"x": 0},
              options=({"activation": "relu", "eps": 1e-5} if _op == RM else
                       {"residual": "pre", "norm": "layer", "activation": "gelu",
                        "positional": "none", "eps": 1e-5, "feature_map": "none"}),
              choices=({"activation": ("relu", "gelu", "silu")} if _op == RM else
                       {"mixer": ref.MIXERS, "residual": ref.RESIDUALS, "norm": ref.NORMS,
                        "activation": BLOCK_ACTIVATIONS, "positional": ref.POSITIONALS,
                        "feature_map": FEATURE_MAPS}),
              fixed={"params": "the block's parameter tensors, drawn by case.params",
                     "parts": "which implementation computes each part: an implementation's "
                              "own wiring, not an input"})
