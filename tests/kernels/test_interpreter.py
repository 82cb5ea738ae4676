"""The interpreter shims (mixology.verify.interpreter): each departure of Triton's interpreter
from CUDA shows without its shim, and is gone with it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mixology.verify import interpreter

pytest.importorskip("triton")
SCRIPT = Path(__file__).with_name("interpreter_departures.py")


@pytest.fixture(scope="module")
def departures():
    """Before/after of each departure, in a fresh interpreter process (the shims patch
    triton for the process they are installed in)."""
    env = dict(os.environ, TRITON_INTERPRET="1",
               PYTHONPATH=os.pathsep.join([str(SCRIPT.parents[2]), os.environ.get(
                   "PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


@pytest.mark.parametrize("shim", interpreter.SHIMS)
def test_departure_shows_without_the_shim_and_not_with_it(departures, shim):
    before, after = departures["before"][shim], departures["after"][shim]
    assert shim in departures["installed"]
    # without the shim: the kernel raises (a string), or is off by far more than rounding
    assert isinstance(before, str) or not before <= 1e-2, f"{shim}: no departure seen ({before!r})"
    # with it: the CUDA result (libdevice in float32: a few ulps)
    assert isinstance(after, float), f"{shim}: still raises: {after}"
    assert after <= (1e-5 if shim == "libdevice" else 0.0), f"{shim}: off by {after}"


def test_bf16_round_to_nearest_even():
    """The shims' own bfloat16 encoding: ties to even, NaN kept, as torch (and CUDA) round."""
    import torch

    x = torch.tensor([1.0 + 2**-8, 1.0 + 3 * 2**-8, -(1.0 + 2**-8), 3.4e38, float("nan"),
                      float("-inf"), 1e-40]).float()
    bits = interpreter.f32_to_bf16_bits(x.numpy())
    want = x.bfloat16().view(torch.int16).numpy().view(np.uint16)
    assert (np.isnan(interpreter.bf16_bits_to_f32(bits)) == np.isnan(x.numpy())).all()
    ok = np.isnan(x.numpy()) | (bits == want)
    assert ok.all(), (bits, want)


def test_unknown_shim_is_refused(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    with pytest.raises(ValueError, match="shims: unknown shim"):
        interpreter.install(["nope"])


def test_nothing_without_the_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert interpreter.install() == ()


SAME_RESULTS = r"""
import hashlib, sys, torch
from mixology.verify import interpreter
if sys.argv[1] == "off":
    interpreter._sped_up[0] = True  # as if applied: the interpreter's own patching stays
from mixology.ops.attention.triton_quadratic import quadratic_attention
from mixology.ops.linear_attention.triton_chunk import linear_attention
from mixology.ops.norms.triton_norm import layer_norm
from mixology.ops.token_mix.triton_fused import token_mixer
from triton.runtime import interpreter as triton_interpreter
g = torch.Generator().manual_seed(0)
def leaf(*shape, dtype=torch.float32):
    return torch.randn(*shape, generator=g).to(dtype).requires_grad_()
digest = hashlib.sha256()
for dtype in (torch.float32, torch.bfloat16):
    q, k, v = (leaf(2, 2, 37, 5, dtype=dtype) for _ in range(3))
    gate = (-torch.rand(2, 2, 37, generator=g)).to(dtype).requires_grad_()
    x, w, b = leaf(3, 8, 24, dtype=dtype), leaf(24, dtype=dtype), leaf(24, dtype=dtype)
    outs = [quadratic_attention(q, k, v), linear_attention(q, k, v, gate)[0],
            layer_norm(x, w, b), token_mixer(x, 4, w, b)]
    for o, leaves in zip(outs, [(q, k, v), (q, k, v, gate), (x, w, b), (x, w, b)]):
        grads = torch.autograd.grad(o, leaves, torch.ones_like(o))
        for t in (o, *grads):
            digest.update(t.detach().float().numpy().tobytes())
print(triton_interpreter._patch_builtin.__module__, digest.hexdigest())
"""


def test_speed_up_changes_no_result():
    """mixology's kernels under the interpreter, with and without speed_up (each in a fresh
    process): forward and gradients bit for bit the same, in float32 and bfloat16."""
    env = dict(os.environ, TRITON_INTERPRET="1",
               PYTHONPATH=os.pathsep.join([str(SCRIPT.parents[2]), os.environ.get(
                   "PYTHONPATH", "")]))
    got = {}
    for mode in ("off", "on"):
        out = subprocess.run([sys.executable, "-c", SAME_RESULTS, mode], env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        got[mode] = out.stdout.split()
    assert got["off"][0] == "triton.runtime.interpreter", got  # Triton's own listing
    assert got["on"][0] == "mixology.verify.interpreter", got  # the speed-up in effect
    assert got["on"][1] == got["off"][1], got
