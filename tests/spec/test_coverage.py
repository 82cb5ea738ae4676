"""The input-space coverage report (mixology.verify.coverage): it replays the runner's very
draw, it finds a gap when one is made, and no op has a gap."""

import dataclasses

import pytest

from mixology import spec
from mixology.cli import main
from mixology.verify import coverage, runner


@pytest.mark.parametrize("op", [s.op for s in spec.signatures()])
def test_every_op_is_covered(op):
    assert coverage.coverage(op).gaps() == []


@pytest.mark.parametrize("tier", ["small", "kernel"])
def test_the_replayed_draw_is_the_runners(tier):
    """The cases the report reads are the ones a check runs on, example for example."""
    p = next(q for q in spec.properties("rms_norm") if q.name == "rms_matches_reference")
    seen = []
    recorder = dataclasses.replace(p, fn=lambda impl, case: seen.append(case))
    assert runner.check(recorder, None, "recorder", profile="ci", sizes=tier, shrink=False).ok
    n = max(1, runner.examples("ci", tier) // p.cost)
    assert [repr(c) for c in coverage._draw(p, tier, n, "ci")] == [repr(c) for c in seen]
    assert seen


def test_a_property_left_out_shows_as_gaps(monkeypatch):
    """With rms_norm's properties cut to the float64-only gradcheck, the other dtypes, the
    upstream layouts and eps's values are gaps."""
    everything = spec.properties

    def only_gradcheck(op=None):
        return [p for p in everything(op) if p.name == "rms_gradcheck_float64"]

    monkeypatch.setattr(spec, "properties", only_gradcheck)
    gaps = coverage.coverage("rms_norm").gaps()
    assert "dtype (small): float32" in gaps and "dtype (small): bfloat16" in gaps
    assert "upstream: offset" in gaps
    assert "layout(x): expanded" in gaps  # gradcheck draws no expanded x
    assert any(g.startswith("eps:") for g in gaps)


def test_an_enumerated_configuration_counts():
    """What a property enumerates inside each example (``covers``) is reached."""
    cov = coverage.coverage("transformer_block")
    assert set(cov.seen["mixer"]) == {"softmax_attention", "quadratic_attention",
                                      "linear_attention", "token_mix"}
    assert "block_every_channel_mixer_and_position_encoding" in cov.seen["activation"]["none"]


def test_the_command_reports_and_refuses_an_unknown_op(capsys):
    code = main(["coverage", "--op", "rms_norm"])
    out = capsys.readouterr().out
    assert code == 0 and "rms_norm: covered" in out and "layout(weight)" in out
    assert main(["coverage", "--op", "no_such_op"]) == 2
    assert "unknown op 'no_such_op'" in capsys.readouterr().err
