"""Checking a user's own implementation: mixology.check, mixology.testing and the pytest
plugin, on a correct independent implementation and on a mutant."""

import os
import pathlib
import subprocess
import sys

import pytest

import mixology
from mixology.ops.norms import mutants
from mixology.testing import assert_satisfies_spec
from tests.support import candidates

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEVICE = os.environ["MIXOLOGY_DEVICE"]
FAST = dict(device=DEVICE, sizes="small", profile="ci")


def test_check_accepts_a_correct_callable_and_reports_each_property():
    report = mixology.check("rms_norm", candidates.rms_norm_by_hand, **FAST)
    assert report.ok and not report.failed and len(report.outcomes) >= 8
    assert "rms_matches_reference" in str(report) and "failed" in str(report)


def test_check_rejects_a_mutant_with_a_replay_for_cli_or_api():
    report = mixology.check("rms_norm", mutants.rms_subtracts_mean, **FAST)
    assert not report.ok
    failing = report.failed[0]
    assert failing.failures[0].counterexample
    assert "--candidate rms_norm=mixology.ops.norms.mutants:rms_subtracts_mean" in \
        failing.failures[0].replay
    local = mixology.check("rms_norm", lambda x, w, eps=1e-5: mutants.rms_subtracts_mean(x, w, eps),
                           properties=["rms_matches_reference"], **FAST)
    replay = local.failed[0].failures[0].replay
    assert replay.startswith("mixology.check('rms_norm', fn, properties=['rms_matches_reference']")
    blob = replay.split("reproduce=")[1].strip("')")
    again = mixology.check("rms_norm", mutants.rms_subtracts_mean, reproduce=blob,
                           properties=["rms_matches_reference"], device=DEVICE,
                           sizes=local.failed[0].sizes)
    assert not again.ok


def test_contract_failures_count_only_when_strict():
    lenient = mixology.check("rms_norm", mutants.rms_unchecked, properties=["rms_bad_input_raises"],
                             **FAST)
    assert lenient.ok and lenient.contract
    strict = mixology.check("rms_norm", mutants.rms_unchecked, strict=True,
                            properties=["rms_bad_input_raises"], **FAST)
    assert not strict.ok


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="op: unknown op 'rms'"):
        mixology.check("rms", candidates.rms_norm_by_hand)
    with pytest.raises(ValueError, match="properties:"):
        mixology.check("rms_norm", candidates.rms_norm_by_hand, properties=["nope"])
    with pytest.raises(TypeError, match="fn:"):
        mixology.check("rms_norm", 3)


def test_assert_satisfies_spec_raises_with_the_report():
    assert_satisfies_spec("rms_norm", candidates.rms_norm_by_hand, **FAST)
    with pytest.raises(AssertionError, match="(?s)FAIL rms_norm/.*counterexample"):
        assert_satisfies_spec("rms_norm", mutants.rms_subtracts_mean, **FAST)


def _pytest(args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_pytest_plugin_and_spec_tests_make_one_item_per_property(tmp_path):
    r = _pytest(["-q", "--mixology-candidate",
                 "rms_norm=mixology.ops.norms.mutants:rms_subtracts_mean",
                 "--mixology-sizes", "small", "--mixology-device", DEVICE], tmp_path)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    assert "FAILED ::mixology::rms_norm::rms_matches_reference" in r.stdout, r.stdout[-3000:]
    assert "replay: python -m mixology verify" in r.stdout and " passed" in r.stdout
    (tmp_path / "test_mine.py").write_text(
        "from mixology.testing import spec_tests\nfrom tests.support import candidates\n"
        f"test_rms = spec_tests('rms_norm', candidates.rms_norm_by_hand, sizes='small', "
        f"device={DEVICE!r})\n")
    r = _pytest(["-q", "test_mine.py"], tmp_path)
    assert r.returncode == 0, r.stdout[-3000:]
    from mixology import spec

    assert f"{len(spec.properties('rms_norm'))} passed" in r.stdout, r.stdout[-2000:]
    r = _pytest(["-q", "--mixology-candidate", "rms_norm=no.such:module"], tmp_path)
    assert r.returncode == 4 and "cannot import no.such:module" in r.stderr, r.stderr[-2000:]
