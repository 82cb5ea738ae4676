"""``mixology train``, ``compare``, ``sample``, ``report``, ``circuits``, ``explain`` and
``app``: the lab's small language models, trained, compared, sampled and looked inside, on
the command line or in the browser."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from mixology.cli.common import parse_value
from mixology.lab import circuits, compare, explain, report, settings
from mixology.lab.model import preset
from mixology.lab.train import TRAIN_PRESETS, TrainConfig, load_run, sample_text, train

PRESETS = ("shakespeare-char | shakespeare-char-cpu | attention_only_1L | attention_only_2L | "
           "transformer_1L | transformer_2L")


def add_commands(sub) -> None:
    tr = sub.add_parser("train", help="train a lab model (default: char-level tiny Shakespeare)",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog=settings.describe())
    tr.add_argument("--preset", default="shakespeare-char-cpu", help=PRESETS)
    tr.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a model or training setting (repeatable; the settings "
                         "and their values are listed below)")
    tr.add_argument("--out", help="run folder (default runs/PRESET)")
    tr.add_argument("--resume", action="store_true", help="go on from OUT/last.pt")
    tr.set_defaults(func=cmd_train)

    co = sub.add_parser("compare", help="train a grid of configs x seeds and compare them",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        epilog=settings.describe())
    co.add_argument("--preset", default="shakespeare-char-cpu")
    co.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                    help="a setting and its values to compare (repeatable: the product)")
    co.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="a setting shared by every config")
    co.add_argument("--seeds", type=int, default=3)
    co.add_argument("--out", required=True, help="folder for the runs, table and plot")
    co.set_defaults(func=cmd_compare)

    sa = sub.add_parser("sample", help="sample text from a trained run")
    sa.add_argument("run_dir")
    sa.add_argument("--prompt", default="\n")
    sa.add_argument("--tokens", type=int, default=500)
    sa.add_argument("--temperature", type=float, default=0.8)
    sa.add_argument("--top-k", type=int, default=200)
    sa.add_argument("--seed", type=int, default=0)
    sa.set_defaults(func=cmd_sample)

    rp = sub.add_parser("report", help="one HTML report of lab runs (images embedded)")
    rp.add_argument("run_dirs", nargs="+")
    rp.add_argument("--out", default=None, help="the HTML file (default RUN_DIR/report.html)")
    rp.add_argument("--prompt", default="ROMEO:\nWhat say")
    rp.set_defaults(func=cmd_report)

    ci = sub.add_parser("circuits", help="QK/OV circuits of an attention-only run")
    ci.add_argument("run_dir")
    ci.add_argument("--top", type=int, default=5)
    ci.add_argument("--out", default=None, help="heatmaps folder (default RUN_DIR/circuits)")
    ci.set_defaults(func=cmd_circuits)

    ap = sub.add_parser("app", help="the lab in the browser: train, watch, look inside, "
                                    "generate, compare (Streamlit: pip install 'mixology[app]')")
    ap.add_argument("--runs", default="runs", help="the folder of run folders (default runs)")
    ap.add_argument("--port", type=int, default=8501)
    ap.set_defaults(func=cmd_app)

    ex = sub.add_parser("explain", help="walk through a block step by step (text)")
    ex.add_argument("topic", help="token_mixer | ffn | swiglu | attention")
    for name in ("B", "T", "D", "H"):
        ex.add_argument(f"--{name}", type=int, default=None)
    ex.set_defaults(func=cmd_explain)


def _settings(items, flag: str) -> dict:
    """{key: value} of ``KEY=VALUE`` items, each checked against the settings' table."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{flag} wants key=value, got {item!r}")
        out[key] = _checked(flag, key, parse_value(value))
    return out


def _checked(flag: str, key: str, value):
    try:
        return settings.check(key, value)
    except ValueError as e:
        raise ValueError(f"{flag}: {e}") from None


def cmd_train(args) -> int:
    """Train a lab model: a preset, --set overrides of its model or training config."""
    m, t = settings.split(_settings(args.set, "--set"))
    model_cfg = preset(args.preset, **m)
    train_cfg = TrainConfig.from_dict({**TRAIN_PRESETS.get(args.preset, {}), **t})
    run = train(model_cfg, train_cfg, args.out or os.path.join("runs", args.preset),
                resume=args.resume)
    last = run.metrics[-1] if run.metrics else {}
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 reports
        return 0
    print(f"{run.out}: {len(run.metrics)} steps, best validation loss {run.best_val:.4f}, "
          f"last train loss {last.get('train_loss', float('nan')):.4f}")
    return 0


def cmd_compare(args) -> int:
    """Every grid config x seed, a table of the final validation loss and a PNG of the curves."""
    grid = {}
    for item in args.grid or []:
        key, sep, values = item.partition("=")
        if not sep or not values:
            raise ValueError(f"--grid wants key=v1,v2,..., got {item!r}")
        grid[key] = [_checked("--grid", key, parse_value(v)) for v in values.split(",")]
    base = _settings(args.set, "--set")
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    base = {**TRAIN_PRESETS.get(args.preset, {}), **base}
    rows = compare.run_grid(args.preset, grid, args.seeds, args.out, base)
    print(compare.table(rows))
    print(f"curves: {compare.plot(rows, os.path.join(args.out, 'curves.png'))}")
    return 0


def cmd_sample(args) -> int:
    model, tok = load_run(args.run_dir)
    print(sample_text(model, tok, args.prompt, args.tokens, temperature=args.temperature,
                      top_k=args.top_k, seed=args.seed))
    return 0


def cmd_report(args) -> int:
    """The HTML report of lab runs (mixology/lab/report.py)."""
    out = args.out or os.path.join(args.run_dirs[0], "report.html")
    path = report.build(args.run_dirs, out, args.prompt)
    print(f"{path} ({path.stat().st_size / 1e3:.0f} kB) and its PNGs beside it")
    return 0


def cmd_circuits(args) -> int:
    """Per head, the top singular values and token pairs of QK and OV; heatmaps."""
    model, tok = load_run(args.run_dir)
    print(circuits.summary(model, tok.pieces, args.top))
    paths = circuits.heatmaps(model, tok.pieces,
                              args.out or os.path.join(args.run_dir, "circuits"))
    print(f"{len(paths)} heatmap(s) in {os.path.dirname(paths[0])}")
    return 0


def cmd_explain(args) -> int:
    """Print the walkthrough of a block (mixology/lab/explain.py)."""
    print(explain.explain(args.topic, B=args.B, T=args.T, D=args.D, H=args.H), end="")
    return 0


def cmd_app(args) -> int:
    """Serve mixology/lab/app.py with Streamlit; training runs in processes of its own."""
    if not 0 < args.port < 65536:
        raise ValueError(f"--port: expected 1..65535, got {args.port}")
    try:
        import streamlit  # noqa: F401
    except ImportError:
        raise ValueError("app: needs streamlit (pip install 'mixology[app]')") from None
    app = os.path.join(os.path.dirname(os.path.dirname(__file__)), "lab", "app.py")
    env = {**os.environ, "MIXOLOGY_APP_RUNS": os.path.abspath(args.runs)}
    print(f"mixology app: http://localhost:{args.port} (runs in {env['MIXOLOGY_APP_RUNS']})")
    return subprocess.call([sys.executable, "-m", "streamlit", "run", app,
                            "--server.port", str(args.port), "--server.headless", "true",
                            "--browser.gatherUsageStats", "false"], env=env)
