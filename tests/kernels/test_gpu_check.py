"""gpu-check: every Triton kernel compiled for sm_90 and sm_80 without a GPU, at the perf
sweep's sizes (its report must match the committed one) and at the spec's sizes, both from
the committed results, which must be current (every variant's compile inputs unchanged);
and kernels it must flag, compiled here: one that spills, one with a 32-bit index x stride
product, one that takes a Python float beside float64 tensors."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("triton")

ROOT = pathlib.Path(__file__).resolve().parents[2]
REPORTS = ROOT / "perf" / "gpu_check"
REGENERATE = ("python -m mixology gpu-check --results perf/gpu_check/results.json; "
              "python -m mixology gpu-check --sizes perf --results perf/gpu_check/results.json "
              "--markdown perf/gpu_check/perf_sizes.md")


def _run(args, timeout=900):
    env = dict(os.environ, TRITON_INTERPRET="0", PYTHONPATH=str(ROOT))
    env.pop("MIXOLOGY_POISON", None)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _gpu_check(*argv):
    r = _run(["-m", "mixology", "gpu-check", *argv])
    return r, r.stdout + r.stderr[-4000:]


def _from_committed_results(tmp_path, *argv):
    """gpu-check from a copy of the committed results (the run writes its results back),
    which must be current: a kernel changed without them compiles here (minutes on 2
    cores), and the test fails with the commands that regenerate them."""
    results = tmp_path / "results.json"
    shutil.copy(REPORTS / "results.json", results)
    r, out = _gpu_check(*argv, "--results", str(results))
    assert r.returncode == 0, out
    assert "0 problem(s)" in r.stdout, out
    assert "(0 compiled," in r.stdout, f"kernels changed: {REGENERATE}\n{out[-2000:]}"
    return r


def test_perf_sizes_compile_without_spills_and_match_the_committed_report(tmp_path):
    _from_committed_results(tmp_path, "--sizes", "perf", "--markdown", str(tmp_path / "perf.md"))
    committed = (REPORTS / "perf_sizes.md").read_text()
    assert (tmp_path / "perf.md").read_text() == committed, f"kernels changed: {REGENERATE}"


def test_spec_sizes_compile_without_problems(tmp_path):
    _from_committed_results(tmp_path, "--sizes", "tests")


def test_unknown_target_is_one_line_and_exit_2():
    r, out = _gpu_check("--target", "sm_75")
    assert r.returncode == 2 and "unknown --target sm_75" in r.stderr, out
    assert len(r.stderr.strip().splitlines()) == 1, out


SCRIPT = r"""
import json, torch
from mixology.bench import gpu_check as g
from tests.kernels import gpu_check_kernels as k
x = torch.empty(1 << 20, device="meta")
x64 = torch.empty(1 << 20, device="meta", dtype=torch.float64)
cases = {
    "spilling": (k.spilling_kernel, (x,), dict(BLOCK=16384, num_warps=1)),
    "i32": (k.i32_offset_kernel, (x, x, 4096, 7), dict(BLOCK=1024)),
    "i64": (k.i64_offset_kernel, (x, x, 4096, 7), dict(BLOCK=1024)),
    "copy": (k.copy_kernel, (x, x, 4096), dict(BLOCK=1024)),
    "scaled64": (k.scaled_copy_kernel, (x64, x64, 1 / 3, 4096), dict(BLOCK=1024)),
    "scaled32": (k.scaled_copy_kernel, (x, x, 1 / 3, 4096), dict(BLOCK=1024)),
}
out = {}
for name, (kernel, args, kw) in cases.items():
    r = g.compile_variant(g.bind(g.Launch(kernel, args, kw, name), 90), "sm_90")
    out[name] = dict(problems=r.problems, spill=r.stack + r.local, i32=r.i32_offsets,
                     ld=r.ld_widths, st=r.st_widths, regs=r.registers)
print(json.dumps(out))
"""


def test_it_flags_spills_32_bit_offsets_and_float32_scalars_and_reads_widths():
    r = _run(["-c", SCRIPT], timeout=300)
    assert r.returncode == 0, r.stderr[-4000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["spilling"]["spill"] > 0, got
    assert any("spills" in p for p in got["spilling"]["problems"]), got
    assert got["i32"]["i32"] >= 1 and any("32-bit" in p for p in got["i32"]["problems"]), got
    assert got["i64"]["i32"] == 0 and not got["i64"]["problems"], got
    assert got["copy"]["ld"] == [16] and got["copy"]["st"] == [16], got
    assert not got["copy"]["problems"], got
    assert any("float32 scalar argument(s) scale in a float64 launch" in p
               for p in got["scaled64"]["problems"]), got
    assert not got["scaled32"]["problems"], got


def test_access_widths_and_i32_products_parse():
    from mixology.bench import gpu_check as g

    ptx = ("@%p1 ld.global.v4.b32 { %r1, %r2, %r3, %r4 }, [ %rd1 + 0 ];\n"
           "ld.global.L1::evict_last.b16 { %rs1 }, [ %rd2 + 0 ];\n"
           "cp.async.cg.shared.global [ %r9 + 0 ], [ %rd3 + 0 ], 0x10, %r10;\n"
           "st.global.v2.b32 [ %rd4 + 0 ], { %r5, %r6 };\n")
    assert g.access_widths(ptx) == ((2, 16), (8,))
    ttir = ("    %c16_i32 = arith.constant 16 : i32 loc(#loc1)\n"
            "    %0 = arith.muli %pid, %c16_i32 : i32 loc(#loc2)\n"
            "    %1 = arith.muli %rows, %stride : tensor<16x1xi32> loc(#loc3)\n"
            "    %2 = arith.muli %rows64, %stride64 : tensor<16x1xi64> loc(#loc4)\n")
    assert g.i32_products(ttir) == 1
