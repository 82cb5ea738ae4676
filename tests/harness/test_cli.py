"""``python -m mixology``: exit codes, the table, counterexamples, replay, candidates."""

import os
import re
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env():
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def mixology(*args):
    r = subprocess.run([sys.executable, "-m", "mixology", *args], capture_output=True,
                       text=True, cwd=ROOT, env=_env(), timeout=600)
    return r.returncode, r.stdout + r.stderr


def test_list_shows_ops_implementations_properties_and_mutants():
    code, out = mixology("list", "--device", "cpu")
    assert code == 0, out
    for word in ("token_mix", "token_unmix", "token_mixer", "reference", "compiled",
                 "matches_reference_bitwise", "permute_back"):
        assert word in out


def test_a_reader_that_leaves_early_gets_no_traceback():
    p = subprocess.Popen([sys.executable, "-m", "mixology", "list", "--device", "cpu"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=_env())
    # `mixology list | head -1`: read one line, close the pipe; the list (~100 kB) outgrows
    # the pipe's buffer, so the writer meets the closed pipe
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=600) == 141 and err == "", err


def test_list_one_op_shows_kinds_and_an_unknown_op_is_one_line_exit_2():
    code, out = mixology("list", "--device", "cpu", "--op", "rms_norm")
    assert code == 0, out
    assert re.search(r"rms_rows_with_large_mean \(numerics\)", out), out
    assert re.search(r"rms_bad_input_raises \(contract\)", out), out
    # whole docstrings, wrapped: the scale-invariance property's last words are there
    assert "relative to |weight|." in out, out
    code, out = mixology("list", "--device", "cpu", "--op", "rms_nrom")
    assert code == 2 and out.strip().splitlines() == [out.strip()], out
    assert "unknown op 'rms_nrom'" in out


def test_verify_prints_the_table_and_exits_0():
    code, out = mixology("verify", "--device", "cpu", "--op", "token_mix", "--impl", "reference",
                         "--profile", "ci")
    assert code == 0, out
    assert re.search(r"token_mix\s+linearity\s+pass", out), out
    assert "0 failed" in out


def test_verify_ends_with_the_slowest_checks_and_the_time_per_implementation():
    code, out = mixology("verify", "--device", "cpu", "--op", "rms_norm", "--impl", "reference",
                         "--impl", "native", "--profile", "ci", "--sizes", "small")
    assert code == 0, out
    slowest = re.findall(r"^ +\d+\.\ds  rms_norm/\w+ \[(reference|native)\]$", out, re.M)
    assert len(slowest) == 10, out
    assert re.search(r"seconds of checks per implementation: (reference|native) \d+, "
                     r"(reference|native) \d+$", out, re.M), out
    assert re.search(r"\d+ passed, 0 failed \(\d+s of checks, \dm\d\ds wall\)", out), out


def test_failure_prints_counterexample_and_a_replay_that_reproduces_it():
    code, out = mixology("verify", "--device", "cpu", "--mutant", "interleaved_heads",
                         "--property", "matches_reference_bitwise", "--profile", "ci")
    assert code == 1, out
    assert "FAIL token_mix/matches_reference_bitwise" in out
    assert "counterexample: case=MixCase(" in out
    replay = re.search(r"replay: (python -m mixology .*)", out).group(1)
    code2, out2 = mixology(*shlex.split(replay)[3:])
    assert code2 == 1 and "FAIL token_mix/matches_reference_bitwise" in out2, out2


def test_candidate_good_passes_and_bad_fails():
    code, out = mixology("verify", "--device", "cpu", "--profile", "ci",
                         "--candidate", "token_mix=tests.support.candidates:good_token_mix")
    assert code == 0, out
    code, out = mixology("verify", "--device", "cpu", "--profile", "ci",
                         "--candidate", "token_mix=tests.support.candidates:bad_token_mix")
    assert code == 1, out
    assert "full_mixing_when_heads_equal_tokens" in out and "--candidate" in out


def test_candidate_contract_failures_are_listed_apart_and_fail_only_with_strict():
    args = ("verify", "--device", "cpu", "--profile", "ci", "--sizes", "small",
            "--candidate", "token_mix=tests.support.candidates:unchecked_token_mix")
    code, out = mixology(*args)
    assert code == 0, out
    assert "Contract (input checks; not counted as failures without --strict)" in out, out
    assert "FAIL token_mix/bad_input_raises" in out and "(contract," in out
    assert re.search(r"\d+ passed, 0 failed, 1 contract failure\(s\) not counted", out), out
    code, out = mixology(*args, "--strict")
    assert code == 1 and "Contract (input checks" not in out, out


def test_candidate_dtypes_draw_only_those_and_list_what_is_not_checked():
    """--dtypes: float64-only properties are listed as not checked, with the reason, and the
    stand-in (the gradients in the declared dtypes against float64) runs in their place; under
    -n 2 (the plugin's --mixology-dtypes) the verdicts are the same."""
    args = ("verify", "--device", "cpu", "--profile", "ci", "--sizes", "small", "--candidate",
            "rms_norm=tests.support.candidates:rms_norm_by_hand", "--dtypes", "float32,bfloat16")
    for extra in ((), ("-n", "2")):
        code, out = mixology(*args, *extra)
        assert code == 0, out
        assert "Not checked:" in out and "rms_gradcheck_float64" in out, out
        assert "its cases are float64 only" in out and "declares float32, bfloat16" in out, out
        assert re.search(r"gradients_against_float64\s+pass", out), out
        assert re.search(r"\d+ passed, 0 failed, 3 not checked", out), out


def test_candidate_block():
    code, out = mixology("verify", "--device", "cpu", "--profile", "ci",
                         "--candidate", "token_mixer=tests.support.candidates:good_token_mixer")
    assert code == 0, out


def test_bad_arguments_exit_nonzero():
    code, out = mixology("verify", "--candidate", "token_mix")
    assert code != 0 and "OP=package.module:function" in out


def test_mutants_command_rejects_all():
    code, out = mixology("mutants", "--device", "cpu", "--profile", "ci", "--op", "token_unmix")
    assert code == 0, out
    assert "SURVIVED" not in out and "unmix_is_mix" in out


def test_verify_misuse_is_one_line_and_exit_2():
    for args, words in [
        (("--op", "rms"), "--op: unknown op 'rms'"),
        (("--candidate", "rmsnorm"), "--candidate wants OP=package.module:function"),
        (("--candidate", "rms_norm=no.such:fn"), "cannot import no.such:fn"),
        (("--candidate", "rms_norm=tests.support.candidates:rms_norm_by_hand", "--op", "layer_norm"),
         "contradicts --candidate rms_norm"),
        (("--op", "rms_norm", "--property", "nope"), "--property: no property 'nope'"),
        (("--op", "rms_norm", "--impl", "nope"), "--impl: no implementation 'nope'"),
        (("--candidate", "rms_norm=tests.support.candidates:rms_norm_by_hand", "--dtypes",
          "float32,float8"), "--dtypes: unknown or unsupported dtype 'float8'"),
        (("--op", "rms_norm", "--dtypes", "float32"), "--dtypes: declares a candidate's"),
    ]:
        code, out = mixology("verify", "--device", "cpu", *args)
        assert code == 2 and words in out, (args, out)
        assert len(out.strip().splitlines()) == 1, (args, out)


def test_verify_shows_progress_and_runs_in_parallel_with_the_same_verdicts():
    # the eager and interpreted implementations: the claim is the runner's, and compiling
    # the graphs twice (serial, then -n 2) would cost 20 s without checking more of it
    args = ("verify", "--device", "cpu", "--op", "rms_norm", "--sizes", "small",
            "--impl", "reference", "--impl", "native", "--impl", "triton")
    code, serial = mixology(*args)
    assert code == 0, serial
    n = int(re.search(r"mixology verify: (\d+) checks", serial).group(1))
    assert re.search(rf"\[ *1/{n}\] pass rms_norm/\w+ \[reference\]", serial), serial
    assert re.search(rf"\[{n}/{n}\] pass", serial) and "wall" in serial, serial
    code, parallel = mixology(*args, "-n", "2")
    assert code == 0, parallel
    table = [line for line in serial.splitlines() if line.startswith("rms_norm ")]
    assert table and table == [line for line in parallel.splitlines()
                                if line.startswith("rms_norm ")], parallel
