"""The lab in the browser: ``mixology app [--runs DIR] [--port N]`` serves this Streamlit script.

Pages (the sidebar): Train (every setting, start / stop / resume, import and export a config),
Live (the running experiment's curves, updating while it trains; activation histograms with
a step slider), Look inside (attention heatmaps, per-token loss, Q·K statistics, score
against distance, circuits of attention-only models), Generate (temperature, top-k) and
Experiments (every run, curves side by side, a config diff, a compare grid x seeds).

Training runs in processes of its own (mixology.lab.runs); the page only reads the run
folders under ``$MIXOLOGY_APP_RUNS`` (default ``runs``), so a closed tab or a restarted app
loses nothing.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import streamlit as st
import torch

from mixology.cli.common import parse_value
from mixology.lab import circuits, compare, report, runs, settings, tracing
from mixology.lab.model import PRESETS
from mixology.lab.train import load_run, sample_text

RUNS = Path(os.environ.get("MIXOLOGY_APP_RUNS") or "runs")
PAGES = ("Train", "Live", "Look inside", "Generate", "Experiments")
REFRESH_S = 2.0  # how often a live run's charts are redrawn
LIVE = ("running", "new")  # the statuses redrawn so ("new": its pid is not written yet)
HIDDEN = ("vocab_size",)  # set by the tokenizer


def main() -> None:
    st.set_page_config(page_title="mixology lab", layout="wide")
    st.sidebar.title("mixology lab")
    page = st.sidebar.radio("Page", PAGES, key="page")
    st.sidebar.caption(f"runs: {RUNS.resolve()}")
    {"Train": train_page, "Live": live_page, "Look inside": inside_page,
     "Generate": generate_page, "Experiments": experiments_page}[page]()


# --- Train --------------------------------------------------------------------------------

def _defaults(preset_name: str) -> dict:
    model_cfg, train_cfg = runs.configs(preset_name, {})
    return {**model_cfg.to_dict(), **vars(train_cfg)}


def _widget(s: settings.Setting, default, key: str):
    """The control of one setting, starting at the preset's value (or at an imported one,
    already in the session state under ``key``)."""
    if key not in st.session_state:
        st.session_state[key] = "" if s.type is str and default is None else default
    if s.values:
        return st.selectbox(s.key, s.values, key=key, help=s.help)
    if s.type is bool:
        return st.checkbox(s.key, key=key, help=s.help)
    if s.type is int:
        return int(st.number_input(s.key, step=1, key=key, help=s.help))
    if s.type is float:
        return float(st.number_input(s.key, format="%g", key=key, help=s.help))
    return st.text_input(s.key, key=key, help=s.help) or None


def _import_config(preset_name: str) -> None:
    """The pasted JSON's settings into the page's controls (before they are drawn)."""
    raw = st.session_state.get("import_json", "").strip()
    if not raw:
        return
    try:
        chosen = json.loads(raw)
        if not isinstance(chosen, dict):
            raise ValueError("config: expected a JSON object of settings")
        chosen = {k: settings.check(k, v) for k, v in chosen.items()}
    except ValueError as e:  # json.JSONDecodeError is one
        st.session_state["import_error"] = str(e)
        return
    for key, value in chosen.items():
        st.session_state[f"{preset_name}:{key}"] = "" if value is None else value
    st.session_state["import_error"] = None


def train_page() -> None:
    st.header("Train")
    preset_name = st.selectbox("preset", list(PRESETS), index=list(PRESETS).index(
        "shakespeare-char-cpu"), key="preset")
    defaults = _defaults(preset_name)
    with st.expander("Import or export a config (JSON)"):
        st.text_area("paste a config's JSON: {\"norm\": \"rms\", ...}", key="import_json")
        st.button("import", on_click=_import_config, args=(preset_name,), key="import")
        if st.session_state.get("import_error"):
            st.error(st.session_state["import_error"])
    chosen = {}
    for config, columns in (("model", 4), ("train", 4)):
        st.subheader(f"{config} settings")
        cols = st.columns(columns)
        items = [s for s in settings.SETTINGS.values() if s.config == config
                 and s.key not in HIDDEN]
        for i, s in enumerate(items):
            with cols[i % columns]:
                chosen[s.key] = _widget(s, defaults[s.key], f"{preset_name}:{s.key}")
    changed = {k: v for k, v in chosen.items() if v != defaults[k]}
    st.download_button("export this config (JSON)", json.dumps(changed, indent=2),
                       file_name="config.json", key="export")
    name = st.text_input("run name", value=_name(changed), key="run_name")
    if st.button("Start", type="primary", key="start"):
        try:
            folder = runs.start(RUNS / name, changed, preset_name)
        except ValueError as e:
            st.error(str(e))
        else:
            st.success(f"started {folder.name}: see Live")
            st.session_state["live_run"] = str(folder)


def _name(changed: dict) -> str:
    """A free run name from the first settings that differ from the preset."""
    parts = [f"{k}-{v}" for k, v in changed.items() if k not in ("steps", "text")][:3]
    return _free("_".join(parts) or "default")


def _free(base: str) -> str:
    n = 1
    while (RUNS / f"{base}_{n}").exists():
        n += 1
    return f"{base}_{n}"


# --- Live ---------------------------------------------------------------------------------

def _choose_run(label: str, key: str, need: str | None = None) -> Path | None:
    found = [p for p in runs.list_runs(RUNS) if need is None or (p / need).exists()]
    if not found:
        st.info(f"no runs under {RUNS} yet" + (f" with {need}" if need else ""))
        return None
    names = [str(p.relative_to(RUNS)) for p in found]
    current = st.session_state.get("live_run")
    index = names.index(str(Path(current).relative_to(RUNS))) if current and Path(
        current) in found else 0
    return RUNS / st.selectbox(label, names, index=index, key=key)


def live_page() -> None:
    st.header("Live")
    folder = _choose_run("run", "live_choice")
    if folder is None:
        return
    state = runs.status(folder)
    cols = st.columns(4)
    cols[0].metric("status", state)
    if cols[1].button("Stop", disabled=state != "running", key="stop"):
        runs.stop(folder)
        st.toast(f"stopping {folder.name} at its next step")
    if cols[2].button("Resume", disabled=state not in ("stopped", "failed"), key="resume"):
        try:
            runs.resume(folder)
            state = "running"
        except ValueError as e:
            st.error(str(e))
    if state in LIVE:
        refreshing_charts(folder)
    else:  # a finished, stopped or failed run is drawn once, not every REFRESH_S
        live_charts(folder)


@st.fragment(run_every=REFRESH_S)
def refreshing_charts(folder: Path) -> None:
    """The live charts, redrawn every REFRESH_S while the run goes; when it ends, the whole
    page reruns once, to its final charts and buttons, and the redrawing stops."""
    if live_charts(folder) not in LIVE:
        st.rerun()


def live_charts(folder: Path) -> str:
    """The run's curves, per-layer statistics and histograms; returns the run's status."""
    rows, layer_rows = runs.metrics(folder), runs.stats(folder)
    state = runs.status(folder)
    st.caption(f"{state}: {len(rows)} step(s); {runs.log_tail(folder, 1)}")
    if not rows:
        return state
    m = pd.DataFrame(rows).set_index("step")
    st.subheader("Loss")
    losses = m[[c for c in ("train_loss", "val_loss", "eval_train_loss") if c in m]]
    # the evaluations' points joined by lines (they are every eval_every steps)
    st.line_chart(losses.interpolate(limit_area="inside"))
    c1, c2 = st.columns(2)
    c1.caption("learning rate")
    c1.line_chart(m[["lr"]])
    c2.caption(f"gradient norm (clipped at {m['clipped'].mean():.0%} of steps)")
    c2.line_chart(m[["grad_norm"]])
    if not layer_rows:
        return state
    st.subheader("Per layer, at each evaluation")
    steps = [r["step"] for r in layer_rows]
    per = {}
    for r in layer_rows:
        for i, layer in enumerate(r["layers"]):
            for stat in ("resid_rms", "mix_rms", "ffn_rms", "grad_rms"):
                if layer.get(stat) is not None:
                    per.setdefault(stat, {}).setdefault(f"L{i}", []).append(layer[stat])
    c1, c2, c3 = st.columns(3)
    for col, stat, title in ((c1, "resid_rms", "residual stream RMS"),
                             (c2, "mix_rms", "token-mixer output RMS"),
                             (c3, "grad_rms", "gradient RMS (gradient flow)")):
        if stat in per:
            col.caption(title)
            col.line_chart(pd.DataFrame(per[stat], index=steps[:len(next(iter(
                per[stat].values())))]))
    ent = {f"L{i}H{h}": [r["layers"][i]["entropy"][h] for r in layer_rows]
           for i, layer in enumerate(layer_rows[-1]["layers"]) if layer.get("entropy")
           for h in range(len(layer["entropy"]))}
    if ent:
        st.caption("attention entropy per head (nats)")
        st.line_chart(pd.DataFrame(ent, index=steps))
    histograms(layer_rows)
    return state


def histograms(layer_rows: list[dict]) -> None:
    with_hist = [r for r in layer_rows if r["layers"] and r["layers"][0].get("hist")]
    if not with_hist:
        return
    st.subheader("Activation distributions")
    steps = [r["step"] for r in with_hist]
    step = (st.select_slider("evaluation step", steps, value=steps[-1], key="hist_step")
            if len(steps) > 1 else steps[0])
    row = with_hist[steps.index(step)]
    cols = st.columns(len(row["layers"]))
    for i, (col, layer) in enumerate(zip(cols, row["layers"], strict=True)):
        for part in ("mix", "ffn", "out"):
            h = layer["hist"].get(part)
            if h is None:
                continue
            width = (h["hi"] - h["lo"]) / len(h["counts"])
            centers = [round(h["lo"] + (j + 0.5) * width, 3) for j in range(len(h["counts"]))]
            col.caption(f"L{i} {part}")
            col.bar_chart(pd.DataFrame({"count": h["counts"]}, index=centers))


# --- Look inside --------------------------------------------------------------------------

@st.cache_resource(max_entries=4)
def _model(path: str, mtime: float):
    model, tok = load_run(path)
    model.eval()
    return model, tok


def _load(folder: Path):
    return _model(str(folder), (folder / "best.pt").stat().st_mtime)


def _trained(title: str, key: str):
    """The page's header and its run chooser over runs with a best checkpoint: (model,
    tokenizer) of the chosen one, or None."""
    st.header(title)
    folder = _choose_run("run", key, need="best.pt")
    return None if folder is None else _load(folder)


def inside_page() -> None:
    if (loaded := _trained("Look inside", "inside_choice")) is None:
        return
    model, tok = loaded
    c = model.config
    prompt = st.text_input("prompt", value="ROMEO:\nWhat say you", key="prompt")
    idx = tok.encode(prompt or "\n")[None, -c.context:]
    with torch.no_grad():
        layers, _ = tracing.trace(model, idx)
    pieces = [report.token_label(tok.decode([i])) for i in idx[0]]
    col1, col2 = st.columns(2)
    layer = col1.selectbox("layer", range(c.n_layers), key="inside_layer")
    head = col2.selectbox("head", range(c.n_heads), key="inside_head")
    t = layers[layer]
    if t["pattern"] is not None:
        st.subheader(f"Attention, layer {layer} head {head}")
        fig = _heatmap(t["pattern"][0, head].float(), pieces)
        st.pyplot(fig)
    else:
        st.info(f"{c.mixer} keeps no attention pattern to draw")
    st.subheader("Per-token loss (red: 4 nats or more)")
    if len(idx[0]) > 1:
        st.html(report.loss_text_html(report.token_losses(model, tok, idx[0])))
    if t["qk"] is not None:
        q, k = t["qk"]
        st.subheader(f"Q·K statistics, layer {layer}")
        st.dataframe(pd.DataFrame(tracing.qk_stats(q, k)).rename_axis("head"))
        st.caption(f"mean |q·k|/√d against distance ({c.positional} positions)")
        curves = {"positions 0..T": tracing.score_by_distance(q, k)}
        if c.positional == "rope":  # the same prompt far past the context: the same scores
            far = 100 * c.context
            curves[f"positions {far}..{far}+T"] = tracing.score_by_distance(
                tracing.rope_shifted(q, far), tracing.rope_shifted(k, far))
        st.line_chart(pd.DataFrame(curves))
    if circuits.is_attention_only(c) and c.n_layers <= 2:
        st.subheader("Circuits: the path expansion's share per path")
        paths = circuits.path_expansion(model, idx)
        norms = {name: float(p.double().norm()) for name, p in paths.items()}
        total = sum(norms.values())
        st.bar_chart(pd.Series({k: v / total for k, v in norms.items()}, name="share"))
        qk = circuits.qk_circuit(model, layer, head).full().float()
        ov = circuits.ov_circuit(model, layer, head).full().float()
        labels = [report.token_label(p) for p in tok.pieces]
        if len(labels) <= 128:
            c1, c2 = st.columns(2)
            c1.caption("QK circuit (query x key)")
            c1.pyplot(_heatmap(qk, labels))
            c2.caption("OV circuit (source x output)")
            c2.pyplot(_heatmap(ov, labels))


def _heatmap(a: torch.Tensor, labels: list[str]):
    plt = report.pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(a.detach().cpu().numpy(), cmap="viridis")
    if len(labels) <= 80:
        ax.set_xticks(range(len(labels)), labels, fontsize=5)
        ax.set_yticks(range(len(labels)), labels, fontsize=5)
    fig.tight_layout()
    return fig


# --- Generate -----------------------------------------------------------------------------

def generate_page() -> None:
    if (loaded := _trained("Generate", "gen_choice")) is None:
        return
    model, tok = loaded
    prompt = st.text_area("prompt", value="ROMEO:", key="gen_prompt")
    c1, c2, c3, c4 = st.columns(4)
    temperature = c1.slider("temperature", 0.05, 2.0, 0.8, 0.05, key="temperature")
    top_k = c2.slider("top-k", 1, tok.vocab_size, min(200, tok.vocab_size), key="top_k")
    tokens = c3.number_input("tokens", 1, 2000, 200, key="gen_tokens")
    seed = c4.number_input("seed", 0, 2 ** 31 - 1, 0, key="gen_seed")
    if st.button("Generate", type="primary", key="generate"):
        text = sample_text(model, tok, prompt, int(tokens), temperature=temperature,
                           top_k=top_k, seed=int(seed))
        st.session_state["generated"] = text
    if st.session_state.get("generated"):
        st.code(st.session_state["generated"], language=None)


# --- Experiments --------------------------------------------------------------------------

def experiments_page() -> None:
    st.header("Experiments")
    found = runs.list_runs(RUNS)
    if not found:
        st.info(f"no runs under {RUNS} yet")
    rows = []
    for p in found:
        m = runs.metrics(p)
        vals = [r["val_loss"] for r in m if "val_loss" in r]
        rows.append({"run": str(p.relative_to(RUNS)), "status": runs.status(p),
                     "step": m[-1]["step"] if m else 0,
                     "best val": min(vals) if vals else math.nan})
    if rows:
        st.dataframe(pd.DataFrame(rows).set_index("run"))
        chosen = st.multiselect("compare runs", [r["run"] for r in rows], key="compare_runs")
        if chosen:
            side_by_side([RUNS / c for c in chosen])
    grid_form()


def side_by_side(folders: list[Path]) -> None:
    curves = {}
    for f in folders:
        m = [r for r in runs.metrics(f) if "val_loss" in r]
        curves[f.name if len(set(x.name for x in folders)) == len(folders) else str(f)] = (
            pd.Series([r["val_loss"] for r in m], index=[r["step"] for r in m]))
    st.caption("validation loss")
    st.line_chart(pd.DataFrame(curves))
    configs = {str(f.relative_to(RUNS)): runs.config(f) for f in folders}
    keys = sorted({k for c in configs.values() for k in c})
    differ = [k for k in keys if len({json.dumps(c.get(k)) for c in configs.values()}) > 1]
    st.caption("settings that differ")
    st.dataframe(pd.DataFrame({name: {k: str(c.get(k)) for k in differ}
                               for name, c in configs.items()}))


def grid_form() -> None:
    st.subheader("Compare a grid x seeds")
    c1, c2, c3 = st.columns(3)
    preset_name = c1.selectbox("preset", list(PRESETS), key="grid_preset",
                               index=list(PRESETS).index("shakespeare-char-cpu"))
    grid = c2.text_input("grid (key=v1,v2; ...)", value="norm=layer,rms", key="grid")
    seeds = c3.number_input("seeds", 1, 10, 2, key="grid_seeds")
    shared = st.text_input("shared settings (key=value; ...)", value="steps=200",
                           key="grid_shared")
    name = st.text_input("compare name", value=_free("compare"), key="grid_name")
    out = RUNS / name
    if st.button("Start the grid", key="grid_start"):
        try:
            args = _compare_args(grid, shared)
        except ValueError as e:
            st.error(str(e))
        else:
            out.mkdir(parents=True, exist_ok=True)
            with open(out / "compare.log", "a") as log:
                subprocess.Popen([sys.executable, "-m", "mixology", "compare", "--preset",
                                  preset_name, "--seeds", str(int(seeds)), "--out", str(out),
                                  *args], stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
            st.success(f"started {name}: its runs appear above as they start")
    result = out / "compare.json"
    if result.exists():
        st.caption(f"{name}: final validation loss, mean ± std over seeds, Welch's t-test "
                   "against the first config")
        st.code(compare.table(json.loads(result.read_text())), language=None)


def _compare_args(grid: str, shared: str) -> list[str]:
    """``--grid`` and ``--set`` arguments of the form's text, each value checked."""
    args = []
    for flag, text in (("--grid", grid), ("--set", shared)):
        for item in filter(None, (i.strip() for i in text.split(";"))):
            key, sep, values = item.partition("=")
            if not sep:
                raise ValueError(f"{flag}: expected key=value, got {item!r}")
            for v in values.split(","):
                settings.check(key.strip(), parse_value(v.strip()))
            args += [flag, f"{key.strip()}={values.strip()}"]
    if not any(a == "--grid" for a in args):
        raise ValueError("grid: at least one key=v1,v2")
    return args


main()
