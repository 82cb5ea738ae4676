"""What the app costs a run it shows: tokens/s of the same training alone, then with
`mixology app` serving it to a headless Chromium on the Live page (redrawn every 2 s).

    python perf/lab/app_overhead.py [--steps 300] [--repeats 2] [--chromium /usr/bin/chromium]

Each training is `mixology train` in its own process, as the app starts it; tokens/s is the
median over its steps after the first 20. Alone and watched alternate, `--repeats` times,
and the overhead is the median over the pairs, so that a drift of the machine between pairs
(larger than the effect on a shared 2-core machine) cancels. Prints one line per run.

Because that drift is larger than the effect, each watched run also counts the CPU time the
app's processes (the Streamlit server and Chromium, from /proc) took while the run trained:
their share of the machine's cores over the run's wall time bounds what they can take from
it, and does not drift with the machine's speed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {"n_layers": 2, "d_model": 64, "n_heads": 4, "eval_every": 50, "eval_windows": 50,
            "eval_all": False, "sample_tokens": 0}


def _train(folder: Path, steps: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mixology", "train", "--out", str(folder),
           "--set", f"steps={steps}"]
    for k, v in SETTINGS.items():
        cmd += ["--set", f"{k}={str(v).lower()}"]
    folder.mkdir(parents=True)
    (folder / "command.json").write_text(json.dumps(
        {"preset": "shakespeare-char-cpu", "settings": {**SETTINGS, "steps": steps}}))
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def _tokens_per_s(folder: Path) -> float:
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(r["tokens_per_s"] for r in rows[20:])


def _app_cpu_s(server: int) -> dict[int, float]:
    """CPU seconds (user + system, reaped children's included) of each process of the app:
    the server's session (Streamlit and what it starts) and every Chromium process."""
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            # the fields after the command's ")": [0] is field 3 (state), [3] the session,
            # [11:15] utime, stime, cutime, cstime (fields 14 to 17)
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (d / "cmdline").read_bytes().split(b"\0")[0]
        except (OSError, IndexError):
            continue
        if int(fields[3]) == server or b"chromium" in cmd:
            found[int(d.name)] = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return found


def _watched(folder: Path, steps: int, runs_dir: Path, chromium: str) -> tuple[float, float]:
    """tokens/s of the run watched on the Live page, and the app's CPU share (%) of the
    machine's cores during it."""
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "mixology", "app", "--runs", str(runs_dir),
                               "--port", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        for _ in range(180):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}")
            page.get_by_text("model settings").wait_for(timeout=60_000)
            before, start = _app_cpu_s(server.pid), time.perf_counter()
            proc = _train(folder, steps)
            page.get_by_text("Live", exact=True).click()
            after = before
            while proc.poll() is None:  # the page keeps redrawing the run's charts
                page.wait_for_timeout(1000)
                after = _app_cpu_s(server.pid)  # read while the processes still exist
            wall = time.perf_counter() - start
            browser.close()
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    used = sum(t - before.get(pid, 0.0) for pid, t in after.items())
    return _tokens_per_s(folder), 100 * used / (wall * os.cpu_count())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = ap.parse_args()
    alone, watched, app_cpu = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            folder = Path(tmp) / "alone" / f"r{i}"
            proc = _train(folder, args.steps)
            proc.wait()
            alone.append(_tokens_per_s(folder))
            print(f"alone    {alone[-1]:,.0f} tokens/s", flush=True)
            runs_dir = Path(tmp) / "watched"
            tps, share = _watched(runs_dir / f"r{i}", args.steps, runs_dir, args.chromium)
            watched.append(tps)
            app_cpu.append(share)
            print(f"watched  {tps:,.0f} tokens/s; the app's processes took {share:.1f}% of "
                  f"the {os.cpu_count()} cores meanwhile", flush=True)
    pairs = [100 * (1 - w / a) for a, w in zip(alone, watched, strict=True)]
    print(f"the app costs the run {statistics.median(pairs):.1f}% of its tokens/s: the median "
          f"over {args.repeats} pairs (alone, then watched) of {args.steps} steps; each pair "
          f"{', '.join(f'{p:.1f}%' for p in pairs)}; alone {min(alone):,.0f} to "
          f"{max(alone):,.0f} tokens/s")
    print(f"the app's processes took {statistics.median(app_cpu):.1f}% of the machine's CPU "
          f"while it watched (median; each {', '.join(f'{c:.1f}%' for c in app_cpu)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
