"""The lab's trainer: schedule, optimizer groups, accumulation, resume, determinism, and that
it learns."""

import json
import math

import pytest
import torch

from mixology.lab import data
from mixology.lab.model import CausalLM, ModelConfig
from mixology.lab.train import TrainConfig, check_groups, lr_at, make_optimizers, train

TINY = ModelConfig(vocab_size=65, context=16, d_model=32, n_layers=1, n_heads=2, ff_mult=2)


def _cfg(**kw):
    return TrainConfig(**{**dict(steps=6, batch_size=4, eval_every=3, eval_windows=8,
                                 warmup=2, lr=3e-3, min_lr=3e-4), **kw})


def test_warmup_then_cosine_to_the_floor():
    cfg = TrainConfig(steps=100, warmup=10, lr=1e-3, min_lr=1e-4)
    assert lr_at(0, 1e-3, cfg) == pytest.approx(1e-4)  # (0 + 1) / 10 of the peak
    assert lr_at(9, 1e-3, cfg) == pytest.approx(1e-3)
    assert lr_at(10, 1e-3, cfg) == pytest.approx(1e-3)
    assert lr_at(55, 1e-3, cfg) == pytest.approx(5.5e-4)  # halfway down the cosine
    assert lr_at(100, 1e-3, cfg) == pytest.approx(1e-4)
    assert lr_at(100, 0.02, cfg) == pytest.approx(2e-3)  # Muon's peak, the same shape


def test_every_parameter_in_exactly_one_group():
    model = CausalLM(TINY)
    adamw = make_optimizers(model, _cfg())
    assert len(adamw) == 1
    opts = make_optimizers(model, _cfg(optimizer="muon"))
    muon = {id(p) for p in opts[1].param_groups[0]["params"]}
    for name, p in model.named_parameters():
        assert (id(p) in muon) == (name.startswith("blocks.") and p.ndim == 2), name
    assert id(model.tok_emb.weight) not in muon  # embeddings stay with AdamW
    opts[0].param_groups[0]["params"].append(model.tok_emb.weight)  # now in two groups
    with pytest.raises(ValueError, match="parameter tok_emb.weight is in 2 optimizer groups"):
        check_groups(model, opts)


def test_k_micro_batches_equal_one_batch_float64():
    torch.manual_seed(0)
    model = CausalLM(TINY, dtype=torch.float64)
    tokens = torch.randint(0, 65, (2000,))
    x, y = data.batch(tokens, 8, 16, torch.Generator().manual_seed(0))
    _, loss = model(x, y)
    loss.backward()
    one = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    for i in range(4):  # as the trainer does: loss / k per micro-batch
        _, loss = model(x[2 * i:2 * i + 2], y[2 * i:2 * i + 2])
        (loss / 4).backward()
    for a, b in zip(one, (p.grad for p in model.parameters()), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)


def _losses(run):
    return [(m["step"], m["train_loss"], m.get("val_loss")) for m in run.metrics]


def test_resume_equals_an_unbroken_run_and_the_same_seed_the_same_run(tmp_path):
    for optimizer in ("adamw", "muon"):
        cfg = _cfg(optimizer=optimizer)
        whole = train(TINY, cfg, tmp_path / f"whole-{optimizer}", progress=False)
        again = train(TINY, cfg, tmp_path / f"again-{optimizer}", progress=False)
        assert _losses(whole) == _losses(again)
        train(TINY, cfg, tmp_path / f"split-{optimizer}", stop_at=2, progress=False)
        resumed = train(TINY, cfg, tmp_path / f"split-{optimizer}", resume=True,
                        progress=False)
        assert _losses(resumed) == _losses(whole), optimizer  # bit for bit on CPU
    folder = tmp_path / "whole-adamw"
    assert {"config.json", "metrics.jsonl", "best.pt", "last.pt"} <= {
        p.name for p in folder.iterdir()}
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 7))
    assert {"train_loss", "lr", "grad_norm", "clipped", "tokens_per_s", "elapsed"} <= set(rows[0])


def test_a_short_run_learns(tmp_path):
    run = train(TINY, _cfg(steps=60, eval_every=60, lr=1e-2, min_lr=1e-3, warmup=5,
                           eval_windows=32, batch_size=8), tmp_path, progress=False)
    assert run.best_val < math.log(65) - 1.0, run.best_val  # 4.17 at init


def test_train_and_sample_commands(tmp_path):
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
    assert code == 2 and "unknown key 'nope'" in err and len(err.strip().splitlines()) == 1
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
    text = compare.table(rows)
    assert "±" in text and "Welch" in text
    png = compare.plot(rows, tmp_path / "c.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    one = compare.table([{**rows[0], "final_val": [3.0], "std": math.nan}])
    assert "not significant" in one
