"""The lab's GPU benchmark: nanoGPT's shakespeare-char recipe to validation loss 1.47.

    python perf/lab_gpu.py [--out perf/lab] [--impl native] [--set key=value ...]
    python perf/lab_gpu.py --report-only [--out perf/lab]    # from a run's metrics so far

The ``shakespeare-char`` preset (6 layers, 6 heads, 384 wide, context 256, batch 64, AdamW
1e-3 → 1e-4, 5000 steps; bf16 autocast on CUDA) evaluated every 100 steps; the public figure
for this recipe is validation loss 1.47. Reported: the step and wall time at which it first
reaches 1.47, the final loss, tokens/s. Written to OUT: ``gpu.json``, ``gpu.md``,
``gpu_curves.png``. ``perf/run_gpu.sh lab OUT`` runs it within one 10-minute GPU command;
a run cut short still reports what it reached (``--report-only`` reads its metrics).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mixology.cli.common import parse_value  # noqa: E402
from mixology.lab.model import preset  # noqa: E402
from mixology.lab.train import TRAIN_PRESETS, TrainConfig, train  # noqa: E402

TARGET = 1.47


def summarize(run_dir: Path, settings: dict) -> dict:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "val_loss" in r]
    hit = next((r for r in evals if r["val_loss"] <= TARGET), None)
    return {"settings": settings, "steps_run": rows[-1]["step"] if rows else 0,
            "curve": [(r["step"], r["val_loss"], r["elapsed"]) for r in evals],
            "step_at_target": hit and hit["step"], "time_at_target": hit and hit["elapsed"],
            "final_val": evals[-1]["val_loss"] if evals else None,
            "tokens_per_s": statistics.median(r["tokens_per_s"] for r in rows[5:])
            if len(rows) > 5 else None}


def write(report: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (out / "gpu.json").write_text(json.dumps(report, indent=1))
    hit = (f"reached at step {report['step_at_target']}, {report['time_at_target']:.0f} s"
           if report["step_at_target"] else "not reached")
    (out / "gpu.md").write_text(
        f"{report.get('preset', 'shakespeare-char')} on {report.get('device', '?')}: "
        f"validation loss {TARGET} {hit}; final {report['final_val']} after {report['steps_run']} steps; "
        f"{report['tokens_per_s'] or 0:,.0f} tokens/s. Settings: "
        f"`{json.dumps(report['settings'])}`.\n")
    if report["curve"]:
        steps, vals, secs = zip(*report["curve"], strict=True)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(secs, vals, "o-", ms=2)
        ax.axhline(TARGET, color="grey", ls="--", lw=0.8, label=f"val loss {TARGET}")
        ax.set_xlabel("wall time (s)")
        ax.set_ylabel("validation loss")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "gpu_curves.png", dpi=110)
        plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="perf/lab")
    ap.add_argument("--runs", default="runs/lab_gpu")
    ap.add_argument("--impl", default="native", help="transformer_block implementation")
    ap.add_argument("--preset", default="shakespeare-char",
                    help="the model and training preset (shakespeare-char-cpu: a dry run)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args(argv)
    out, run_dir = Path(args.out), Path(args.runs)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"impl": args.impl, "eval_every": 100}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--set wants key=value, got {item!r}")
        settings[key] = parse_value(value)
    if not args.report_only:
        model_keys = set(preset(args.preset).to_dict())
        cfg = TrainConfig(**{**TRAIN_PRESETS.get(args.preset, {}),
                             **{k: v for k, v in settings.items() if k not in model_keys}})
        train(preset(args.preset, **{k: v for k, v in settings.items() if k in model_keys}),
              cfg, run_dir)
    if args.report_only and (out / "gpu.json").exists():
        settings = json.loads((out / "gpu.json").read_text())["settings"]
    report = summarize(run_dir, settings)
    report["preset"] = args.preset
    try:
        import torch

        report["device"] = (torch.cuda.get_device_name() if torch.cuda.is_available()
                            else "cpu")
    except Exception:  # noqa: BLE001 - the name is decoration
        report["device"] = "?"
    write(report, out)
    print((out / "gpu.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
