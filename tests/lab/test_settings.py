"""The lab's settings table: `train --help` lists it, `--set` is checked against it, and every
value it offers builds a model that runs."""

from dataclasses import fields

import pytest
import torch

from mixology.cli import main
from mixology.cli.common import parse_value
from mixology.lab import settings
from mixology.lab.model import CausalLM, ModelConfig
from mixology.lab.train import TrainConfig


def test_every_config_field_is_a_setting_and_nothing_else():
    assert set(settings.SETTINGS) == {f.name for c in (ModelConfig, TrainConfig)
                                      for f in fields(c)}


def test_train_help_lists_every_setting_with_its_values(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for s in settings.SETTINGS.values():
        line = next(line for line in text.splitlines() if line.strip().startswith(f"{s.key} = "))
        for value in s.values or (s.type.__name__,):
            assert str(value) in line, (s.key, value, line)


@pytest.mark.parametrize("item, message", [
    ("nrm=rms", "--set: nrm: unknown setting; known: vocab_size, context"),
    ("norm=batch", "--set: norm: unknown value 'batch'; known: layer, rms, none"),
    ("mixer=token_mix", "--set: mixer: 'token_mix' is not causal"),
    ("mixer=mamba", "known: softmax_attention, quadratic_attention, linear_attention"),
    ("feature_map=elu", "feature_map: 'elu' maps linear attention's q and k"),
    ("steps=many", "--set: steps: expected int, got 'many'"),
    ("lr=true", "--set: lr: expected float, got True"),
    ("norm", "--set wants key=value, got 'norm'"),
])
def test_an_unknown_key_or_value_is_one_line_and_exit_2(capsys, item, message):
    assert main(["train", "--set", item, "--out", "/nonexistent/never-written"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert main(["compare", "--grid", item.replace("=", "=rms,") if "=" in item else item,
                 "--out", "/nonexistent/never-written"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_check_converts_ints_to_floats_and_takes_none_where_optional():
    assert settings.check("lr", 1) == 1.0 and isinstance(settings.check("lr", 1), float)
    assert settings.check("text", None) is None
    with pytest.raises(ValueError, match="n_layers: expected int, got True"):
        settings.check("n_layers", True)
    assert settings.split({"norm": "rms", "lr": 3e-4}) == ({"norm": "rms"}, {"lr": 3e-4})


@pytest.mark.parametrize("key", [s.key for s in settings.SETTINGS.values()
                                 if s.values and "none" in s.values])
def test_a_none_choice_set_on_the_command_line_is_that_choice(key):
    """`--set norm=none` reads the value as None (as for an optional setting); where "none"
    is one of the setting's choices, it is that choice."""
    assert parse_value("none") is None
    assert settings.check(key, parse_value("none")) == "none"


MODEL_CHOICES = [(s.key, v) for s in settings.SETTINGS.values()
                 if s.config == "model" and s.values for v in s.values]
# the settings a value needs beside it (a feature map maps linear attention's q and k)
NEEDS = {"feature_map": {"mixer": "linear_attention"}}


@pytest.mark.parametrize("key, value", MODEL_CHOICES)
def test_every_value_offered_builds_a_model_that_runs(key, value):
    if value == "triton":
        pytest.importorskip("triton")
    cfg = ModelConfig(**{"vocab_size": 11, "context": 8, "d_model": 8, "n_layers": 1,
                         "n_heads": 2, "ff_mult": 1, **NEEDS.get(key, {}), key: value})
    torch.manual_seed(0)
    logits, loss = CausalLM(cfg)(torch.randint(11, (2, 8)), torch.randint(11, (2, 8)))
    assert logits.shape == (2, 8, 11) and torch.isfinite(loss)
