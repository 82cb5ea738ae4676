"""The lab's app, page by page, in Streamlit's headless harness (AppTest): set widgets, start a
tiny run, watch its curve grow, stop and resume it, refuse a bad config, generate, look
inside, compare runs and a grid."""

import json
import os
import time
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
pa = pytest.importorskip("pyarrow")
from streamlit.testing.v1 import AppTest  # noqa: E402

from mixology.lab import runs  # noqa: E402

APP = str(Path(__file__).resolve().parents[2] / "mixology" / "lab" / "app.py")
TINY = {"n_layers": 1, "d_model": 16, "n_heads": 2, "ff_mult": 1, "context": 16,
        "batch_size": 4, "eval_windows": 4, "eval_all": False, "sample_tokens": 0}
P = "shakespeare-char-cpu"


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXOLOGY_APP_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("MIXOLOGY_CACHE", os.environ.get("MIXOLOGY_CACHE") or str(tmp_path))
    return tmp_path / "runs"


def _app(page: str = "Train") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    if page != "Train":
        at.sidebar.radio(key="page").set_value(page).run()
    assert not at.exception, at.exception
    return at


def _wait(folder: Path, until, timeout: float = 120.0) -> None:
    start = time.time()
    while not until():
        assert time.time() - start < timeout, (runs.status(folder), runs.log_tail(folder, 20))
        time.sleep(0.3)


def _chart_rows(at: AppTest, i: int = 0) -> int:
    """Rows of the i-th chart's data (every series' points)."""
    proto = at.get("vega_lite_chart")[i].proto
    return sum(pa.ipc.open_stream(d.data.data).read_all().num_rows for d in proto.datasets)


def test_train_page_has_a_control_for_every_setting_and_starts_a_run(root):
    at = _app()
    from mixology.lab import settings

    for key in settings.SETTINGS:
        if key != "vocab_size":
            assert at.get(_kind(settings.SETTINGS[key]))  # the page draws that kind
            assert any(w.key == f"{P}:{key}" for w in at.get(_kind(settings.SETTINGS[key]))), key
    for key, value in {**TINY, "steps": 300, "eval_every": 20}.items():
        _set(at, key, value)
    at.text_input(key="run_name").set_value("live")
    at.button(key="start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    folder = root / "live"
    assert json.loads((folder / "command.json").read_text())["settings"]["steps"] == 300

    live = _app("Live")
    assert live.metric[0].value == "running"
    _wait(folder, lambda: len(runs.metrics(folder)) >= 3)
    live.run()
    first, seen = _chart_rows(live), len(runs.metrics(folder))
    _wait(folder, lambda: len(runs.metrics(folder)) >= seen + 5)
    live.run()
    assert _chart_rows(live) > first  # the loss curve grew while it trained
    live.button(key="stop").click().run()
    _wait(folder, lambda: runs.status(folder) == "stopped")
    stopped_at = runs.metrics(folder)[-1]["step"]
    assert 0 < stopped_at < 300 and (folder / "last.pt").exists()
    live.run()
    assert live.metric[0].value == "stopped"
    live.button(key="resume").click().run()
    assert runs.status(folder) == "running"
    runs.stop(folder)
    _wait(folder, lambda: runs.status(folder) == "stopped")
    steps = [r["step"] for r in runs.metrics(folder)]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) > stopped_at  # went on


def _kind(s) -> str:
    if s.values:
        return "selectbox"
    return {bool: "checkbox", int: "number_input", float: "number_input"}.get(s.type,
                                                                              "text_input")


def _set(at: AppTest, key: str, value) -> None:
    from mixology.lab import settings

    getattr(at, _kind(settings.SETTINGS[key]))(key=f"{P}:{key}").set_value(value)


def test_a_bad_config_is_refused_with_the_checks_own_message(root):
    at = _app()
    _set(at, "d_model", 32)
    _set(at, "n_heads", 3)
    at.button(key="start").click().run()
    assert [e.value for e in at.error] == ["n_heads: 3 does not divide d_model 32"]
    assert not root.exists() or not list(root.iterdir())  # nothing started


def test_import_and_export_a_config(root):
    at = _app()
    at.text_area(key="import_json").set_value(json.dumps({"norm": "rms", "n_layers": 2}))
    at.button(key="import").click().run()
    assert at.selectbox(key=f"{P}:norm").value == "rms"
    assert at.number_input(key=f"{P}:n_layers").value == 2
    exported = at.get("download_button")[0]
    assert exported is not None
    at.text_area(key="import_json").set_value(json.dumps({"norm": "batch"}))
    at.button(key="import").click().run()
    assert [e.value for e in at.error] == ["norm: unknown value 'batch'; known: layer, rms, none"]


@pytest.fixture
def two_runs(root):
    """Two tiny runs trained at once, differing in their norm and position encoding."""
    a = runs.start(root / "a", {**TINY, "steps": 8, "eval_every": 4}, P)
    b = runs.start(root / "b", {**TINY, "steps": 8, "eval_every": 4, "norm": "rms",
                                "positional": "rope"}, P)
    for f in (a, b):
        _wait(f, lambda f=f: runs.status(f) == "finished")
    return a, b


def test_generate_look_inside_and_compare_runs(two_runs):
    at = _app("Generate")
    at.slider(key="temperature").set_value(0.5)
    at.number_input(key="gen_tokens").set_value(30)
    at.button(key="generate").click().run()
    assert not at.exception and at.code[0].value.startswith("ROMEO:")
    assert len(at.code[0].value) == len("ROMEO:") + 30

    inside = _app("Look inside")
    assert inside.get("image")  # the attention heatmap
    assert len(inside.dataframe[0].value) == 2  # Q·K statistics, one row a head
    inside.selectbox(key="inside_head").set_value(1).run()
    assert not inside.exception
    prompt = min(len(inside.text_input(key="prompt").value), TINY["context"])
    inside.selectbox(key="inside_choice").set_value("b").run()  # RoPE: near and far curves
    assert not inside.exception and _chart_rows(inside) == 2 * prompt

    ex = _app("Experiments")
    table = ex.dataframe[0].value
    assert set(table.index) == {"a", "b"} and set(table["status"]) == {"finished"}
    ex.multiselect(key="compare_runs").set_value(["a", "b"]).run()
    assert not ex.exception
    assert _chart_rows(ex) == 4  # two evaluations of two runs
    diff = ex.dataframe[1].value
    assert list(diff.index) == ["norm", "positional"]
    assert list(diff.loc["norm"]) == ["layer", "rms"]


def test_a_compare_grid_runs_and_shows_its_table(root):
    at = _app("Experiments")
    at.text_input(key="grid").set_value("norm=layer,rms")
    at.number_input(key="grid_seeds").set_value(1)
    shared = "; ".join(f"{k}={v}" for k, v in {**TINY, "steps": 4, "eval_every": 2}.items())
    at.text_input(key="grid_shared").set_value(shared)
    at.button(key="grid_start").click().run()
    assert not at.error, [e.value for e in at.error]
    _wait(root / "compare_1", lambda: (root / "compare_1" / "compare.json").exists(), 240)
    at.run()
    assert "norm=rms" in at.code[0].value and "norm=layer" in at.code[0].value
    at.text_input(key="grid").set_value("norm=batch")
    at.button(key="grid_start").click().run()
    assert [e.value for e in at.error] == ["norm: unknown value 'batch'; known: layer, rms, none"]


def test_app_command_misuse_is_one_line_and_exit_2(capsys):
    from mixology.cli import main

    assert main(["app", "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert err == "mixology app: error: --port: expected 1..65535, got 70000\n"
