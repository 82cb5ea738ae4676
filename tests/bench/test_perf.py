"""perf: the sweep definition, the regression gate, plots and the claims (perf/claims.py)."""

import functools
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from mixology.bench import history, sweep, timing

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location("claims", os.path.join(ROOT, "perf", "claims.py"))
claims = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(claims)


def info(impl="triton", mode="fwd", T=512, D=768, median=1e-3, dtype="bf16", sweep="T",
         device="cuda", B=256, gbps=None, peak=None):
    nbytes = 2 * B * T * D * 2
    return {"entry": "token_mixer", "impl": impl, "mode": mode, "B": B, "T": T, "D": D,
            "dtype": dtype, "sweep": sweep, "device": device, "device_key": f"{device}-X",
            "median_s": median, "bytes": nbytes, "gbps": gbps or nbytes / median / 1e9,
            "tflops": 0.0, "pct_copy_ceiling": 100 * (gbps or nbytes / median / 1e9) / 3000,
            "pct_matmul_ceiling": 0.0, "peak_mem_bytes": peak,
            "ceilings": {"copy_gbps": 3000.0, "matmul_tflops": 700.0}}


def write_run(folder, n, infos, commit="abc", fastest=0.97):
    """A run's history file; each benchmark's fastest round is ``fastest`` x its median,
    unless its info gives ``min_s``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {"commit_info": {"id": commit, "dirty": False}, "datetime": f"2026-11-0{n}",
            "benchmarks": [{"stats": {"median": i["median_s"], "iqr": 0.01 * i["median_s"],
                                      "min": i.pop("min_s", fastest * i["median_s"])},
                            "extra_info": i} for i in infos]}
    (folder / f"{n:04d}_{commit}_x.json").write_text(json.dumps(data))


def test_sweep_covers_every_impl_mode_and_holds_tokens_constant():
    points = [p for p in sweep.sweep("full", "cuda") if p.entry == "token_mixer"]
    impls = {p.impl for p in points}
    assert set(sweep.MIXER_IMPLS + sweep.ATTENTION_IMPLS) <= impls
    tsweep = [p for p in points if p.sweep == "T"]
    assert {p.T for p in tsweep} == {2**k for k in range(4, 17)}
    assert {p.D for p in tsweep} == {768, 4096}
    assert {p.B * p.T for p in tsweep} == {2**17}
    assert {p.mode for p in points if p.impl == "triton"} == {"fwd", "bwd", "fwd+bwd"}
    assert not [p for p in points if p.impl in sweep.ATTENTION_IMPLS and p.mode == "bwd"]


def test_derived_figures():
    c = timing.Ceilings(copy_gbps=1000.0, matmul_tflops=500.0, copy_bytes=1, matmul_n=1)
    d = timing.derived(1e-3, 10**9, 10**12, c)
    assert d["gbps"] == pytest.approx(1000) and d["pct_copy_ceiling"] == pytest.approx(100)
    assert d["tflops"] == pytest.approx(1000) and d["pct_matmul_ceiling"] == pytest.approx(200)


def test_gate_flags_a_real_slowdown_and_not_noise(tmp_path):
    d = tmp_path / "cuda-X" / "m"
    steady = [1.00, 1.01, 0.99]
    noisy = [1.0, 1.3, 1.0]  # ~30% run-to-run noise
    for n, (s, z) in enumerate(zip(steady, noisy, strict=True), 1):
        write_run(d, n, [info(median=s * 1e-3), info(impl="compiled", median=z * 1e-3)])
    write_run(d, 4, [info(median=1.3e-3), info(impl="compiled", median=1.3e-3)])
    runs = history.load_runs(tmp_path)["cuda-X"]
    rows = {r.key.split("-")[1]: r for r in history.compare(runs)}
    assert rows["triton"].flagged and rows["triton"].change_pct == pytest.approx(100 * (1.3 / 0.99 - 1))
    assert not rows["compiled"].flagged and rows["compiled"].limit_pct > 30
    assert rows["triton"].best == pytest.approx(0.99e-3)


def test_parts_of_one_session_are_one_run_and_smoke_touches_every_path(tmp_path):
    """run_gpu.sh's full sweep is saved in parts (one per 10-minute GPU command) that share a
    session: history reads them as one run; other runs stay apart."""
    d = tmp_path / "cuda-X" / "m"
    write_run(d, 1, [info(median=1e-3), info(impl="sdpa", median=2e-3)])
    write_run(d, 2, [{**info(median=1.5e-3), "session": "s1"}])
    write_run(d, 3, [{**info(impl="sdpa", median=2e-3), "session": "s1"}])
    write_run(d, 4, [{**info(impl="compiled", median=1e-3), "session": "s2"}])
    runs = history.load_runs(tmp_path)["cuda-X"]
    assert [len(r.results) for r in runs] == [2, 2, 1]
    rows = {r.key.split("-")[1]: r for r in history.compare(runs[:2])}
    assert rows["triton"].change_pct == pytest.approx(50) and rows["sdpa"].change_pct == 0
    smoke = sweep.sweep("smoke", "cuda")
    paths = {(p.entry, p.impl, p.mode) for p in sweep.sweep("quick", "cuda")}
    assert {(p.entry, p.impl, p.mode) for p in smoke} == paths and len(smoke) == len(paths)


def test_history_cli_exit_codes_and_plots(tmp_path):
    d = tmp_path / "hist" / "cuda-X" / "m"
    for n, m in enumerate([1.0, 1.0, 1.0, 1.5], 1):
        write_run(d, n, [info(T=T, median=m * 1e-3 * T / 512) for T in (256, 512, 1024)]
                  + [info(impl="sdpa", T=T, median=2e-3 * T / 512) for T in (256, 512, 1024)])
    env = dict(os.environ, PYTHONPATH=ROOT)
    args = [sys.executable, "-m", "mixology", "history", "--storage", str(tmp_path / "hist"),
            "--plots", str(tmp_path / "plots")]
    r = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 1 and "SLOWER" in r.stdout, r.stdout + r.stderr
    r = subprocess.run(args + ["--no-gate"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr
    pngs = list((tmp_path / "plots" / "cuda-X").glob("*.png"))
    assert pngs and all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_report_gives_verdicts_and_targets_on_gpu_results():
    big = dict(B=2**17 // 512, T=512, D=768)
    res = [info(median=1e-4, gbps=2800, **big), info(mode="bwd", median=2e-4, gbps=2000, **big),
           info(impl="compiled", median=1.5e-4, **big), info(impl="reference", median=4e-4, **big),
           info(impl="attention_block", median=3e-4, **big), info(impl="sdpa", median=2e-4, **big),
           info(impl="triton", sweep="mem", T=1024, peak=10**6, B=1),
           info(impl="triton", sweep="mem", T=4096, peak=4 * 10**6, B=1),
           info(impl="sdpa_math", sweep="mem", T=1024, peak=10**6, B=1),
           info(impl="sdpa_math", sweep="mem", T=4096, peak=16 * 10**6, B=1)]
    text = claims.report(res)
    assert "attention block / mixer = 3.00x" in text and "Verdict: holds" in text
    assert "triton ~T^1.00" in text and "sdpa_math ~T^2.00" in text
    assert "triton fwd: 93-93% of copy bandwidth" in text and "met" in text
    assert "triton bwd: 67-67%" in text and "missed by 8 points" in text
    assert "triton vs compiled (fwd): 1.50-1.50x" in text


def test_flop_counts_match_the_formulas():
    f = sweep.flop_counts(T=512, D=768)
    assert f["sdpa"] == 4 * 512 * 512 * 768  # QK^T and AV, 2 FLOPs per multiply-add
    assert f["attention_block"] == f["sdpa"] + 8 * 512 * 768 * 768  # + 4 D x D projections
    assert f["seed_formula"] / f["mixer"] == pytest.approx(448)


def test_causal_attention_flops_count_the_unmasked_pairs():
    """Causal SDPA's FLOPs: QKᵀ and PV over the pairs the causal mask keeps (counted from
    the mask), not the full T x T, in both entries that time it."""
    import torch

    for bh, T, d in ((1, 1, 1), (3, 5, 8), (16, 64, 64)):
        kept = int(torch.ones(T, T).tril().sum())
        assert sweep.causal_attention_flops(bh, T, d) == bh * kept * 2 * (2 * d)
    for entry in ("quadratic_attention", "linear_attention"):
        p = sweep.Point(entry, "sdpa_causal", "fwd", 2, 33, 16, "fp32", "T")
        _, _, flops = sweep.ENTRIES[entry].build(p, "cpu")
        assert flops == sweep.causal_attention_flops(2 * sweep.QUAD_H, 33, 16), entry


def test_quadratic_attention_points_and_report():
    """The quadratic-attention sweep (d_head 16/32/64, T to 65536, the O(T²) reference capped)
    and its report: scaling exponents and the crossover T, on synthetic timings."""
    points = [p for p in sweep.sweep("full", "cuda") if p.entry == "quadratic_attention"]
    assert {p.D for p in points} == {16, 32, 64}
    assert max(p.T for p in points if p.impl == "triton") == 65536
    assert max(p.T for p in points if p.impl == "reference") == sweep.REFERENCE_MAX_T
    assert {p.impl for p in points} == set(sweep.QUAD_IMPLS)

    def r(impl, T, t):
        return {"entry": "quadratic_attention", "mode": "fwd", "dtype": "bf16", "D": 16,
                "impl": impl, "T": T, "median_s": t, "peak_mem_bytes": 100 * T}

    Ts = [2**k for k in range(6, 15)]
    results = ([r("triton", T, 1e-6 * T) for T in Ts] + [r("reference", T, 1e-9 * T * T)
                                                         for T in Ts]
               + [r("sdpa_causal", T, 1e-12 * T * T) for T in Ts])
    text = "\n".join(claims.quadratic_report(results))
    assert "triton T^1.00" in text and "reference T^2.00" in text
    assert "crossover vs reference: triton faster from T=1024 on" in text
    assert "crossover vs sdpa_causal: not reached" in text
    assert "triton peak memory ~T^1.00" in text


def test_linear_attention_report():
    """Linear attention's report: scaling exponents, the chunked form against causal SDPA per
    T, and the Triton kernel's % of the matmul ceiling and its crossover T against causal
    SDPA, on synthetic timings."""
    def r(impl, T, t, pct=None):
        return {"entry": "linear_attention", "mode": "fwd", "dtype": "bf16", "D": 64,
                "impl": impl, "T": T, "median_s": t, "pct_matmul_ceiling": pct}

    Ts = [2**k for k in range(10, 15)]
    results = ([r("triton", T, 1e-6 * T, pct=T / 1000) for T in Ts]
               + [r("chunked", T, 2e-6 * T) for T in Ts]
               + [r("sdpa_causal", T, 2e-9 * T * T) for T in Ts])
    text = "\n".join(claims.linear_report(results))
    assert "triton T^1.00" in text and "sdpa_causal T^2.00" in text, text
    assert "T=1024: sdpa_causal / chunked 1.02x" in text, text
    assert "triton: T=1024 1%, T=2048 2%" in text and "of the matmul ceiling" in text, text
    assert "crossover vs sdpa_causal: triton faster from T=1024 on (measured up to " \
           "T=16384)" in text, text
    slow = [dict(x, median_s=1.0) if x["impl"] == "triton" else x for x in results]
    assert "crossover vs sdpa_causal: not reached" in "\n".join(claims.linear_report(slow))


def test_per_token_ffn_and_norm_points_and_reports():
    """The per-token FFN sweep (T 16..512 at D = 512, D 256..2048, batch 64..4096; ff = 4D)
    reports TFLOP/s as % of the matmul ceiling against the 60% target; the norms report % of
    the copy ceiling against 85%. Synthetic timings."""
    points = sweep.sweep("full", "cuda")
    pffn = [p for p in points if p.entry == "per_token_ffn"]
    assert {p.T for p in pffn if p.sweep == "T"} == {16, 32, 64, 128, 256, 512}
    assert {p.D for p in pffn if p.sweep == "D"} == {256, 512, 1024, 2048}
    assert {p.impl for p in pffn} == set(sweep.PFFN_IMPLS)
    assert max(p.T * 8 * p.D**2 * 2 for p in pffn) <= 4 * 2**30  # weights fit (bf16)
    norms = [p for p in points if p.entry in ("layer_norm", "rms_norm")]
    assert {p.B * p.T for p in norms} == {2**17}
    assert {p.impl for p in norms if p.entry == "rms_norm"} == {"reference", "native", "triton"}

    def r(entry, impl, pct, **kw):
        base = dict(entry=entry, impl=impl, mode="fwd", dtype="bf16", B=4096, T=32, D=1024,
                    sweep="B", device="cuda", device_key="cuda-X", tflops=pct * 7, pct_matmul_ceiling=pct,
                    pct_copy_ceiling=pct, ceilings={"copy_gbps": 3000.0, "matmul_tflops": 700.0})
        return base | kw

    res = [r("per_token_ffn", "bmm", 72), r("per_token_ffn", "bmm", 20, B=64),
           r("per_token_ffn", "reference", 50),
           r("layer_norm", "triton", 90, sweep="D"), r("layer_norm", "triton", 80, D=256),
           r("rms_norm", "triton", 88, sweep="D")]
    text = claims.report(res)
    assert "bmm 504.00 TFLOP/s = 72% (T=32, D=1024); reference 350.00" in text
    assert "Target >= 60%: met" in text and "bmm vs batch: B=64: 20%, B=4096: 72%" in text
    assert "layer_norm bf16 fwd: triton 80-90%. Triton target >= 85%: missed by 5" in text
    assert "rms_norm bf16 fwd: triton 88-88%. Triton target >= 85%: met" in text


def _bench(storage):
    env = dict(os.environ, PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, "-m", "mixology", "bench", "--device", "cpu", "--sizes",
                        "cpu", "--storage", str(storage), "--", "-q", "-k", "norm and reference"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


def test_two_runs_of_the_same_code_raise_no_flag_and_compare_by_commit(tmp_path):
    """The same code twice on this machine: the gate fails on nothing (one earlier run cannot
    show the machine's process-to-process noise: changes are "unconfirmed" or "too noisy"),
    each run records torch/triton, --compare takes two chosen runs and the trend plot spans
    them."""
    _bench(tmp_path / "h")
    _bench(tmp_path / "h")
    env = dict(os.environ, PYTHONPATH=ROOT)
    hist = [sys.executable, "-m", "mixology", "history", "--storage", str(tmp_path / "h")]
    r = subprocess.run(hist + ["--plots", str(tmp_path / "p")], capture_output=True, text=True,
                       cwd=ROOT, env=env)
    assert r.returncode == 0 and "\n0 slowdown(s)" in r.stdout, r.stdout[-3000:]
    assert "torch " in r.stdout and "triton " in r.stdout, r.stdout[:500]
    assert list((tmp_path / "p").glob("*/trend_layer_norm_fwd_fp32.png"))
    files = sorted(p.name for p in (tmp_path / "h").glob("*/*/*.json"))
    r = subprocess.run(hist + ["--compare", files[0], files[1]], capture_output=True, text=True,
                       cwd=ROOT, env=env)
    assert r.returncode == 0 and "benchmarks in both" in r.stdout, r.stdout[-2000:]
    r = subprocess.run(hist + ["--compare", "nope", files[1]], capture_output=True, text=True,
                       cwd=ROOT, env=env)
    assert r.returncode == 2 and "no run matches 'nope'" in r.stderr, r.stderr


def _steady(d, n=3, **kw):
    """n runs of a steady benchmark (medians within 1%): a known run-to-run noise."""
    for i, m in enumerate([1.00, 1.01, 0.99, 1.00][:n], 1):
        write_run(d, i, [info(median=m * 1e-3, **kw), info(impl="sdpa", median=m * 1e-3, **kw)],
                  commit=f"c{i}")


def test_a_slower_median_with_the_fastest_round_unchanged_is_not_flagged(tmp_path):
    """A busier machine: the median +25% (spreads 1%), the fastest round where it was. Not a
    slowdown of the code: "too noisy to judge", in both the gate and --compare."""
    d = tmp_path / "cuda-X" / "m"
    _steady(d)
    write_run(d, 4, [info(median=1.25e-3) | {"min_s": 0.98e-3}], commit="head")
    runs = history.load_runs(tmp_path)
    (row,) = history.compare(runs["cuda-X"])
    assert row.change_pct == pytest.approx(100 * (1.25 / 0.99 - 1))
    assert row.min_change_pct == pytest.approx(100 * (0.98 / (0.97 * 0.99) - 1))
    assert row.verdict == "noisy"
    (row,) = history.compare_two(*runs["cuda-X"][2:], history=runs["cuda-X"])
    assert row.verdict == "noisy"
    assert "too noisy to judge" in history.format_rows([row])


def test_before_the_history_knows_the_noise_a_slowdown_is_unconfirmed(tmp_path):
    """Two runs (+30%, rounds within 1%): the rounds of one run cannot show how much this
    machine varies from process to process, so the change is reported "unconfirmed" and the
    gate passes; a third and fourth steady run make the same +30% a SLOWER that fails it."""
    d = tmp_path / "cuda-X" / "m"
    write_run(d, 1, [info(median=1e-3)], commit="aaa")
    write_run(d, 2, [info(median=1.3e-3)], commit="bbb")
    runs = history.load_runs(tmp_path)["cuda-X"]
    (row,) = history.compare(runs)
    assert row.verdict == "unconfirmed" and not row.flagged
    env = dict(os.environ, PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, "-m", "mixology", "history", "--storage", str(tmp_path),
                        "--no-plots"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0 and "1 unconfirmed" in r.stdout, r.stdout + r.stderr
    (d / "0002_bbb_x.json").unlink()
    _steady(d)
    write_run(d, 4, [info(median=1.3e-3)], commit="bbb")
    (row,) = history.compare(history.load_runs(tmp_path)["cuda-X"])
    assert row.flagged
    r = subprocess.run([sys.executable, "-m", "mixology", "history", "--storage", str(tmp_path),
                        "--no-plots"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 1 and "SLOWER" in r.stdout, r.stdout + r.stderr


def test_compare_two_judges_against_the_spread_of_both_runs(tmp_path):
    d = tmp_path / "cuda-X" / "m"
    _steady(d)
    write_run(d, 4, [info(median=1.3e-3), info(impl="sdpa", median=1.3e-3)], commit="bbb")
    runs = history.load_runs(tmp_path)
    base, head = history.find_run(runs, "c1"), history.find_run(runs, "bbb")
    compare = functools.partial(history.compare_two, base, head, history=runs["cuda-X"])
    rows = {r.key.split("-")[1]: r for r in compare()}
    assert rows["triton"].flagged  # +30% with 1% spreads and 1% run-to-run noise
    head.results[next(k for k in head.results if "-sdpa-" in k)]["rel_iqr"] = 0.4
    rows = {r.key.split("-")[1]: r for r in compare()}
    assert rows["sdpa"].verdict == "noisy" and not rows["sdpa"].flagged
    rows = {r.key.split("-")[1]: r for r in history.compare_two(base, head)}
    assert rows["triton"].verdict == "unconfirmed"  # no history given: noise unknown


def test_the_gpu_session_without_cuda_is_one_line_and_exit_2(tmp_path):
    """`bash perf/run_gpu.sh session OUT` needs CUDA; without it, one line and exit 2 (the
    same steps run on CPU as `dry`, which CI runs: tox.ini)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is here: the session would run")
    r = subprocess.run(["bash", os.path.join(ROOT, "perf", "run_gpu.sh"), "session",
                        str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT,
                       env=dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep
                                + os.environ["PATH"]))
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "no CUDA device" in r.stderr, r.stderr


def test_the_cpu_sweep_its_history_plots_and_claims_run_end_to_end(tmp_path):
    """The perf sweep's code path at CPU sizes: `mixology bench --sizes cpu` measures every
    point and saves the run into a history folder, `mixology history` reads it back and
    draws its plots, perf/claims.py reports on it. It runs beside the other tests, on one
    core: its timings are the code path's, not figures (the committed history comes from
    `tox -e perf` and GPU runs)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")  # the other core is the other worker's

    def run(*args):
        r = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=900)
        assert r.returncode == 0, (args, r.stdout[-3000:] + r.stderr[-3000:])
        return r.stdout

    storage, plots = tmp_path / "history", tmp_path / "plots"
    run("-m", "mixology", "bench", "--device", "cpu", "--sizes", "cpu", "--storage",
        str(storage), "--", "-q")
    (saved,) = storage.rglob("*.json")
    measured = {(b["extra_info"]["entry"], b["extra_info"]["impl"], b["extra_info"]["mode"],
                 b["extra_info"]["T"], b["extra_info"]["D"])
                for b in json.loads(saved.read_text())["benchmarks"]}
    assert measured == {(p.entry, p.impl, p.mode, p.T, p.D) for p in sweep.sweep("cpu", "cpu")}
    run("-m", "mixology", "history", "--no-gate", "--storage", str(storage), "--plots",
        str(plots))
    assert any(plots.rglob("*.png"))
    assert "seed claims" in run(os.path.join("perf", "claims.py"), "--storage", str(storage))


def test_the_gpu_session_dry_brings_back_its_files(tmp_path):
    """`bash perf/run_gpu.sh dry OUT` runs the GPU session's steps on CPU at tiny sizes (so the
    one GPU call cannot rot): the spec log with every check passed, one history JSON, the
    summary with each step's section, and plots; at most 7 files of at most 16 MiB, none in
    a folder (docs/benchmarks.md); all in at most 3 minutes."""
    import time

    out = tmp_path / "out"
    start = time.perf_counter()
    r = subprocess.run(["bash", os.path.join(ROOT, "perf", "run_gpu.sh"), "dry", str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=600,
                       env=dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep
                                + os.environ["PATH"]))
    seconds = time.perf_counter() - start
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert all(p.parent == out for p in files) and len(files) <= 7, files
    assert all(p.stat().st_size <= 16 << 20 for p in files), files
    names = [p.name for p in files]
    spec_log = (out / "spec-cuda.txt").read_text().splitlines()[0]
    assert " 0 failed" in spec_log and not spec_log.split(": ")[1].startswith("0 passed"), spec_log
    assert sum(n.endswith(".json") for n in names) == 1 and any(n.endswith(".png") for n in names)
    summary = (out / "summary.md").read_text()
    for section in ("## 1. The spec", "## 2-3. Ceilings and the headline points", "## 4. Lab",
                    "seed claims", "tokens/s"):
        assert section in summary, (section, summary)
    assert seconds <= 180, f"the dry session took {seconds:.0f} s"
