"""The lab's mutants: bugs that training code really has, one seam each.

Each mutant is a context manager that replaces one function of the lab (the data windows, a
block's construction, the loss, the schedule, the optimizer groups, the accumulation, the
resume) by a copy with one plausible bug, so the lab's properties (``spec/lab.py``) can be
shown to reject every one of them (``tests/lab/test_lab_spec.py``), as the ops' mutants are.

    with LAB_MUTANTS["targets_not_shifted"]():
        spec.lab.targets_are_the_next_tokens()   # raises AssertionError
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mixology.lab import data, model, train
from mixology.nn import TransformerBlock
from mixology.registry import patched


def targets_not_shifted():
    """The windows' targets are the inputs themselves: the model learns to copy the
    current character, not to predict the next one."""
    def windows(d, starts, context):
        w = d[starts[:, None] + torch.arange(context)]
        return w, w.clone()
    return patched(data, _windows=windows)


def causal_leak_in_one_layer():
    """Block 0 is built without its causal mask (one flag forgotten in one layer)."""
    def make_block(c, layer, **kw):
        inner = c.positional if c.positional in ("rope", "alibi") else "none"
        return TransformerBlock(c.d_model, c.n_heads, c.ff_mult * c.d_model, mixer=c.mixer,
                                causal=layer != 0, residual=c.residual, norm=c.norm,
                                activation=c.activation, eps=c.eps, positional=inner,
                                feature_map=c.feature_map, impl=c.impl, **kw)
    return patched(model, make_block=make_block)


def tied_weights_copied():
    """Tying by copy: the unembedding starts as its own matrix, a second tensor the two
    uses train apart (and the parameter count doubles the vocabulary's)."""
    def unembedding(c, tok_emb, **kw):
        return torch.nn.Parameter(tok_emb.weight.detach().clone())
    return patched(model, unembedding=unembedding)


def loss_over_padding():
    """Padding targets are scored as token 0 and counted in the mean (no ignore_index)."""
    def lm_loss(logits, targets):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                               targets.reshape(-1).clamp(min=0))
    return patched(model, lm_loss=lm_loss)


def warmup_off_by_its_length():
    """The cosine's progress counts from step 0, not from the end of the warm-up: the
    decay starts ``warmup`` steps early and reaches the floor ``warmup`` steps early."""
    def lr_at(step, peak, cfg):
        floor = peak * cfg.min_lr / cfg.lr
        if step < cfg.warmup:
            return peak * (step + 1) / cfg.warmup
        progress = min(1.0, step / max(1, cfg.steps - cfg.warmup))
        return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))
    return patched(train, lr_at=lr_at)


def muon_on_the_embedding():
    """Every 2-D weight goes to Muon, the token embedding (and an untied unembedding) too."""
    original = train.param_groups

    def param_groups(m, cfg):
        groups = original(m, cfg)
        if cfg.optimizer == "muon":
            moved = [(n, p) for n, p in groups["adamw_decay"] if p.ndim == 2]
            groups["muon"] += moved
            groups["adamw_decay"] = [(n, p) for n, p in groups["adamw_decay"] if p.ndim != 2]
        return groups
    return patched(train, param_groups=param_groups)


def accumulation_without_dividing_by_k():
    """Each micro-batch's loss is backpropagated as is: the gradient is k times too large."""
    def accumulate(m, micro_batches, cfg):
        total = 0.0
        for x, y in micro_batches:
            _, loss = m(x.to(cfg.device), y.to(cfg.device))
            loss.backward()
            total += float(loss.detach())
        return total / len(micro_batches)
    return patched(train, accumulate=accumulate)


def resume_forgets_the_optimizer_state():
    """Resume restores the model, the step and the data generator, not the optimizers'
    moments: AdamW restarts its bias correction and Muon its momentum."""
    def load_checkpoint(path, m, opts, gen):
        state = torch.load(path, weights_only=False)
        m.load_state_dict(state["model"])
        gen.set_state(state["generator"])
        return state["step"], state["best_val"]
    return patched(train, load_checkpoint=load_checkpoint)


def muon_one_newton_schulz_step():
    """Muon built with one Newton-Schulz step instead of the five its band assumes (to save
    time): the update is not orthogonalised."""
    original = train.make_optimizers

    def make_optimizers(m, cfg):
        opts = original(m, cfg)
        for o in opts:
            if isinstance(o, torch.optim.Muon):
                for g in o.param_groups:
                    g["ns_steps"] = 1
        return opts
    return patched(train, make_optimizers=make_optimizers)


LAB_MUTANTS = {f.__name__: f for f in (
    targets_not_shifted, causal_leak_in_one_layer, tied_weights_copied, loss_over_padding,
    warmup_off_by_its_length, muon_on_the_embedding, accumulation_without_dividing_by_k,
    resume_forgets_the_optimizer_state, muon_one_newton_schulz_step)}
