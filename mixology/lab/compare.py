"""Compare training recipes: every config of a grid x every seed, then a table of the final
validation loss (mean ± std over seeds, Welch's t-test against the first config) and a PNG of
the loss curves against step and wall time (mean line, min-max band over seeds).

    python -m mixology compare --preset shakespeare-char-cpu --grid optimizer=adamw,muon \\
        --seeds 3 --out runs/cmp
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import fields
from pathlib import Path

import numpy as np

from mixology.lab.model import ModelConfig, preset
from mixology.lab.train import TrainConfig, train


def grid_configs(grid: dict[str, list]) -> list[dict]:
    """Every combination of the grid's values, first values first."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def welch(a: list[float], b: list[float]) -> tuple[float, float]:
    """(t, two-sided p) of Welch's t-test of mean(a) != mean(b); p = nan with < 2 samples."""
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    if va + vb == 0:
        return (math.inf if np.mean(a) != np.mean(b) else 0.0), (0.0 if np.mean(a) != np.mean(b)
                                                                 else 1.0)
    t = (np.mean(a) - np.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return float(t), 2 * _t_tail(abs(float(t)), df)


def _t_tail(t: float, df: float) -> float:
    """P(T > t), t >= 0, for Student's t with df degrees of freedom:
    ½ · I_x(df/2, ½) with x = df / (df + t²), the regularized incomplete beta function."""
    return 0.5 * _betainc(df / 2, 0.5, df / (df + t * t))


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), by its continued fraction
    (Lentz's method; Numerical Recipes' betacf), accurate to ~1e-12."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast on the other side
        return 1.0 - _betainc(b, a, 1 - x)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return front * h / a


def run_grid(preset_name: str, grid: dict[str, list], seeds: int, out: str | Path,
             base: dict | None = None, progress: bool = True) -> list[dict]:
    """Train every config x seed into out/<config>/seed<k>; returns a row per config."""
    out = Path(out)
    model_keys = {f.name for f in fields(ModelConfig)}
    rows = []
    for overrides in grid_configs(grid):
        settings = {**(base or {}), **overrides}
        m = {k: v for k, v in settings.items() if k in model_keys}
        t = {k: v for k, v in settings.items() if k not in model_keys}
        label = ",".join(f"{k}={v}" for k, v in overrides.items()) or "base"
        finals, curves, walls = [], [], []
        for seed in range(seeds):
            cfg = TrainConfig.from_dict({**t, "seed": 1337 + seed})
            run = train(preset(preset_name, **m), cfg, out / label / f"seed{seed}",
                        progress=progress)
            evals = [r for r in run.metrics if "val_loss" in r]
            finals.append(evals[-1]["val_loss"])
            curves.append([(r["step"], r["val_loss"]) for r in evals])
            walls.append([r["elapsed"] for r in evals])
        rows.append({"config": label, "final_val": finals, "curves": curves, "walls": walls})
    for r in rows:
        r["mean"], r["std"] = float(np.mean(r["final_val"])), float(
            np.std(r["final_val"], ddof=1)) if len(r["final_val"]) > 1 else math.nan
        r["t"], r["p"] = welch(r["final_val"], rows[0]["final_val"])
    (out / "compare.json").write_text(json.dumps(rows, indent=1))
    return rows


def table(rows: list[dict]) -> str:
    seeds = len(rows[0]["final_val"]) if rows else 0
    lines = [f"{'config':<40} {'final val loss':>22} {'p vs first':>11}"]
    for i, r in enumerate(rows):
        pm = f"{r['mean']:.4f} ± {r['std']:.4f}" if seeds > 1 else f"{r['mean']:.4f}"
        p = "-" if i == 0 else ("n/a" if math.isnan(r["p"]) else f"{r['p']:.3g}")
        lines.append(f"{r['config']:<40} {pm:>22} {p:>11}")
    if seeds < 2:
        lines.append("one seed: no spread, no test; differences are not significant")
    else:
        lines.append(f"mean ± std over {seeds} seeds; p: Welch's t-test of the final "
                     "validation loss against the first config")
    return "\n".join(lines)


def plot(rows: list[dict], path: str | Path) -> Path:
    """Validation loss per config against the step and against the wall time (the mean over
    seeds, the min-max band; the wall time of an evaluation is its mean over seeds)."""
    # matplotlib loads only to draw, with the Agg backend set before pyplot
    import matplotlib

    matplotlib.use("Agg")
    # matplotlib loads only to draw, with the Agg backend set before pyplot
    import matplotlib.pyplot as plt

    fig, (ax, ax_w) = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for r in rows:
        steps = [s for s, _ in r["curves"][0]]
        vals = np.array([[v for _, v in c] for c in r["curves"]])
        wall = np.array(r["walls"]).mean(0) if r.get("walls") else None
        for a, x in ((ax, steps), (ax_w, wall)):
            if x is None:
                continue
            a.plot(x, vals.mean(0), label=r["config"])
            a.fill_between(x, vals.min(0), vals.max(0), alpha=0.2)
    ax.set(xlabel="step", ylabel="validation loss",
           title=f"{len(rows)} configs x {len(rows[0]['curves'])} seeds (band: min-max)")
    ax_w.set(xlabel="wall time (s, mean over seeds)", title="against wall time")
    for a in (ax, ax_w):
        a.legend(fontsize=8)
        a.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
