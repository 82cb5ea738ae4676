"""The lab's app end to end in a real headless Chromium: `mixology app` served on localhost,
a tiny run started from the Train page, the Live page's chart updating while it trains, a
screenshot (docs/images/lab_app.png is one of these).

Needs Playwright (pip) and a Chromium binary (Debian's `chromium`; $MIXOLOGY_CHROMIUM names
another). Without them the test is skipped, unless $MIXOLOGY_REQUIRE_BROWSER=1 (tox and CI
set it), where it fails."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOT = os.environ.get("MIXOLOGY_SCREENSHOT")  # where to keep the screenshot, if anywhere


def _need(what: str):
    if os.environ.get("MIXOLOGY_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{what} missing, and MIXOLOGY_REQUIRE_BROWSER=1")
    pytest.skip(f"{what} missing")


def _chromium() -> str:
    path = os.environ.get("MIXOLOGY_CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")
    if not path:
        _need("a chromium binary")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float = 90.0) -> None:
    start = time.time()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        assert time.time() - start < timeout, f"no answer from {url}"
        time.sleep(0.5)


def _steps(page) -> int:
    """The step count the Live page's caption shows ("running: 12 step(s); ...")."""
    text = page.get_by_text(re.compile(r"^(running|finished|stopped): \d+ step")).first
    return int(re.search(r": (\d+) step", text.inner_text()).group(1))


def test_a_run_started_in_the_browser_updates_its_live_chart(tmp_path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("playwright")
    chromium = _chromium()
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "MIXOLOGY_CACHE": os.environ.get("MIXOLOGY_CACHE") or str(tmp_path / "cache")}
    server = subprocess.Popen([sys.executable, "-m", "mixology", "app", "--runs",
                               str(tmp_path / "runs"), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                              start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/_stcore/health")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}", wait_until="domcontentloaded")
            page.get_by_text("model settings").wait_for(timeout=60_000)
            for label, value in (("steps", 400), ("eval_every", 20), ("n_layers", 1),
                                 ("d_model", 32), ("n_heads", 2), ("batch_size", 8)):
                box = page.get_by_label(label, exact=True)
                box.fill(str(value))
                box.press("Enter")
                page.wait_for_timeout(300)
            name = page.get_by_label("run name", exact=True)
            name.fill("browser")
            name.press("Enter")
            page.get_by_role("button", name="Start").click()
            page.get_by_text("started browser").wait_for(timeout=30_000)
            page.get_by_text("Live", exact=True).click()
            page.get_by_text(re.compile(r"^running: \d+ step")).wait_for(timeout=60_000)
            page.locator("[data-testid='stVegaLiteChart']").first.wait_for(timeout=60_000)
            first = _steps(page)
            start = time.time()
            while _steps(page) < first + 20:  # the page redraws itself every 2 s
                assert time.time() - start < 120, "the live chart did not update"
                page.wait_for_timeout(500)
            assert (tmp_path / "runs" / "browser" / "metrics.jsonl").exists()
            page.wait_for_timeout(2500)  # one more redraw, with the evaluations in it
            shot = Path(SHOT) if SHOT else tmp_path / "lab_app.png"
            page.screenshot(path=str(shot), full_page=False)
            assert shot.stat().st_size > 20_000
            browser.close()
    finally:
        (tmp_path / "runs" / "browser" / "STOP").parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "runs" / "browser" / "STOP").write_text("")
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
