"""`mixology explain`: the walkthroughs run the real ops on labelled tensors, deterministic
text, the seed's errors called out, misuse a one-line exit 2."""

import os
import subprocess
import sys

from mixology.lab import explain

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_token_mixer_walkthrough_traces_every_value_and_rejects_the_seeds_version():
    text = explain.explain("token_mixer")
    assert text == explain.explain("token_mixer")  # deterministic
    assert "  token a: [a1 a2] [a3 a4] [a5 a6] [a7 a8]" in text
    assert "  head 1: [a3 a4] [b3 b4] [c3 c4] [d3 d4]" in text
    assert "  out 2: a5 a6 b5 b6 c5 c6 d5 d6   <- tokens a,b,c,d, head 2" in text
    assert "(checked)" in text and "output == input: True" in text
    rejected = text.split("rejected by: ")[1].split(", ")
    assert "full_mixing_when_heads_equal_tokens" in rejected and len(rejected) >= 3
    two = explain.explain("token_mixer", B=1, T=4, D=8, H=2)
    assert "  out 0: a1 a2 a3 a4 b1 b2 b3 b4   <- tokens a,b, head 0" in two
    assert "H == T" not in two


def test_parameter_counts_come_from_the_modules():
    for D in (8, 768):
        text = explain.explain("ffn", D=D)
        assert f"{8 * D * D + 7 * D:,} (matches" in text
        assert f"{12 * D * D + 2 * D:,} = 12D² + 2D" in explain.explain("swiglu", D=D)


def test_attention_cost_counts_and_calls_out_the_seeds_formulas():
    text = explain.explain("attention", T=512, D=768)
    assert "(equal)" in text  # the itemized multiply-adds x 2 = FlopCounterMode's count
    assert "= (T + 4D)/8 = 448x" in text and "1024x (block), 256x (SDPA alone)" in text
    assert "(equal)" in explain.explain("attention", T=64, D=128)


def test_misuse_is_one_line_and_exit_2():
    env = dict(os.environ, PYTHONPATH=ROOT)
    for args, msg in ((["nope"], "topic: expected one of"), (["ffn", "--H", "2"], "--H: not an"),
                      (["token_mixer", "--H", "3"], "H: 3 heads must divide D = 8")):
        r = subprocess.run([sys.executable, "-m", "mixology", "explain", *args],
                           capture_output=True, text=True, cwd=ROOT, env=env)
        assert r.returncode == 2 and msg in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
