"""The lab's properties: the training harness is verified like the ops.

A lab property is a plain function ``fn()`` that raises ``AssertionError`` when the lab (its
data windows, model, loss, schedule, optimizer groups, accumulation, resume, Muon) breaks a
rule; registering it is the one line ``@lab_property``. Each reaches the lab through its
modules (``data.batch``, ``train.lr_at``, ...), so a mutant that replaces one function
(``mixology.lab.mutants``) is seen, and ``tests/lab/test_lab_spec.py`` shows that every property
holds, every mutant is rejected and every property rejects a mutant.
"""

from __future__ import annotations

import functools
import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from einops import einsum

from mixology.lab import data, model, tracing, train
from mixology.numerics.tolerance import FACTOR

LAB_PROPERTIES: dict[str, Callable[[], None]] = {}


def lab_property(fn):
    LAB_PROPERTIES[fn.__name__] = fn
    return fn


TINY = dict(vocab_size=11, context=8, d_model=8, n_layers=2, n_heads=2, ff_mult=2)
CAUSAL_CONFIGS = [
    dict(mixer=m, positional=p, activation=a, residual=r, norm=n)
    for m, p, a, r, n in [
        ("softmax_attention", "learned", "gelu", "pre", "layer"),
        ("softmax_attention", "rope", "swiglu", "post", "rms"),
        ("softmax_attention", "alibi", "bilinear", "sandwich", "layer"),
        ("softmax_attention", "sinusoidal", "none", "pre", "none"),
        ("quadratic_attention", "rope", "bilinear", "pre", "none"),
        ("quadratic_attention", "none", "relu", "sandwich", "rms"),
    ]]


def tiny_model(dtype=torch.float64, seed=0, **kw) -> model.CausalLM:
    torch.manual_seed(seed)
    return model.CausalLM(model.ModelConfig(**{**TINY, **kw}), dtype=dtype)


def tiny_text() -> str:
    """The first 20,000 characters of the corpus in a file (the trainer reads a file)."""
    path = Path(tempfile.gettempdir()) / "mixology-lab-spec-20k.txt"
    if not path.exists():
        path.write_text(data.load_text()[:20_000], encoding="utf-8")
    return str(path)


def tiny_train_config(**kw) -> train.TrainConfig:
    return train.TrainConfig(**{**dict(steps=6, batch_size=4, eval_every=3, eval_windows=8,
                                       warmup=2, lr=3e-3, min_lr=3e-4, text=tiny_text()),
                                **kw})


@lab_property
def targets_are_the_next_tokens():
    """Every window's target at position t is the token after its input at t, in the random
    training batches, the fixed evaluation windows and the padded windows of a whole split
    (which hold every token once, the padding targeted IGNORE)."""
    tokens = torch.arange(1000)
    x, y = data.batch(tokens, 8, 16, torch.Generator().manual_seed(0))
    assert torch.equal(y, x + 1), "batch: y is not x shifted by one"
    x, y = data.eval_windows(tokens, 16, 8, seed=1)
    assert torch.equal(y, x + 1), "eval_windows: y is not x shifted by one"
    x, y = data.padded_windows(tokens[:50], 16)
    real = y != data.IGNORE
    assert torch.equal(y[real], x[real] + 1), "padded_windows: y is not x shifted by one"
    assert torch.equal(y[real], tokens[1:50]), "padded_windows: not every token once"


@lab_property
def whole_model_is_causal():
    """∂logits_t/∂token_s = 0 for s > t in every causal configuration: changing tokens s..
    leaves the logits of positions ..s-1 bit for bit, and the gradient of those logits never
    reaches the embeddings of later tokens."""
    for cfg in CAUSAL_CONFIGS:
        m = tiny_model(**cfg)
        idx = torch.randint(0, 11, (2, 8), generator=torch.Generator().manual_seed(1))
        for s in (1, 4, 7):
            moved = idx.clone()
            moved[:, s:] = (moved[:, s:] + 1) % 11
            a, _ = m(idx)
            b, _ = m(moved)
            assert torch.equal(a[:, :s], b[:, :s]), f"{cfg}: logits before {s} moved"
        seen = {}

        def keep(module, inputs, out, seen=seen):
            out.retain_grad()
            seen["emb"] = out

        hook = m.tok_emb.register_forward_hook(keep)
        logits, _ = m(idx)
        hook.remove()
        logits[:, :4].sum().backward()
        assert not seen["emb"].grad[:, 4:].any(), f"{cfg}: gradient reaches later tokens"


@lab_property
def trace_is_the_model():
    """The sublayer-by-sublayer trace (lab.tracing, the reference composition on each
    block's parameters) gives the model's logits (float64, to 1e-12 of their scale) in every
    causal configuration, its patterns are causal, and softmax's rows sum to one."""

    for cfg in CAUSAL_CONFIGS:
        m = tiny_model(**cfg)
        idx = torch.randint(0, 11, (2, 8), generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            want, _ = m(idx)
            layers, got = tracing.trace(m, idx)
        err = float((got - want).abs().max() / want.abs().max())
        assert err <= 1e-12, f"{cfg}: the trace misses the logits by {err:.1e}"
        for layer, t in enumerate(layers):
            a = t["pattern"]
            assert not a.triu(1).any(), f"{cfg}: layer {layer} attends to later tokens"
            if cfg["mixer"] == "softmax_attention":
                assert torch.allclose(a.sum(-1), torch.ones(()).double()), cfg


@lab_property
def initial_loss_is_ln_vocab():
    """At init (std 0.02, final LayerNorm, tied weights) the logits have std σ ≈ 0.02·√d_model
    = 0.23 at d = 128, so the loss is ln V + σ²/2 ≈ ln V + 0.03; with tied weights the input
    token's own logit is larger (the residual stream carries its embedding: measured +0.05 in
    all). Bound: within 0.1 of ln 65; an init std of 1 (a common slip) gives a loss past 10."""
    torch.manual_seed(0)
    m = model.CausalLM(model.ModelConfig(vocab_size=65, d_model=128, n_heads=4, context=64))
    tokens = torch.randint(0, 65, (2000,))
    x, y = data.batch(tokens, 8, 64, torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, loss = m(x, y)
    assert abs(float(loss) - math.log(65)) < 0.1, f"initial loss {float(loss):.4f}, ln 65 = 4.17"


@lab_property
def loss_ignores_padding():
    """The loss of padded windows is the mean over the real targets only: the trainer's
    evaluation of every token of a split (padded last window) equals, to float64 rounding,
    the token-weighted loss of the unpadded windows run one by one."""
    m = tiny_model()
    tokens = torch.randint(0, 11, (38,), generator=torch.Generator().manual_seed(2))
    windows = data.padded_windows(tokens, 8)
    got = train.evaluate(m, windows, train.TrainConfig(batch_size=3))
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in zip(*windows, strict=True):
            n = int((y != data.IGNORE).sum())
            logits, _ = m(x[None, :n])
            total += float(torch.nn.functional.cross_entropy(logits[0], y[:n], reduction="sum"))
            count += n
    assert count == 37
    assert math.isclose(got, total / count, rel_tol=1e-12), (got, total / count)


@lab_property
def schedule_warms_up_then_follows_the_cosine():
    """Linear warm-up from peak/warmup to the peak at step warmup-1; the cosine starts at
    the peak at step warmup, is halfway at the middle of what follows and at the floor
    (peak · min_lr/lr) at the last step, never rising; Muon's peak takes the same shape."""
    cfg = train.TrainConfig(steps=100, warmup=10, lr=1e-3, min_lr=1e-4)
    lr = [train.lr_at(s, 1e-3, cfg) for s in range(101)]
    assert all(math.isclose(lr[s], 1e-3 * (s + 1) / 10) for s in range(10)), lr[:10]
    assert math.isclose(lr[10], 1e-3), f"the cosine starts at {lr[10]:.3e}, not the peak"
    assert math.isclose(lr[55], 5.5e-4), f"halfway: {lr[55]:.3e}, expected 5.5e-4"
    assert math.isclose(lr[100], 1e-4), f"last step: {lr[100]:.3e}, expected the floor"
    assert all(a >= b for a, b in zip(lr[10:], lr[11:], strict=False)), "the cosine rises"
    assert math.isclose(train.lr_at(100, 0.02, cfg), 2e-3)


@lab_property
def every_parameter_in_one_group_and_muon_only_on_hidden_matrices():
    """With AdamW, one optimizer holds every parameter; with Muon, Muon holds exactly the
    blocks' 2-D matrices and AdamW the rest (embeddings, unembedding, gains, biases), tied or
    untied, every parameter in exactly one group."""
    for tie in (True, False):
        m = tiny_model(tie_weights=tie)
        (adamw,) = train.make_optimizers(m, train.TrainConfig())
        held = [p for g in adamw.param_groups for p in g["params"]]
        assert {id(p) for p in held} == {id(p) for p in m.parameters()}
        opts = train.make_optimizers(m, train.TrainConfig(optimizer="muon"))
        train.check_groups(m, opts)
        muon = {id(p) for o in opts if isinstance(o, torch.optim.Muon)
                for g in o.param_groups for p in g["params"]}
        for name, p in m.named_parameters():
            want = name.startswith("blocks.") and p.ndim == 2
            assert (id(p) in muon) == want, f"{name}: {'in' if not want else 'not in'} Muon"


@lab_property
def accumulation_of_k_micro_batches_equals_one_batch():
    """The trainer's accumulation over k = 4 micro-batches gives the gradients and the loss
    of one batch made of them (float64, to rounding)."""
    m = tiny_model()
    tokens = torch.randint(0, 11, (500,), generator=torch.Generator().manual_seed(3))
    x, y = data.batch(tokens, 8, 8, torch.Generator().manual_seed(4))
    cfg = train.TrainConfig()
    one_loss = train.accumulate(m, [(x, y)], cfg)
    one = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    k_loss = train.accumulate(m, [(x[i:i + 2], y[i:i + 2]) for i in range(0, 8, 2)], cfg)
    assert math.isclose(one_loss, k_loss, rel_tol=1e-12), (one_loss, k_loss)
    for (name, p), g in zip(m.named_parameters(), one, strict=True):
        assert torch.allclose(p.grad, g, rtol=1e-10, atol=1e-14), f"{name}: gradients differ"


def _losses(run):
    return [(r["step"], r["train_loss"], r.get("val_loss")) for r in run.metrics]


@lab_property
def resume_equals_an_unbroken_run_and_the_same_seed_the_same_run():
    """A run stopped at step 2 and resumed gives the losses of an unbroken run, bit for bit
    on CPU, with AdamW and with Muon; the same seed twice gives the same run."""
    cfg_model = model.ModelConfig(**{**TINY, "d_model": 16, "n_layers": 1})
    with tempfile.TemporaryDirectory() as tmp:
        for optimizer in ("adamw", "muon"):
            cfg = tiny_train_config(optimizer=optimizer)
            whole = train.train(cfg_model, cfg, f"{tmp}/whole-{optimizer}", progress=False)
            again = train.train(cfg_model, cfg, f"{tmp}/again-{optimizer}", progress=False)
            assert _losses(whole) == _losses(again), f"{optimizer}: same seed, another run"
            train.train(cfg_model, cfg, f"{tmp}/split-{optimizer}", stop_at=2, progress=False)
            resumed = train.train(cfg_model, cfg, f"{tmp}/split-{optimizer}", resume=True,
                                  progress=False)
            assert _losses(resumed) == _losses(whole), f"{optimizer}: resumed != unbroken"


@lab_property
def tied_weights_share_one_tensor():
    """Tied: the unembedding is the embedding tensor itself (no second copy; both uses
    accumulate into its one gradient); untied: V·d more parameters."""
    m = tiny_model()
    assert m.output_weight is m.tok_emb.weight and m.unembed is None
    untied = tiny_model(tie_weights=False)
    assert (sum(p.numel() for p in untied.parameters())
            == sum(p.numel() for p in m.parameters()) + 11 * 8)
    logits, _ = m(torch.arange(8)[None])  # tokens 8..10 are only unembedded
    logits.sum().backward()
    assert m.tok_emb.weight.grad[8:].abs().sum() > 0, "the unembedding's gradient is lost"


NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # torch.optim.Muon's defaults
NS_STEPS = 5


def newton_schulz(g: torch.Tensor, coefficients=NS_COEFFICIENTS, steps=NS_STEPS,
                  eps: float = 1e-7) -> torch.Tensor:
    """The reference of Muon's orthogonalisation: X = G/‖G‖_F (the wide way round), then
    ``steps`` times X ← aX + (bA + cA²)X with A = XXᵀ; in X's dtype. Each singular value
    x of G/‖G‖_F maps to p(p(...p(x))) with p(x) = ax + bx³ + cx⁵."""
    a, b, c = coefficients
    tall = g.shape[0] > g.shape[1]
    x = g.mT if tall else g
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        gram = einsum(x, x, "i k, j k -> i j")
        poly = b * gram + c * einsum(gram, gram, "i k, k j -> i j")
        x = a * x + einsum(poly, x, "i k, k j -> i j")
    return x.mT if tall else x


def newton_schulz_band(x_min: float, coefficients=NS_COEFFICIENTS, steps=NS_STEPS):
    """[lo, hi] of p∘…∘p over normalised singular values in [x_min, 1]."""
    a, b, c = coefficients
    x = torch.linspace(x_min, 1.0, 200_001, dtype=torch.float64)
    for _ in range(steps):
        x = a * x + b * x**3 + c * x**5
    return float(x.min()), float(x.max())


@lab_property
def muon_update_in_the_newton_schulz_band():
    """One step of the lab's Muon on a hidden 64×32 matrix whose gradient has singular
    values spread over two decades: the update, divided by its learning rate, has singular
    values inside the band the Newton-Schulz coefficients give over the gradient's
    normalised singular values, and it equals the einops reference of the iteration within
    2× the reference's own bfloat16 error plus 2⁻⁸ (Muon iterates in bfloat16)."""
    m = tiny_model(dtype=torch.float32, d_model=32, ff_mult=2, n_layers=1)
    cfg = train.TrainConfig(optimizer="muon", muon_lr=1.0, weight_decay=0.0)
    opts = train.make_optimizers(m, cfg)
    (muon,) = [o for o in opts if isinstance(o, torch.optim.Muon)]
    w = next(p for p in muon.param_groups[0]["params"] if p.shape[0] != p.shape[1])
    gen = torch.Generator().manual_seed(5)
    u, _ = torch.linalg.qr(torch.randn(w.shape[0], w.shape[0], generator=gen))
    v, _ = torch.linalg.qr(torch.randn(w.shape[1], w.shape[1], generator=gen))
    k = min(w.shape)
    s = torch.logspace(0, -2, k)
    grad = (u[:, :k] * s) @ v[:, :k].mT
    before = w.detach().clone()
    w.grad = grad.clone()
    muon.step()
    lr = muon.param_groups[0]["lr"] * 0.2 * math.sqrt(max(w.shape))  # match_rms_adamw
    update = (before - w.detach()) / lr
    g64 = grad.double()
    sv = torch.linalg.svdvals
    exact = sv(newton_schulz(g64))
    x = sv(g64) / g64.norm()
    a, b, c = NS_COEFFICIENTS
    theory = x.clone()
    for _ in range(NS_STEPS):
        theory = a * theory + b * theory**3 + c * theory**5
    assert torch.allclose(exact, theory.sort(descending=True).values, atol=1e-9), \
        "the reference does not map singular values by the polynomial"
    err_ref = float((sv(newton_schulz(grad.bfloat16()).double()) - exact).abs().max())
    got = sv(update.double())
    err = float((got - exact).abs().max())
    bound = 2 * err_ref + 2**-8
    assert err <= bound, f"update's singular values off the reference by {err:.3e} > {bound:.3e}"
    lo, hi = newton_schulz_band(float(x.min()))
    assert lo - bound <= float(got.min()) and float(got.max()) <= hi + bound, \
        f"singular values {float(got.min()):.3f}..{float(got.max()):.3f} outside [{lo:.3f}, {hi:.3f}]"


CONVERGENCE_MODEL = dict(vocab_size=65, context=16, d_model=16, n_layers=1, n_heads=2,
                         ff_mult=2)


def loss_curve(impl: str, dtype: str = "float32", steps: int = 50) -> torch.Tensor:
    """Training losses of the tiny convergence model on ``impl``, in ``dtype``, step by step
    (every run starts from the same float32-drawn weights and sees the same batches)."""
    cfg = tiny_train_config(steps=steps, eval_every=steps, warmup=5, dtype=dtype)
    with tempfile.TemporaryDirectory() as tmp:
        run = train.train(model.ModelConfig(**CONVERGENCE_MODEL, impl=impl), cfg, tmp,
                          progress=False)
    return torch.tensor([r["train_loss"] for r in run.metrics], dtype=torch.float64)


@functools.lru_cache(maxsize=4)
def _reference_curves(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(float64 reference curve, running max of the float32 reference's drift from it)."""
    exact = loss_curve("reference", "float64", steps)
    return exact, (loss_curve("reference", "float32", steps) - exact).abs().cummax(0).values


def follows_the_reference_loss_curve(impl: str, steps: int = 50) -> None:
    """A tiny model trained ``steps`` steps on ``impl`` (float32) follows the float64
    reference's loss curve: at every step within 2x the largest drift of the float32
    reference from it so far, plus one float32 rounding of the loss (Liger-Kernel's
    convergence tests, with the tolerance derived rather than chosen)."""
    exact, drift = _reference_curves(steps)
    bound = FACTOR * drift + torch.finfo(torch.float32).eps * exact.abs()
    err = (loss_curve(impl, "float32", steps) - exact).abs()
    bad = (err > bound).nonzero().flatten().tolist()
    assert not bad, (f"{impl}: {len(bad)} of {steps} steps off the float64 reference's loss "
                     f"curve; first at step {bad[0] + 1}: off by {err[bad[0]]:.3e} > "
                     f"{bound[bad[0]]:.3e} (2 x the float32 reference's drift so far + one "
                     "rounding)")
