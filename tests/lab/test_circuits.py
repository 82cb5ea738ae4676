"""`mixology circuits RUN_DIR` on a trained attention-only run: per head the top singular
values and token pairs of QK and OV, heatmaps; a run that is not attention-only is refused
in one line, exit 2."""

import os
import subprocess
import sys

from mixology.lab.model import preset
from mixology.lab.train import TrainConfig, train
from mixology.spec.lab import tiny_text

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _circuits(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "mixology", "circuits", *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def test_circuits_of_a_trained_attention_only_run(tmp_path):
    cfg = TrainConfig(steps=4, batch_size=4, eval_every=4, eval_windows=4, warmup=1,
                      text=tiny_text())
    train(preset("attention_only_2L", d_model=16, n_heads=2, context=16), cfg,
          tmp_path / "ao", progress=False)
    r = _circuits(str(tmp_path / "ao"), "--top", "3")
    assert r.returncode == 0, r.stderr
    for head in ("L0H0", "L0H1", "L1H0", "L1H1"):
        assert f"\n{head}\n" in r.stdout
    assert r.stdout.count("QK singular values:") == 4
    assert "4 heatmap(s)" in r.stdout
    pngs = sorted((tmp_path / "ao" / "circuits").glob("*.png"))
    assert len(pngs) == 4 and all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
    train(preset("shakespeare-char-cpu", d_model=16, n_heads=2, context=16, n_layers=1), cfg,
          tmp_path / "full", progress=False)
    r = _circuits(str(tmp_path / "full"))
    assert r.returncode == 2 and "attention-only" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
