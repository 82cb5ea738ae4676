"""One self-contained HTML report of lab runs (images embedded), PNGs beside it.

    python -m mixology report RUN_DIR [RUN_DIR ...] [--out report.html] [--prompt TEXT]

Sections: the loss curves of every run overlaid; per-layer statistics over training (RMS of
the residual stream, of each sublayer's output and of the gradients, attention entropy per
head, from each run's stats.jsonl); attention heatmaps of the first run's best model on a
prompt, per layer and head; the per-token loss on a validation passage, as text coloured
white -> red (saturating at 7 nats); each run's samples.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import numpy as np
import torch

from mixology.lab import prepare, tracing
from mixology.lab.train import load_run

SATURATE_NATS = 7.0


def pyplot():
    """matplotlib's pyplot with the Agg backend."""
    # matplotlib loads only to draw, with the Agg backend set before pyplot
    import matplotlib

    matplotlib.use("Agg")
    # matplotlib loads only to draw, with the Agg backend set before pyplot
    import matplotlib.pyplot as plt

    return plt


def _read(run_dir: Path, name: str) -> list[dict]:
    path = run_dir / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def loss_curves(runs: list[Path], path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for run in runs:
        rows = _read(run, "metrics.jsonl")
        line, = ax.plot([r["step"] for r in rows], [r["train_loss"] for r in rows], lw=0.6,
                        alpha=0.5)
        ev = [r for r in rows if "val_loss" in r]
        ax.plot([r["step"] for r in ev], [r["val_loss"] for r in ev], "o-", ms=3,
                color=line.get_color(), label=f"{run.name} (val; train faint)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def layer_statistics(run: Path, path: Path) -> Path | None:
    rows = _read(run, "stats.jsonl")
    if not rows:
        return None
    plt = pyplot()
    keys = [("resid_rms", "residual stream RMS (in)"), ("mix_rms", "mixing sublayer RMS"),
            ("ffn_rms", "channel sublayer RMS"), ("grad_rms", "gradient RMS (pre-clip)")]
    fig, axes = plt.subplots(1, 5, figsize=(20, 3.6))
    steps = [r["step"] for r in rows]
    n_layers = len(rows[0]["layers"])
    for ax, (key, title) in zip(axes, keys, strict=False):
        for layer in range(n_layers):
            vals = [r["layers"][layer][key] for r in rows]
            if any(v is not None for v in vals):
                ax.plot(steps, [math.nan if v is None else v for v in vals], "o-", ms=2,
                        label=f"layer {layer}")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax = axes[-1]
    for layer in range(n_layers):
        ent = [r["layers"][layer]["entropy"] for r in rows]
        if ent[0] is None:
            continue
        for h in range(len(ent[0])):
            ax.plot(steps, [e[h] for e in ent], lw=1, label=f"L{layer}H{h}")
    ax.set_title(f"attention entropy per head (nats); clipped {rows[-1]['clip_fraction']:.0%} "
                 "of steps", fontsize=9)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.suptitle(run.name, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


@torch.no_grad()
def attention_heatmaps(model, tok, prompt: str, path: Path) -> Path | None:
    idx = tok.encode(prompt)[None, -model.config.context:]
    layers, _ = tracing.trace(model, idx)
    pats = [t["pattern"] for t in layers]
    if pats[0] is None:
        return None
    plt = pyplot()
    H = pats[0].shape[1]
    chars = [token_label(tok.decode([i])) for i in idx[0]]
    fig, axes = plt.subplots(len(pats), H, figsize=(2.6 * H, 2.6 * len(pats)), squeeze=False)
    for layer, a in enumerate(pats):
        for h in range(H):
            ax = axes[layer][h]
            ax.imshow(a[0, h].float().numpy(), cmap="viridis")
            ax.set_title(f"L{layer}H{h}", fontsize=8)
            ax.set_xticks(range(len(chars)), chars, fontsize=5)
            ax.set_yticks(range(len(chars)), chars, fontsize=5)
    fig.suptitle(f"attention on {prompt[:40]!r} (rows: query, columns: key)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


@torch.no_grad()
def token_losses(model, tok, tokens: torch.Tensor) -> list[tuple[str, float]]:
    """(character, loss of predicting it) for each token after the first of ``tokens``."""
    idx = tokens[None, :-1][:, :model.config.context]
    logits = model(idx)[0][0].float()
    targets = tokens[1:idx.shape[1] + 1]
    losses = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    return list(zip([tok.decode([t]) for t in targets], losses.tolist(), strict=True))


def loss_text_html(pairs: list[tuple[str, float]]) -> str:
    """Characters on a white -> red background, red at SATURATE_NATS and above."""
    spans = []
    for ch, loss in pairs:
        v = min(loss / SATURATE_NATS, 1.0)
        g = int(round(255 * (1 - v)))
        text = "⏎<br>" if ch == "\n" else html.escape(ch)
        spans.append(f'<span title="{loss:.2f} nats" style="background:rgb(255,{g},{g})">'
                     f"{text}</span>")
    return '<div class="tokens">' + "".join(spans) + "</div>"


def token_label(piece: str) -> str:
    """A token's text for an axis: whitespace and control characters escaped."""
    return "".join(repr(c)[1:-1] if c in "\n\t " or not c.isprintable() else c for c in piece)


def _img(path: Path | None, alt: str) -> str:
    if path is None:
        return f"<p><em>{html.escape(alt)}: not available for this run.</em></p>"
    b64 = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def build(run_dirs: list[str | Path], out: str | Path, prompt: str = "ROMEO:\nWhat say") -> Path:
    runs = [Path(r) for r in run_dirs]
    for r in runs:
        if not (r / "metrics.jsonl").exists():
            raise ValueError(f"run_dir: {str(r)!r} is not a run folder (no metrics.jsonl)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.with_suffix("")
    parts = ["<h2>Loss curves</h2>", _img(loss_curves(runs, Path(f"{stem}_loss.png")),
                                         "loss curves")]
    parts.append("<h2>Per-layer statistics over training</h2>")
    for i, r in enumerate(runs):
        parts.append(_img(layer_statistics(r, Path(f"{stem}_stats_{i}.png")),
                          f"statistics of {r.name}"))
    model, tok = load_run(runs[0])
    model.eval()
    parts += [f"<h2>Attention of {html.escape(runs[0].name)} on a prompt</h2>",
              _img(attention_heatmaps(model, tok, prompt, Path(f"{stem}_attention.png")),
                   "attention heatmaps")]
    cfg = json.loads((runs[0] / "config.json").read_text())["train"]
    val = prepare.prepare(cfg["text"], cfg.get("tokenizer", "char"),
                          bpe_vocab=cfg.get("bpe_vocab", 4096)).val
    pairs = token_losses(model, tok, torch.from_numpy(
        np.asarray(val[:model.config.context + 1], dtype=np.int64)))
    mean = sum(v for _, v in pairs) / len(pairs)
    parts += [f"<h2>Per-token loss on a validation passage ({html.escape(runs[0].name)}; "
              f"mean {mean:.3f} nats; red = {SATURATE_NATS:g} nats or more)</h2>",
              loss_text_html(pairs), "<h2>Samples</h2>"]
    for r in runs:
        sample = (r / "samples.txt").read_text() if (r / "samples.txt").exists() else "(none)"
        parts.append(f"<h3>{html.escape(r.name)}</h3><pre>{html.escape(sample)}</pre>")
    page = ("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>mixology lab report"
            "</title><style>body{font-family:sans-serif;max-width:1400px;margin:auto}"
            "img{max-width:100%}.tokens{font-family:monospace;white-space:pre-wrap;"
            "line-height:1.6}pre{background:#f6f6f6;padding:8px}</style></head><body>"
            f"<h1>mixology lab report: {', '.join(html.escape(r.name) for r in runs)}</h1>"
            + "\n".join(parts) + "</body></html>\n")
    out.write_text(page, encoding="utf-8")
    return out
