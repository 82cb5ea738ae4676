"""Small Triton kernels, one per departure of Triton's interpreter from compiled Triton on CUDA
(mixology.verify.interpreter). Run as a script (TRITON_INTERPRET=1), it prints a JSON object:
for each departure, what the kernel gave before the shims and after them.

Each result is the kernel's max |error| against what CUDA computes (torch's own arithmetic,
which rounds as CUDA does), or the error it raised.
"""

import json
import os
import sys

assert os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1"

import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from triton.language.extra import libdevice  # noqa: E402
from triton.language.extra.libdevice import tanh  # noqa: E402

from mixology.verify import interpreter  # noqa: E402


@triton.jit
def _scale(x_ptr, y_ptr, eps, N: tl.constexpr):
    o = tl.arange(0, N)
    tl.store(y_ptr + o, tl.load(x_ptr + o) * eps.to(tl.float32))


@triton.jit
def _bf16_arithmetic(a_ptr, b_ptr, y_ptr, m_ptr, s_ptr, N: tl.constexpr):
    o = tl.arange(0, N)
    a, b = tl.load(a_ptr + o), tl.load(b_ptr + o)
    tl.store(y_ptr + o, a * b + a)
    tl.store(m_ptr + o, tl.where(a > b, a, b))
    tl.store(s_ptr, tl.max(a, 0))


@triton.jit
def _to_bf16(x_ptr, y_ptr, N: tl.constexpr):
    o = tl.arange(0, N)
    tl.store(y_ptr + o, tl.load(x_ptr + o).to(tl.bfloat16))


@triton.jit
def _libdevice(x_ptr, y_ptr, N: tl.constexpr):
    o = tl.arange(0, N)
    x = tl.load(x_ptr + o)
    tl.store(y_ptr + o, tanh(x) + libdevice.rsqrt(x) + libdevice.pow(x, 2.0))


def _err(got, want) -> float:
    return float((got.double() - want.double()).abs().max())


def run() -> dict:
    out = {}
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, generator=g) + 0.5
    y = torch.empty(64)
    a = torch.randn(64, generator=g).bfloat16()
    b = torch.randn(64, generator=g).bfloat16()
    checks = {
        "float_arguments": lambda: (_scale[(1,)](x, y, 2.0, N=64), _err(y, 2 * x))[1],
        "bfloat16_arithmetic": lambda: _bf16(a, b),
        "bfloat16_rounding": lambda: _cast(torch.randn(4096, generator=g)),
        "libdevice": lambda: (_libdevice[(1,)](x, y, N=64),
                              _err(y, x.tanh() + x.rsqrt() + x * x))[1],
    }
    for name, fn in checks.items():
        try:
            out[name] = fn()
        except Exception as e:  # noqa: BLE001  (the departure: the kernel raises)
            out[name] = f"{type(e).__name__}: {e}"[:200]
    return out


def _bf16(a, b):
    y, m, s = torch.empty_like(a), torch.empty_like(a), torch.empty(1, dtype=a.dtype)
    _bf16_arithmetic[(1,)](a, b, y, m, s, N=64)
    return max(_err(y, a * b + a), _err(m, torch.maximum(a, b)), _err(s, a.max()))


def _cast(x):
    y = torch.empty(x.shape, dtype=torch.bfloat16)
    _to_bf16[(1,)](x, y, N=x.numel())
    return _err(y, x.bfloat16())  # torch rounds to nearest even, as CUDA does


if __name__ == "__main__":
    before = run()
    installed = interpreter.install()
    json.dump({"before": before, "after": run(), "installed": list(installed)}, sys.stdout)
