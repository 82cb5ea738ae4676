"""The lab's CPU benchmark: a recipe against nanoGPT's shakespeare-char CPU baseline, side by
side in one run on one machine.

    python perf/lab_cpu.py [--out perf/lab] [--recipe key=value ...] [--quick]

The baseline is the ``shakespeare-char-cpu`` preset as published (4 layers, 4 heads, 128
wide, context 64, batch 12, AdamW 1e-3 → 1e-4 cosine, 100 warm-up steps, 2000 steps, no
dropout; the public figure: validation loss 1.88). The recipe is the same model with the
settings given (default: the lab's best, RECIPE below). Both evaluate every 50 steps on the
same 200 validation windows. Reported: the step and the wall time at which each first
reaches validation loss 1.88, their ratios (goal: at most half the steps and 60% of the
time), tokens/s, and the tokens/s of each transformer_block implementation on this model
(Triton through the interpreter on CPU: a code path, not a speed). Written to OUT:
``cpu.json``, ``cpu_curves.png``, ``cpu.md`` and ``cpu_sample.txt`` (the recipe's model).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from mixology import registry  # noqa: E402
from mixology.lab.model import preset  # noqa: E402
from mixology.lab.train import TRAIN_PRESETS, TrainConfig, load_run, sample_text, train  # noqa: E402

TARGET = 1.88
EVAL_EVERY = 50
# the lab's best recipe on this CPU model (docs/lab.md says how it was chosen)
RECIPE = dict(optimizer="muon", steps=1000, muon_lr=0.02, lr=3e-3, min_lr=3e-4, warmup=50)


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def run(name: str, settings: dict, out: Path) -> dict:
    model_keys = set(preset("shakespeare-char-cpu").to_dict())
    m = {k: v for k, v in settings.items() if k in model_keys}
    t = {k: v for k, v in settings.items() if k not in model_keys}
    cfg = TrainConfig(**{**TRAIN_PRESETS["shakespeare-char-cpu"], "eval_every": EVAL_EVERY, **t})
    print(f"== {name}: {json.dumps(settings)}", flush=True)
    result = train(preset("shakespeare-char-cpu", **m), cfg, out / name)
    rows = result.metrics
    evals = [r for r in rows if "val_loss" in r]
    hit = next((r for r in evals if r["val_loss"] <= TARGET), None)
    tps = statistics.median(r["tokens_per_s"] for r in rows[5:])
    return {"name": name, "settings": settings, "steps": cfg.steps,
            "curve": [(r["step"], r["val_loss"], r["elapsed"]) for r in evals],
            "final_val": evals[-1]["val_loss"], "val_loss_all": rows[-1].get("val_loss_all"),
            "best_val": result.best_val, "wall_s": rows[-1]["elapsed"],
            "step_at_target": hit and hit["step"], "time_at_target": hit and hit["elapsed"],
            "tokens_per_s": tps}


def impl_speeds(steps: int = 6) -> dict[str, float]:
    """Median training tokens/s of the baseline model on each transformer_block impl."""
    speeds = {}
    for impl in registry.implementations("transformer_block", "cpu"):
        cfg = TrainConfig(**{**TRAIN_PRESETS["shakespeare-char-cpu"], "steps": steps,
                             "eval_every": steps, "eval_windows": 4, "eval_all": False,
                             "stats": False, "sample_tokens": 0})
        tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"mixology-lab-speed-{impl}"
        r = train(preset("shakespeare-char-cpu", impl=impl), cfg, tmp, progress=False)
        speeds[impl] = statistics.median(m["tokens_per_s"] for m in r.metrics[2:])
    return speeds


def compare_to_baseline(b: dict, r: dict) -> dict:
    """Recipe / baseline in steps and wall time to TARGET. A baseline that never reaches it
    is taken at its last step and full wall time (it needs at least those), so the ratios are
    then upper bounds (``bound``)."""
    if not r["step_at_target"]:
        return {"steps": None, "time": None, "bound": False}
    b_step = b["step_at_target"] or b["curve"][-1][0]
    b_time = b["time_at_target"] or b["curve"][-1][2]
    return {"steps": round(r["step_at_target"] / b_step, 3),
            "time": round(r["time_at_target"] / b_time, 3),
            "bound": not b["step_at_target"]}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for r in results:
        steps, vals, secs = zip(*r["curve"], strict=True)
        ax1.plot(steps, vals, label=r["name"])
        ax2.plot(secs, vals, label=r["name"])
    for ax, xlabel in ((ax1, "optimizer step"), (ax2, "wall time (s)")):
        ax.axhline(TARGET, color="grey", ls="--", lw=0.8, label=f"val loss {TARGET}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation loss")
        ax.set_ylim(1.4, 3.0)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("shakespeare-char-cpu: baseline vs recipe (one run, one machine)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(report: dict) -> str:
    base, rec = report["runs"]
    lines = ["| run | settings | steps | reaches 1.88 at step | at time (s) | final val | "
             "val (every token) | tokens/s |", "|---|---|---|---|---|---|---|---|"]
    for r in (base, rec):
        lines.append(f"| {r['name']} | `{json.dumps(r['settings'])}` | {r['steps']} | "
                     f"{r['step_at_target'] or 'not reached'} | "
                     f"{r['time_at_target'] and round(r['time_at_target'], 1)} | "
                     f"{r['final_val']:.4f} | {r['val_loss_all']:.4f} | "
                     f"{r['tokens_per_s']:,.0f} |")
    ratio = report["ratios"]
    bound = ("" if not ratio.get("bound") else
             f" The baseline does not reach {TARGET} on the evaluation windows in its "
             f"{base['steps']} steps (final {base['final_val']:.4f}; every validation token: "
             f"{base['val_loss_all']:.4f}): the ratios take its full run, so they are upper "
             "bounds.")
    lines += ["", f"Recipe / baseline to validation loss {TARGET}: steps "
              f"{ratio['steps']}, wall time {ratio['time']} (goal: at most 0.5 and 0.6)."
              + bound, "",
              "| transformer_block impl | training tokens/s |", "|---|---|"]
    lines += [f"| {k} | {v:,.0f} |" for k, v in report["impl_tokens_per_s"].items()]
    lines += ["", f"Machine: {report['machine']}; torch {report['torch']}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="perf/lab")
    ap.add_argument("--recipe", action="append", default=[], metavar="KEY=VALUE",
                    help="the recipe's settings (default: RECIPE in this file)")
    ap.add_argument("--quick", action="store_true", help="40 steps each: the code path")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite cpu.md and cpu_curves.png from OUT/cpu.json (no training)")
    ap.add_argument("--runs", default="runs/lab_cpu", help="where the run folders go")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        report = json.loads((out / "cpu.json").read_text())
        report["ratios"] = compare_to_baseline(*report["runs"])
        (out / "cpu.json").write_text(json.dumps(report, indent=1))
        plot(report["runs"], out / "cpu_curves.png")
        (out / "cpu.md").write_text(markdown(report))
        print(markdown(report))
        return 0
    recipe = dict(RECIPE)
    for item in args.recipe:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--recipe wants key=value, got {item!r}")
        recipe[key] = _value(value)
    base = {}
    if args.quick:
        base, recipe = {"steps": 40, "warmup": 5}, {**recipe, "steps": 20, "warmup": 5}
    runs_dir = Path(args.runs)
    torch.manual_seed(0)
    results = [run("baseline", base, runs_dir), run("recipe", recipe, runs_dir)]
    b, r = results
    ratios = compare_to_baseline(b, r)
    report = {"runs": results, "ratios": ratios, "target": TARGET,
              "impl_tokens_per_s": impl_speeds(3 if args.quick else 6),
              "machine": f"{platform.processor() or platform.machine()}, "
                         f"{os.cpu_count()} cores, {torch.get_num_threads()} torch threads",
              "torch": torch.__version__,
              "date": time.strftime("%Y-%m-%d")}
    (out / "cpu.json").write_text(json.dumps(report, indent=1))
    plot(results, out / "cpu_curves.png")
    (out / "cpu.md").write_text(markdown(report))
    model, tok = load_run(runs_dir / "recipe")
    (out / "cpu_sample.txt").write_text(sample_text(model, tok, "ROMEO:", 400, seed=0))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
