"""Reading benchmark history, and the regression gate.

History lives in ``perf/history/<device_key>/<machine>/NNNN_<commit>_<date>.json`` (the
pytest-benchmark autosave format, one folder per device, so CPU numbers are never compared
with GPU numbers). A run's entries carry the per-call figures in ``extra_info``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path


def point_key(info: dict) -> str:
    return (f"{info['entry']}-{info['impl']}-{info['mode']}-{info['sweep']}sweep-"
            f"B{info['B']}-T{info['T']}-D{info['D']}-{info['dtype']}")


@dataclass
class Run:
    path: Path
    commit: str
    dirty: bool
    datetime: str
    device_key: str
    results: dict[str, dict] = field(default_factory=dict)  # point key -> info (+ rel_iqr)

    @property
    def versions(self) -> str:
        """torch / triton / machine the run was taken with (recorded since they were)."""
        info = next(iter(self.results.values()), {})
        return (f"torch {info.get('torch', '?')}, triton {info.get('triton', '?')}, "
                f"{info.get('machine', '?')}")

    def matches(self, ref: str) -> bool:
        """Whether ``ref`` names this run: a commit prefix, a file name or a path."""
        return (self.commit.startswith(ref) or self.path.name == ref
                or str(self.path) == ref or self.path.name.startswith(ref))


def load_runs(root: str | Path) -> dict[str, list[Run]]:
    """Runs per device key, oldest first."""
    runs: dict[str, list[Run]] = defaultdict(list)
    for path in sorted(Path(root).glob("**/*.json")):
        data = json.loads(path.read_text())
        results = {}
        for b in data.get("benchmarks", []):
            info = dict(b.get("extra_info") or {})
            if "entry" not in info:
                continue
            stats = b.get("stats", {})
            info["rel_iqr"] = stats.get("iqr", 0) / stats["median"] if stats.get("median") else 0
            if stats.get("min"):  # the fastest round, per call: the least disturbed one
                info["min_s"] = stats["min"] / info.get("calls_per_round", 1)
            results[point_key(info)] = info
        if not results:
            continue
        key = next(iter(results.values()))["device_key"]
        ci = data.get("commit_info", {})
        runs[key].append(Run(path, ci.get("id", "?")[:10], bool(ci.get("dirty")),
                             data.get("datetime", ""), key, results))
    for key in runs:
        runs[key] = _merge_sessions(sorted(runs[key], key=lambda r: (r.path.name.split("_")[0],
                                                                      r.datetime)))
    return dict(runs)


def _session(run: Run) -> str:
    return next(iter(run.results.values())).get("session", "")


def _merge_sessions(runs: list[Run]) -> list[Run]:
    """Runs saved by the parts of one sweep (perf/run_gpu.sh full 1..4: a GPU rationed in
    10-minute commands) share a MIXOLOGY_BENCH_SESSION: they are one run, in order."""
    merged: list[Run] = []
    for run in runs:
        last = merged[-1] if merged else None
        if last is not None and _session(run) and _session(run) == _session(last):
            merged[-1] = Run(run.path, run.commit, last.dirty or run.dirty, run.datetime,
                             run.device_key, {**last.results, **run.results})
        else:
            merged.append(run)
    return merged


@dataclass
class Row:
    key: str
    latest: float
    previous: float | None
    best: float
    change_pct: float | None
    noise_pct: float
    limit_pct: float
    spread_pct: float = 0.0  # the wider IQR/median of the two runs compared, in %
    threshold_pct: float = 10.0
    min_change_pct: float | None = None  # change of the fastest round (None: not recorded)
    noise_known: bool = True  # whether the history held enough run-to-run changes

    @property
    def flagged(self) -> bool:
        return self.verdict == "SLOWER"

    @property
    def verdict(self) -> str:
        """Of a change past the threshold: "SLOWER" when it is beyond the limit (3 x the
        run-to-run noise), beyond twice the runs' own spread, and the fastest round is slower
        past the threshold too (slower code slows every round; a busier machine slows some);
        "noisy" (too noisy to judge) when it fails one of those; "unconfirmed" when the
        history does not yet hold MIN_CHANGES run-to-run changes of this benchmark, so this
        machine's process-to-process noise is unknown. "" for no change past the threshold."""
        if self.change_pct is None or self.change_pct <= self.threshold_pct:
            return ""
        if not self.noise_known:
            return "unconfirmed"
        if (self.change_pct > self.limit_pct and self.change_pct > 2 * self.spread_pct
                and (self.min_change_pct is None or self.min_change_pct > self.threshold_pct)):
            return "SLOWER"
        return "noisy"


# Run-to-run changes a benchmark's history must hold before a change fails the gate. The
# rounds of one run cannot show process-to-process noise: on the 2-core CI machine the same
# layer_norm forward (D=128) ran at 0.094 or 0.111 ms per call in six processes, fastest
# rounds and all, while each run's rounds spread by 3-7%.
MIN_CHANGES = 2


def _changes(key: str, runs: list[Run]) -> list[float]:
    """|run-to-run change| of a benchmark's median over consecutive runs holding it, in %."""
    med = [r.results[key]["median_s"] for r in runs if key in r.results]
    return [abs(b / a - 1) * 100 for a, b in zip(med, med[1:], strict=False)]


def _min_change(head: dict, base: dict | None) -> float | None:
    """The change of the fastest round, in % (None where either run did not record it)."""
    if base is None or not head.get("min_s") or not base.get("min_s"):
        return None
    return (head["min_s"] / base["min_s"] - 1) * 100


def _row(key: str, head: dict, base: dict | None, best: float, history: list[Run],
         threshold_pct: float, noise_k: float) -> Row:
    changes = _changes(key, history)
    noise = (sorted(changes)[len(changes) // 2] if changes
             else 100 * head.get("rel_iqr", 0.0))
    spread = 100 * max(head.get("rel_iqr", 0.0), base.get("rel_iqr", 0.0) if base else 0.0)
    change = None if base is None else (head["median_s"] / base["median_s"] - 1) * 100
    return Row(key, head["median_s"], base["median_s"] if base else None, best, change, noise,
               max(threshold_pct, noise_k * noise), spread, threshold_pct,
               _min_change(head, base), len(changes) >= MIN_CHANGES)


def compare(runs: list[Run], threshold_pct: float = 10.0, noise_k: float = 3.0) -> list[Row]:
    """Latest run vs the previous and the best, per benchmark.

    Noise-aware: a benchmark's noise is the median run-to-run change of its median over the
    earlier history. A slowdown is flagged when it exceeds max(threshold, noise_k x noise)
    and twice the wider spread of the rounds of the two runs compared, and the fastest round
    also moved past the threshold; a change past the threshold that does not is "too noisy
    to judge", and one judged before the history holds MIN_CHANGES run-to-run changes is
    "unconfirmed" (reported, never gating).
    """
    latest, earlier = runs[-1], runs[:-1]
    rows = []
    for key, info in latest.results.items():
        prev = [r.results[key] for r in earlier if key in r.results]
        best = min([p["median_s"] for p in prev] + [info["median_s"]])
        rows.append(_row(key, info, prev[-1] if prev else None, best, earlier, threshold_pct,
                         noise_k))
    return rows


def compare_two(base: Run, head: Run, threshold_pct: float = 10.0, noise_k: float = 3.0,
                history: list[Run] | None = None) -> list[Row]:
    """Two chosen runs, benchmark by benchmark (those in both): head vs base, judged as
    ``compare`` judges, the run-to-run noise taken from ``history`` (the device's runs before
    head, base included)."""
    history = [r for r in (history or [base]) if r.datetime <= head.datetime and r is not head]
    return [_row(key, info, base.results[key], min(info["median_s"],
                                                   base.results[key]["median_s"]),
                 history, threshold_pct, noise_k)
            for key, info in head.results.items() if key in base.results]


def find_run(runs: dict[str, list[Run]], ref: str) -> Run:
    """The run a commit prefix, file name or path names (the latest if several match)."""
    found = [r for key_runs in runs.values() for r in key_runs if r.matches(ref)]
    if not found:
        raise ValueError(f"no run matches {ref!r} (a commit prefix, a history file name or path)")
    return sorted(found, key=lambda r: r.datetime)[-1]


def format_rows(rows: list[Row], only_flagged: bool = False) -> str:
    def ms(v):
        return "-" if v is None else f"{v * 1e3:10.4f}"

    out = [f"{'benchmark':<64} {'latest ms':>10} {'prev ms':>10} {'best ms':>10} "
           f"{'change':>8} {'limit':>7} {'spread':>7} {'fastest':>8}"]
    for r in rows:
        if only_flagged and not r.flagged:
            continue
        ch = "-" if r.change_pct is None else f"{r.change_pct:+7.1f}%"
        fast = "-" if r.min_change_pct is None else f"{r.min_change_pct:+7.1f}%"
        flag = {"SLOWER": "  SLOWER", "noisy": "  too noisy to judge",
                "unconfirmed": "  unconfirmed (run-to-run noise not yet known)"}.get(r.verdict, "")
        out.append(f"{r.key:<64} {ms(r.latest)} {ms(r.previous)} {ms(r.best)} {ch:>8} "
                   f"{r.limit_pct:6.1f}% {r.spread_pct:6.1f}% {fast:>8}{flag}")
    return "\n".join(out)
