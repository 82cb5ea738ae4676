"""The lab's trainer: a parameter in two groups refused by name, a short run learns, the
commands, compare's statistics. (Schedule, groups, accumulation, resume and determinism are
lab properties in spec/lab.py, run by test_lab_spec.py.)"""

import math

import pytest

from mixology.lab.model import CausalLM, ModelConfig
from mixology.lab.train import TrainConfig, check_groups, make_optimizers, train

TINY = ModelConfig(vocab_size=65, context=16, d_model=32, n_layers=1, n_heads=2, ff_mult=2)


def _cfg(**kw):
    return TrainConfig(**{**dict(steps=6, batch_size=4, eval_every=3, eval_windows=8,
                                 warmup=2, lr=3e-3, min_lr=3e-4), **kw})


def test_a_parameter_in_two_groups_is_refused_by_name():
    model = CausalLM(TINY)
    opts = make_optimizers(model, _cfg(optimizer="muon"))
    opts[0].param_groups[0]["params"].append(model.tok_emb.weight)  # now in two groups
    with pytest.raises(ValueError, match="parameter tok_emb.weight is in 2 optimizer groups"):
        check_groups(model, opts)


def test_a_short_run_learns(tmp_path):
    run = train(TINY, _cfg(steps=60, eval_every=60, lr=1e-2, min_lr=1e-3, warmup=5,
                           eval_windows=32, batch_size=8), tmp_path, progress=False)
    assert run.best_val < math.log(65) - 1.0, run.best_val  # 4.17 at init


def test_train_and_sample_commands(tmp_path):
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root)

    def mixology(*args):
        r = subprocess.run([sys.executable, "-m", "mixology", *args], capture_output=True,
                           text=True, cwd=root, env=env, timeout=600)
        return r.returncode, r.stdout, r.stderr

    out = str(tmp_path / "run")
    code, stdout, err = mixology("train", "--preset", "shakespeare-char-cpu", "--out", out,
                                 "--set", "steps=4", "--set", "eval_every=2",
                                 "--set", "n_layers=1", "--set", "d_model=32",
                                 "--set", "eval_windows=4")
    assert code == 0 and "best validation loss" in stdout, stdout + err
    assert (tmp_path / "run" / "samples.txt").read_text()
    code, stdout, err = mixology("sample", out, "--prompt", "ROMEO:", "--tokens", "20")
    assert code == 0 and stdout.startswith("ROMEO:") and len(stdout.rstrip("\n")) >= 20, err
    code, _, err = mixology("train", "--set", "nope=1", "--out", out)
    assert code == 2 and "nope: unknown setting; known: " in err and len(err.strip().splitlines()) == 1
    code, _, err = mixology("train", "--set", "mixer=token_mix", "--out", out)
    assert code == 2 and "not causal" in err, err


def test_welch_p_values_and_a_compare_run(tmp_path):
    from mixology.lab import compare

    # Welch's t by hand: means 2.5 and 4, variances of the means 5/12 and 1/2
    t, p = compare.welch([1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 5.0, 6.0])
    assert t == pytest.approx(-1.5 / math.sqrt(5 / 12 + 1 / 2), rel=1e-12) and 0.1 < p < 0.2
    # the t tail against its closed forms: df = 1 (Cauchy), df = 2, and the normal limit
    for x in (0.3, 1.0, 2.5, 10.0):
        assert compare._t_tail(x, 1) == pytest.approx(0.5 - math.atan(x) / math.pi, abs=1e-12)
        assert compare._t_tail(x, 2) == pytest.approx(0.5 - x / (2 * math.sqrt(x * x + 2)),
                                                      abs=1e-12)
    assert 2 * compare._t_tail(1.959964, 1e7) == pytest.approx(0.05, abs=1e-5)
    assert math.isnan(compare.welch([1.0], [2.0, 3.0])[1])
    rows = compare.run_grid("shakespeare-char-cpu", {"optimizer": ["adamw", "muon"]}, 2,
                            tmp_path, dict(steps=4, eval_every=2, eval_windows=4, batch_size=4,
                                           n_layers=1, d_model=32), progress=False)
    assert [r["config"] for r in rows] == ["optimizer=adamw", "optimizer=muon"]
    assert all(len(r["final_val"]) == 2 and r["std"] >= 0 for r in rows)
    assert all(len(w) == len(c) and w == sorted(w) for r in rows
               for w, c in zip(r["walls"], r["curves"], strict=True))  # wall time per eval
    text = compare.table(rows)
    assert "±" in text and "Welch" in text
    png = compare.plot(rows, tmp_path / "c.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    one = compare.table([{**rows[0], "final_val": [3.0], "std": math.nan}])
    assert "not significant" in one
