"""The trainer under torchrun: 2 CPU processes (DistributedDataParallel, gloo) take the steps
one process takes on the concatenated batch (float64)."""

import json
import os
import subprocess
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SETTINGS = ["--preset", "shakespeare-char-cpu", "--set", "n_layers=1", "--set", "d_model=16",
            "--set", "n_heads=2", "--set", "context=16", "--set", "steps=3", "--set",
            "eval_every=3", "--set", "eval_windows=4", "--set", "warmup=1", "--set",
            "dtype=float64", "--set", "grad_accum=2", "--set", "optimizer=muon"]


def _train(out, batch_size, nproc=None):
    text = out.parent / "text.txt"
    if not text.exists():
        from mixology.lab import data

        text.write_text(data.load_text()[:20_000], encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    launch = [sys.executable, "-m", "mixology"]
    if nproc:
        launch = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                  f"--nproc_per_node={nproc}", "-m", "mixology"]
    r = subprocess.run(launch + ["train", *SETTINGS, "--set", f"batch_size={batch_size}",
                                 "--set", f"text={text}", "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return rows, torch.load(out / "last.pt", weights_only=False)


def test_two_processes_equal_one_on_the_concatenated_batch(tmp_path):
    """Each of 2 ranks trains on its half of the global batch (2 x 2 windows, 2 micro-batches
    each) and DDP averages the gradients; one process trains on all 4. After 3 steps
    (Muon and AdamW) the losses, the gradient norms (of the averaged gradient) and every
    parameter agree to float64 rounding."""
    one, one_state = _train(tmp_path / "one", batch_size=4)
    two, two_state = _train(tmp_path / "two", batch_size=2, nproc=2)
    assert json.loads((tmp_path / "two" / "config.json").read_text())["world_size"] == 2
    assert [r["step"] for r in two] == [1, 2, 3]
    for a, b in zip(one, two, strict=True):
        for key in ("train_loss", "grad_norm", "val_loss"):
            if key in a:
                assert abs(a[key] - b[key]) <= 1e-12 * abs(a[key]), (key, a[key], b[key])
    for name, p in one_state["model"].items():
        torch.testing.assert_close(two_state["model"][name], p, rtol=1e-12, atol=1e-14,
                                   msg=lambda m, name=name: f"{name}: {m}")
