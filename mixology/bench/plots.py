"""Plots of benchmark runs: each run's sweeps, and the trend across runs."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from mixology.bench.history import Run

COMPUTE_BOUND = ("quadratic_attention", "linear_attention", "per_token_ffn")  # in TFLOP/s


def plot_run(run: Run, out_dir: str | Path) -> list[Path]:
    """PNG plots of one run: time and GB/s vs T (log-log), one line per implementation, the
    copy ceiling drawn in; time vs D; peak memory vs T."""
    # matplotlib loads only to draw, with the Agg backend set before pyplot
    import matplotlib

    matplotlib.use("Agg")
    # matplotlib loads only to draw, with the Agg backend set before pyplot
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for info in run.results.values():
        fixed = {"D": info["T"], "B": (info["T"], info["D"])}.get(info["sweep"], info["D"])
        groups[(info["entry"], info["mode"], info["sweep"], fixed, info["dtype"])].append(info)
    written = []
    for (entry, mode, sweep, fixed, dtype), infos in sorted(groups.items()):
        x = sweep if sweep in ("D", "B") else "T"
        by_impl: dict[str, list[dict]] = defaultdict(list)
        for info in infos:
            by_impl[info["impl"]].append(info)
        ceil = infos[0]["ceilings"]["copy_gbps"]
        if sweep == "mem":
            if all(i.get("peak_mem_bytes") is None for i in infos):
                continue
            fig, ax = plt.subplots(figsize=(6, 4.5))
            for impl, pts in sorted(by_impl.items()):
                pts = sorted((p["T"], p["peak_mem_bytes"]) for p in pts if p.get("peak_mem_bytes"))
                if pts:
                    ax.loglog(*zip(*pts, strict=True), "o-", label=impl)
            ax.set(xlabel="T (B = 1)", ylabel="peak memory (bytes)",
                   title=f"{entry} {mode}: peak memory, D={fixed} {dtype}")
            ax.legend()
            ax.grid(True, which="both", alpha=0.3)
            name = f"{entry}_{mode}_memory_D{fixed}_{dtype}.png".replace("+", "")
        else:
            fig, (ax_t, ax_b) = plt.subplots(1, 2, figsize=(12, 4.5))
            for impl, pts in sorted(by_impl.items()):
                pts = sorted(pts, key=lambda p: p[x])
                xs = [p[x] for p in pts]
                label = impl + (" (interpreted)" if impl == "triton"
                                and pts[0].get("triton_interpreted") else "")
                ax_t.loglog(xs, [p["median_s"] * 1e3 for p in pts], "o-", label=label)
                ax_b.loglog(xs, [p["gbps"] for p in pts], "o-", label=label)
            label = x
            other = (f"T={fixed}" if sweep == "D" else f"T={fixed[0]}, D={fixed[1]}"
                     if sweep == "B" else f"D={fixed}")
            if entry in COMPUTE_BOUND:  # TFLOP/s, not GB/s
                ax_b.clear()
                for impl, pts in sorted(by_impl.items()):
                    pts = sorted(pts, key=lambda p: p[x])
                    ax_b.loglog([p[x] for p in pts], [p["tflops"] for p in pts], "o-",
                                label=impl)
                if entry in ("quadratic_attention", "linear_attention"):
                    ax_b.set(ylabel="TFLOP/s (each algorithm's own FLOPs)")
                    other = f"d_head={fixed}"
                else:
                    mm = infos[0]["ceilings"]["matmul_tflops"]
                    ax_b.axhline(mm, color="k", ls="--", label=f"matmul ceiling {mm:.1f} TFLOP/s")
                    ax_b.set(ylabel="TFLOP/s")
            else:
                ax_b.axhline(ceil, color="k", ls="--", label=f"copy ceiling {ceil:.0f} GB/s")
            ax_t.set(xlabel=label, ylabel="median time per call (ms)",
                     title=f"{entry} {mode}, {other}, {dtype}")
            if entry not in COMPUTE_BOUND:
                ax_b.set(ylabel="effective GB/s")
            ax_b.set(xlabel=label, title=f"{entry} {mode} ({run.device_key})")
            for ax in (ax_t, ax_b):
                ax.set_xscale("log", base=2)
                ax.grid(True, which="both", alpha=0.3)
                ax.legend(fontsize=8)
            tag = other.replace("=", "").replace(", ", "_")
            name = f"{entry}_{mode}_{label}sweep_{tag}_{dtype}.png"
            name = name.replace("+", "")
        fig.tight_layout()
        path = out / name
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written



def plot_trend(runs: list[Run], out_dir: str | Path, max_plots: int = 12) -> list[Path]:
    """The trend across runs (commits), one PNG per entry x mode x dtype: each implementation's
    median at the group's largest point, with its rounds' spread (median ± IQR/2) as a band."""
    # matplotlib loads only to draw, with the Agg backend set before pyplot
    import matplotlib

    matplotlib.use("Agg")
    # matplotlib loads only to draw, with the Agg backend set before pyplot
    import matplotlib.pyplot as plt

    if len(runs) < 2:
        return []
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    largest: dict[tuple, dict[str, str]] = defaultdict(dict)  # group -> impl -> point key
    for key, info in runs[-1].results.items():
        if info["sweep"] == "mem":
            continue
        group, impl = (info["entry"], info["mode"], info["dtype"]), info["impl"]
        size = info["B"] * info["T"] * info["D"]
        best = largest[group].get(impl)
        if best is None or size > _size(runs[-1].results[best]):
            largest[group][impl] = key
    written = []
    for (entry, mode, dtype), keys in sorted(largest.items())[:max_plots]:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for impl, key in sorted(keys.items()):
            pts = [(i, r.results[key]) for i, r in enumerate(runs) if key in r.results]
            xs = [i for i, _ in pts]
            med = [p["median_s"] * 1e3 for _, p in pts]
            half = [p["median_s"] * 1e3 * p.get("rel_iqr", 0.0) / 2 for _, p in pts]
            ax.plot(xs, med, "o-", label=f"{impl} ({key.split(f'{mode}-', 1)[-1]})")
            ax.fill_between(xs, [m - h for m, h in zip(med, half, strict=True)],
                            [m + h for m, h in zip(med, half, strict=True)], alpha=0.25)
        ax.set_xticks(range(len(runs)), [r.commit[:7] for r in runs], rotation=45)
        ax.set(xlabel="run (commit)", ylabel="median time per call (ms)",
               title=f"{entry} {mode} {dtype}: trend ({runs[-1].device_key})")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        path = out / f"trend_{entry}_{mode}_{dtype}.png".replace("+", "")
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    return written


def _size(info: dict) -> int:
    return info["B"] * info["T"] * info["D"]
