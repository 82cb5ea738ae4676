"""Looking inside a lab model: each block traced sublayer by sublayer, attention patterns,
and the training statistics a run records at each evaluation.

``trace(model, idx)`` runs every block through the reference composition of
``transformer_block`` (its wiring, norms and branches, ``mixology.ops.blocks.reference``) on
the block's own parameters, keeping the residual stream entering and leaving it, each
sublayer's output and each attention pattern (the attention op run again on the block's q, k
with v = I, so A · I = A). Every implementation computes the reference's function, so the
trace describes the model whatever its ``impl``; a property checks that the trace's output
is the model's.
"""

from __future__ import annotations

import math

import torch

from mixology.lab.model import CausalLM
from mixology.ops.blocks import reference as blocks
from mixology.ops.positional.reference import rope_angles, rotate


def _recording(op, patterns: list, qk: list):
    def attention(q, k, v, *args):
        eye = torch.eye(q.shape[2], dtype=q.dtype, device=q.device)
        patterns.append(op(q, k, eye.expand(*q.shape[:2], -1, -1).contiguous(), *args))
        qk.append((q, k))
        return op(q, k, v, *args)
    return attention


def trace_block(block, x: torch.Tensor) -> dict:
    """{"in", "mix", "ffn" (None for attention-only), "out", "pattern" ((B, H, T, T) or
    None for token_mix and linear attention), "qk" (the queries and keys (B, H, T, d) the
    attention saw, position encoding applied, or None)} of one TransformerBlock on ``x``."""
    cfg, p = block.config, dict(block.params)
    patterns: list = []
    qk: list = []
    c = dict(blocks.REFERENCE.parts)
    for name in ("softmax_attention", "quadratic_attention"):
        c[name] = _recording(c[name], patterns, qk)
    norms = {name: blocks.norm_fn(c, cfg["norm"], p, name, cfg["eps"])
             for name in blocks.NORM_NAMES}
    seen = {"mix": None, "ffn": None}

    def mix(h):
        seen["mix"] = blocks.mix_branch(c, p, h, cfg["num_heads"], cfg["mixer"], cfg["causal"],
                                        cfg["positional"], cfg["feature_map"])
        return seen["mix"]

    def ffn(h):
        seen["ffn"] = blocks.ffn_branch(c, p, h, cfg["activation"])
        return seen["ffn"]

    out = blocks.WIRING[cfg["residual"]](x, mix, None if cfg["activation"] == "none" else ffn,
                                         norms)
    return {"in": x, **seen, "out": out, "pattern": patterns[0] if patterns else None,
            "qk": qk[0] if qk else None}


def trace(model: CausalLM, idx: torch.Tensor) -> tuple[list[dict], torch.Tensor]:
    """(every block's trace, logits) of ``idx``."""
    x, layers = model.embed(idx), []
    for block in model.blocks:
        t = trace_block(block, x)
        layers.append(t)
        x = t["out"]
    return layers, model.unembed_stream(x)


def rms(t: torch.Tensor | None) -> float | None:
    return None if t is None else float(t.detach().float().pow(2).mean().sqrt())


def entropy(pattern: torch.Tensor, causal: bool = True) -> list[float]:
    """Mean entropy (nats) of each head's attention distribution over the keys; quadratic
    attention's rows are normalised first (its scores are not a distribution)."""
    a = pattern.detach().double().clamp(min=0)
    a = a / a.sum(-1, keepdim=True).clamp(min=1e-300)
    h = -(a * a.clamp(min=1e-300).log()).sum(-1)  # (B, H, T)
    return [float(v) for v in h.mean(dim=(0, 2))]


HIST_BINS = 41


def histogram(t: torch.Tensor | None) -> dict | None:
    """{"lo", "hi", "counts"}: the values of ``t`` in HIST_BINS equal bins over [-m, m], m
    the largest magnitude (so every value is counted)."""
    if t is None:
        return None
    v = t.detach().float().flatten()
    m = float(v.abs().max()) or 1.0
    counts = torch.histc(v, bins=HIST_BINS, min=-m, max=m)
    return {"lo": -m, "hi": m, "counts": [int(c) for c in counts]}


@torch.no_grad()
def layer_stats(model: CausalLM, idx: torch.Tensor) -> list[dict]:
    """Per layer, on the probe ``idx``: RMS of the residual stream entering it, of each
    sublayer's output and of the stream leaving it; attention entropy per head (nats, and
    ln T for reference: uniform over all keys); histograms of the sublayers' outputs and of
    the stream leaving the layer ("hist": {"mix", "ffn", "out"})."""
    layers, _ = trace(model, idx)
    return [{"resid_rms": rms(t["in"]), "mix_rms": rms(t["mix"]), "ffn_rms": rms(t["ffn"]),
             "out_rms": rms(t["out"]),
             "entropy": None if t["pattern"] is None else entropy(t["pattern"]),
             "hist": {name: histogram(t[name]) for name in ("mix", "ffn", "out")}}
            for t in layers]


@torch.no_grad()
def qk_stats(q: torch.Tensor, k: torch.Tensor) -> list[dict]:
    """Per head, of the queries and keys (B, H, T, d) of a causal attention: the mean norm
    of q and of k, and the mean, std and largest magnitude of the scaled scores q·k/√d over
    the causal pairs."""
    d = q.shape[-1]
    s = (q.double() @ k.double().transpose(-1, -2)) / math.sqrt(d)
    T = q.shape[2]
    mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    out = []
    for h in range(q.shape[1]):
        v = s[:, h][:, mask]
        out.append({"q_norm": float(q[:, h].double().norm(dim=-1).mean()),
                    "k_norm": float(k[:, h].double().norm(dim=-1).mean()),
                    "score_mean": float(v.mean()), "score_std": float(v.std(correction=0)),
                    "score_max_abs": float(v.abs().max())})
    return out


@torch.no_grad()
def score_by_distance(q: torch.Tensor, k: torch.Tensor) -> list[float]:
    """Mean |q_t·k_s|/√d of every head, against the distance t - s = 0, 1, ..., T-1."""
    s = ((q.double() @ k.double().transpose(-1, -2)) / math.sqrt(q.shape[-1])).abs()
    T = q.shape[2]
    t, src = torch.arange(T)[:, None], torch.arange(T)[None, :]
    dist = (t - src).to(q.device)
    return [float(s[..., dist == r].mean()) for r in range(T)]


def grad_rms(model: CausalLM) -> list[float | None]:
    """Per layer, the RMS of the gradients of the block's parameters (None before any)."""
    out = []
    for block in model.blocks:
        grads = [p.grad for p in block.parameters() if p.grad is not None]
        if not grads:
            out.append(None)
            continue
        sq = sum(float(g.detach().float().pow(2).sum()) for g in grads)
        out.append(math.sqrt(sq / sum(g.numel() for g in grads)))
    return out


def rope_shifted(x: torch.Tensor, offset: int) -> torch.Tensor:
    """``x`` (B, H, T, d), already rotated by RoPE (rotate-half) at positions 0..T-1, rotated
    on to positions offset..offset+T-1: RoPE's rotations compose, R_{t+P} = R_P R_t."""
    d = x.shape[-1]
    angle = rope_angles(offset + 1, d, x.device, torch.float64)[-1]
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    y1, y2 = rotate(x[..., : d // 2], x[..., d // 2:], cos, sin)
    return torch.cat([y1, y2], dim=-1)
