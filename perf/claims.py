"""The seed's claims and the kernels' targets (perf/claims.json), measured on a benchmark run.

    python perf/claims.py [--storage perf/history] [--device-key KEY] [--markdown OUT.md]

prints, for the latest run of each device in the history, every claim with the figure
measured and a verdict (n/a on CPU, where Triton is interpreted and sizes are small), then
quadratic attention's scaling and crossover, the per-token FFN's share of the matmul ceiling
and the norms' share of the copy ceiling. ``mixology bench`` prints the same for the run it
has just made (perf/conftest.py).
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout, as `mixology bench` is

from mixology.bench import history  # noqa: E402
from mixology.bench.sweep import flop_counts  # noqa: E402

CLAIMS = json.loads((ROOT / "perf" / "claims.json").read_text())


def _mib(nbytes) -> str:
    return f"{nbytes / 2**20:.3g} MiB"


def _x(v) -> str:
    return "n/a" if v is None else f"{v:.2f}x"


def _nearest(values, want):
    return min(values, key=lambda v: (abs(math.log(v / want)), v)) if values else None


def _time(results, **match) -> float | None:
    for r in results:
        if all(r.get(k) == v for k, v in match.items()):
            return r["median_s"]
    return None


def _slope(pts):
    """Least-squares slope of log(y) against log(x)."""
    if len(pts) < 2:
        return None
    lx = [math.log(x) for x, _ in pts]
    ly = [math.log(y) for _, y in pts]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    den = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / den if den else None


def report(results: list[dict]) -> str:
    """The seed's claims with the measured figure and a verdict, then the targets."""
    if not results:
        return "no results"
    claims, at = CLAIMS["seed_claims"], CLAIMS["reference_point"]
    dev = results[0]["device"]
    on_gpu = dev == "cuda"
    lines = [f"device: {results[0]['device_key']}"]
    if not on_gpu:
        lines.append("  CPU run: small sizes, Triton interpreted. Timings exercise the code path; "
                     "the speed claims need a GPU run (verdicts below say n/a).")
    everything, results = results, [r for r in results if r["entry"] == "token_mixer"]
    if not results:
        return "\n".join(lines + quadratic_report(everything) + linear_report(everything)
                         + pffn_report(everything)
                         + norms_report(everything))
    dtype = "bf16" if any(r["dtype"] == "bf16" for r in results) else results[0]["dtype"]
    tsweep = [r for r in results if r["sweep"] == "T" and r["dtype"] == dtype]
    Ds = sorted({r["D"] for r in tsweep})
    D = _nearest(Ds, at["D"])
    Ts = sorted({r["T"] for r in tsweep if r["D"] == D})
    T = _nearest(Ts, at["T"])
    # the interpreted Triton kernel on CPU is a correctness path, not a speed: use compiled there
    mixer = "triton" if on_gpu and any(r["impl"] == "triton" for r in tsweep) else "compiled"

    f, c = flop_counts(at["T"], at["D"]), claims["flops"]
    lines.append("\nseed claims")
    lines.append(
        f"{c['n']}. '{c['claim']}': the 448x is "
        f"the seed's own formula B·T²·D + 4·B·T·D² ({f['seed_formula'] / f['mixer']:.0f}x). "
        f"Counted with FlopCounterMode (2 FLOPs per multiply-add), attention with QKV/output "
        f"projections is {f['attention_block'] / f['mixer']:.0f}x the mixer's 8·T·D and SDPA "
        f"alone {f['sdpa'] / f['mixer']:.0f}x. Verdict: {c['verdict']}.")

    def ratio(mode, base, T_=T):
        a = _time(tsweep, impl=base, mode=mode, D=D, T=T_)
        m = _time(tsweep, impl=mixer, mode=mode, D=D, T=T_)
        return a / m if a and m else None

    for c in (claims["speedup"], claims["training_speedup"]):
        n, mode, claim, lo = c["n"], c["mode"], c["claim"], c["at_least"]
        rb, rs = ratio(mode, "attention_block"), ratio(mode, "sdpa")
        if rb is None:
            lines.append(f"{n}. '{claim}': not measured in this run")
            continue
        verdict = (("holds" if rb >= lo else "does not hold") if on_gpu else "n/a on CPU")
        lines.append(f"{n}. '{claim}' ({mode}, {mixer} mixer, T={T}, D={D}, {dtype}): "
                     f"attention block / mixer = {_x(rb)}, SDPA alone / mixer = {_x(rs)}. "
                     f"Verdict: {verdict}.")
    big = [r for r in results if r["impl"] == mixer and r["mode"] == "fwd" and r["dtype"] == dtype
           and r["sweep"] == "T"]
    c = claims["bandwidth"]
    if big:
        top = max(big, key=lambda r: (r["bytes"], -r["median_s"]))
        v = (("holds" if top["pct_copy_ceiling"] >= c["at_least_pct"] else "does not hold")
             if on_gpu else "n/a on CPU")
        lines.append(f"{c['n']}. '{c['claim']}': {mixer} forward at "
                     f"{_mib(top['bytes'])} moved: {top['gbps']:.1f} GB/s = "
                     f"{top['pct_copy_ceiling']:.0f}% of the measured copy "
                     f"({top['ceilings']['copy_gbps']:.0f} GB/s). Verdict: {v}.")
    mem, c = [r for r in results if r["sweep"] == "mem" and r.get("peak_mem_bytes")], claims["memory"]
    if mem:
        parts = []
        for impl in sorted({r["impl"] for r in mem}):
            s = _slope(sorted((r["T"], r["peak_mem_bytes"]) for r in mem if r["impl"] == impl))
            parts.append(f"{impl} ~T^{s:.2f}" if s is not None else f"{impl} ?")
        lines.append(f"{c['n']}. '{c['claim']}': peak memory at B=1 grows as "
                     + ", ".join(parts) + f" ({c['note']}). Verdict: {c['verdict']}.")
    else:
        lines.append(f"{c['n']}. '{c['claim']}': needs CUDA peak-memory counters; n/a on CPU.")

    goal = CLAIMS["targets"]["token_mixer"]
    lines.append(f"\ntargets ({goal['dtype']}, working sets >= {goal['min_working_set_mib']} MiB)")
    if not on_gpu:
        lines.append("  n/a on CPU")
    else:
        lines += _targets(results)
    lines.append("\nmixer vs attention per T (" + dtype + f", D={D}, fwd; >1: mixer faster)")
    for T_ in Ts:
        rs, rb = ratio("fwd", "sdpa", T_), ratio("fwd", "attention_block", T_)
        if rs or rb:
            lines.append(f"  T={T_:>6}: SDPA/mixer {_x(rs):>9}   attention block/mixer {_x(rb):>9}")
    lines += (quadratic_report(everything) + linear_report(everything) + pffn_report(everything)
              + norms_report(everything))
    return "\n".join(lines)


def pffn_report(results: list[dict]) -> list[str]:
    """Per-token FFN: each implementation's best TFLOP/s and % of the measured matmul ceiling,
    at the largest batch, against its target (bf16, GPU)."""
    pts = [r for r in results if r["entry"] == "per_token_ffn"]
    if not pts:
        return []
    goal = CLAIMS["targets"]["per_token_ffn"]
    on_gpu = pts[0]["device"] == "cuda"
    lines = ["\nper-token FFN (ff = 4D, GELU; % of the measured matmul ceiling "
             f"{pts[0]['ceilings']['matmul_tflops']:.1f} TFLOP/s)"]
    for dtype, mode in sorted({(r["dtype"], r["mode"]) for r in pts}):
        sel = [r for r in pts if r["dtype"] == dtype and r["mode"] == mode]
        B = max(r["B"] for r in sel)
        parts = []
        for impl in sorted({r["impl"] for r in sel}):
            at_b = [r for r in sel if r["impl"] == impl and r["B"] == B]
            if at_b:
                top = max(at_b, key=lambda r: r["tflops"])
                parts.append(f"{impl} {top['tflops']:.2f} TFLOP/s = "
                             f"{top['pct_matmul_ceiling']:.0f}% (T={top['T']}, D={top['D']})")
        best = max((r for r in sel if r["B"] == B), key=lambda r: r["pct_matmul_ceiling"])
        verdict = (("met" if best["pct_matmul_ceiling"] >= goal["pct_matmul_ceiling"] else "missed")
                   if on_gpu and dtype == goal["dtype"]
                   else f"n/a (target is {goal['dtype']} on a GPU)")
        lines.append(f"  {dtype} {mode}, B={B}: " + "; ".join(parts)
                     + f". Target >= {goal['pct_matmul_ceiling']}%: {verdict}.")
        by_b = sorted((r["B"], r["pct_matmul_ceiling"]) for r in sel
                      if r["sweep"] == "B" and r["impl"] == best["impl"])
        if by_b:
            lines.append(f"    {best['impl']} vs batch: " + ", ".join(
                f"B={b}: {p:.0f}%" for b, p in by_b))
    return lines


def norms_report(results: list[dict]) -> list[str]:
    """Fused norms: GB/s as % of the measured copy ceiling over the D sweep, against the
    Triton kernels' target."""
    pts = [r for r in results if r["entry"] in ("layer_norm", "rms_norm")]
    if not pts:
        return []
    goal = CLAIMS["targets"]["norms"]["pct_copy_ceiling"]
    on_gpu = pts[0]["device"] == "cuda"
    lines = [f"\nnorms (% of the measured copy ceiling "
             f"{pts[0]['ceilings']['copy_gbps']:.0f} GB/s, over D)"]
    for entry, dtype, mode in sorted({(r["entry"], r["dtype"], r["mode"]) for r in pts}):
        parts = []
        for impl in sorted({r["impl"] for r in pts if r["entry"] == entry}):
            p = [r["pct_copy_ceiling"] for r in pts if (r["entry"], r["dtype"], r["mode"],
                                                        r["impl"]) == (entry, dtype, mode, impl)]
            if p:
                parts.append(f"{impl} {min(p):.0f}-{max(p):.0f}%")
        tri = [r["pct_copy_ceiling"] for r in pts if (r["entry"], r["dtype"], r["mode"],
                                                      r["impl"]) == (entry, dtype, mode, "triton")]
        verdict = ("n/a on CPU" if not on_gpu or not tri else
                   "met" if min(tri) >= goal else f"missed by {goal - min(tri):.0f} points")
        lines.append(f"  {entry} {dtype} {mode}: " + ", ".join(parts)
                     + f". Triton target >= {goal}%: {verdict}.")
    return lines


def _exponents(pts: list[dict]) -> str:
    """Each implementation's scaling exponent in T: time ~ T^k, least squares over the upper
    half of its T range (3 sizes at least)."""
    exps = []
    for impl in sorted({r["impl"] for r in pts}):
        series = sorted((r["T"], r["median_s"]) for r in pts if r["impl"] == impl)
        k = _slope(series[len(series) // 2:]) if len(series) >= 3 else None
        exps.append(f"{impl} T^{k:.2f}" if k is not None else f"{impl} (too few T)")
    return ", ".join(exps)


def quadratic_report(results: list[dict]) -> list[str]:
    """Quadratic attention: each form's scaling exponent in T (time ~ T^k, least squares over
    the upper half of the T range), the crossover T from which the Triton linear form is faster
    than the O(T²) reference and than causal SDPA, and how its peak memory grows."""
    quad = [r for r in results if r["entry"] == "quadratic_attention" and r["mode"] == "fwd"]
    if not quad:
        return []
    lines = ["\nquadratic attention (fwd, B=2, H=8; d_head = D)"]
    for dtype, d in sorted({(r["dtype"], r["D"]) for r in quad}):
        pts = [r for r in quad if r["dtype"] == dtype and r["D"] == d]
        lines.append(f"  {dtype} d={d}: time grows as " + _exponents(pts))
        for base in ("reference", "sdpa_causal"):
            lines.append(f"    crossover vs {base}: " + _crossover(pts, base))
        mem = sorted((r["T"], r["peak_mem_bytes"]) for r in pts
                     if r["impl"] == "triton" and r.get("peak_mem_bytes"))
        if len(mem) >= 3:
            lines.append(f"    triton peak memory ~T^{_slope(mem[len(mem) // 2:]):.2f}")
    return lines


def _crossover(pts: list[dict], base: str) -> str:
    """The T from which the triton points are faster than ``base`` at every measured T."""
    faster = {r["T"]: None for r in pts if r["impl"] == "triton"}
    for T in faster:
        a, b = _time(pts, impl="triton", T=T), _time(pts, impl=base, T=T)
        faster[T] = None if b is None else a < b
    known = sorted(T for T, f in faster.items() if f is not None)
    cross = next((T for i, T in enumerate(known) if all(faster[u] for u in known[i:])), None)
    if cross:
        return f"triton faster from T={cross} on (measured up to T={known[-1]})"
    return "not reached" if known else "not measured"


def linear_report(results: list[dict]) -> list[str]:
    """Linear attention: each form's scaling exponent in T (as for quadratic attention); at
    each T of the run the chunked form's time against causal SDPA and against quadratic
    attention's chunked linear form at the same B, H, d; the Triton kernel's TFLOP/s as % of
    the matmul ceiling measured in the same run, and the T from which it beats causal SDPA."""
    lin = [r for r in results if r["entry"] == "linear_attention" and r["mode"] == "fwd"]
    if not lin:
        return []
    lines = ["\nlinear attention (fwd, B=2, H=8, a log-decay per head and step; d_head = D)"]
    for dtype, d in sorted({(r["dtype"], r["D"]) for r in lin}):
        pts = [r for r in lin if r["dtype"] == dtype and r["D"] == d]
        lines.append(f"  {dtype} d={d}: time grows as " + _exponents(pts))
        quad = [r for r in results if (r["entry"], r["mode"], r["dtype"], r["D"], r["impl"])
                == ("quadratic_attention", "fwd", dtype, d, "chunked")]
        for T in sorted({r["T"] for r in pts if r["impl"] == "chunked"}):
            a = _time(pts, impl="chunked", T=T)
            ratios = [f"{name} / chunked {b / a:.2f}x" for name, b in (
                ("sdpa_causal", _time(pts, impl="sdpa_causal", T=T)),
                ("quadratic chunked", _time(quad, impl="chunked", T=T))) if b and a]
            lines.append(f"    T={T}: " + (", ".join(ratios) or "no baseline measured"))
        pct = sorted((r["T"], r["pct_matmul_ceiling"]) for r in pts
                     if r["impl"] == "triton" and r.get("pct_matmul_ceiling") is not None)
        if pct:
            lines.append("    triton: " + ", ".join(f"T={T} {p:.0f}%" for T, p in pct)
                         + " of the matmul ceiling")
            lines.append("    crossover vs sdpa_causal: " + _crossover(pts, "sdpa_causal"))
    return lines


def _targets(results) -> list[str]:
    goal = CLAIMS["targets"]["token_mixer"]
    big = [r for r in results if r["dtype"] == goal["dtype"] and r["sweep"] == "T"
           and r["B"] * r["T"] * r["D"] * 2 * 2 >= goal["min_working_set_mib"] * 2**20]
    out = []

    def pct(mode):
        return [r["pct_copy_ceiling"] for r in big if r["impl"] == "triton" and r["mode"] == mode]

    for mode, target in goal["pct_copy_ceiling"].items():
        p = pct(mode)
        if p:
            out.append(f"  triton {mode}: {min(p):.0f}-{max(p):.0f}% of copy bandwidth over "
                       f"{len(p)} points (target >= {target}%): "
                       f"{'met' if min(p) >= target else f'missed by {target - min(p):.0f} points'}")
    for base, target in goal["speedup_over"].items():
        for mode in ("fwd", "bwd", "fwd+bwd"):
            ratios = []
            for r in big:
                if r["impl"] == "triton" and r["mode"] == mode:
                    b = _time(big, impl=base, mode=mode, D=r["D"], T=r["T"])
                    if b:
                        ratios.append(b / r["median_s"])
            if ratios:
                out.append(f"  triton vs {base} ({mode}): {min(ratios):.2f}-{max(ratios):.2f}x "
                           f"(target >= {target}x): "
                           f"{'met' if min(ratios) >= target else 'missed'}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--storage", default=str(ROOT / "perf" / "history"), help="history folder")
    ap.add_argument("--device-key", action="append", help="only this device's history")
    ap.add_argument("--markdown", help="also write the verdicts here, as markdown")
    args = ap.parse_args(argv)
    runs = history.load_runs(args.storage)
    if args.device_key:
        runs = {k: v for k, v in runs.items() if k in args.device_key}
    if not runs:
        print(f"no benchmark history under {args.storage}")
        return 0
    texts = []
    for key, key_runs in sorted(runs.items()):
        latest = key_runs[-1]
        texts.append(f"== {key}: {latest.path.name} (commit {latest.commit}; {latest.versions})\n"
                     + report(list(latest.results.values())))
    print("\n\n".join(texts))
    if args.markdown:
        pathlib.Path(args.markdown).write_text(
            "# Seed claims and targets\n\n" + "\n\n".join(f"```text\n{t}\n```" for t in texts)
            + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
