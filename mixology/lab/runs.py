"""Run folders as the app sees them: started, stopped and resumed as processes of their own,
found on disk again after a restart.

    folder = start(RUNS / "a", {"norm": "rms", "steps": 500})   # `mixology train` in its own process
    status(folder)     # "running" | "stopped" | "finished" | "failed" | "new"
    stop(folder)       # the trainer saves last.pt at its next step and exits
    resume(folder)     # the same command with --resume
    metrics(folder), stats(folder)   # what the trainer has written so far

A run started here is ``python -m mixology train --preset P --set k=v ... --out FOLDER``, its
output in ``FOLDER/train.log``, its process id in ``FOLDER/pid`` and its command in
``FOLDER/command.json``. A closed tab or a restarted app loses nothing: the state is the
folder's files and the process, never the app's memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mixology.lab import settings as settings_table
from mixology.lab.model import CausalLM, ModelConfig, check_config, preset
from mixology.lab.train import TRAIN_PRESETS, TrainConfig

STOP = "STOP"  # the file that asks a running trainer to save and exit


def configs(preset_name: str, chosen: dict) -> tuple[ModelConfig, TrainConfig]:
    """The model and training configs of a preset with ``chosen`` settings, each checked as
    ``mixology train`` checks them (ValueError with the check's own message)."""
    model_settings, train_settings = settings_table.split(chosen)
    model_cfg = preset(preset_name, **model_settings)
    check_config(model_cfg)
    CausalLM(model_cfg, device="meta")  # what only the blocks refuse (an activation, a norm)
    train_cfg = TrainConfig.from_dict({**TRAIN_PRESETS.get(preset_name, {}), **train_settings})
    return model_cfg, train_cfg


def _value(v) -> str:
    return "none" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


def command(folder: Path, preset_name: str, chosen: dict, resume: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "mixology", "train", "--preset", preset_name,
           "--out", str(folder)]
    for key, value in chosen.items():
        cmd += ["--set", f"{key}={_value(value)}"]
    return cmd + (["--resume"] if resume else [])


def start(folder: str | Path, chosen: dict, preset_name: str = "shakespeare-char-cpu") -> Path:
    """Train ``preset_name`` with ``chosen`` settings into ``folder`` in a new process."""
    folder = Path(folder)
    if (folder / "config.json").exists() or (folder / "command.json").exists():
        raise ValueError(f"name: a run {folder.name!r} exists already")
    configs(preset_name, chosen)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "command.json").write_text(json.dumps(
        {"preset": preset_name, "settings": chosen}, indent=2))
    _launch(folder, command(folder, preset_name, chosen))
    return folder


def resume(folder: str | Path) -> Path:
    folder = Path(folder)
    if status(folder) == "running":
        raise ValueError(f"run: {folder.name!r} is running")
    saved = json.loads((folder / "command.json").read_text())
    (folder / STOP).unlink(missing_ok=True)
    _launch(folder, command(folder, saved["preset"], saved["settings"],
                            resume=(folder / "last.pt").exists()))
    return folder


def _launch(folder: Path, cmd: list[str]) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(folder / "train.log", "a") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    (folder / "pid").write_text(str(proc.pid))


def stop(folder: str | Path) -> None:
    """Ask the run's trainer to save ``last.pt`` and exit (at its next step)."""
    (Path(folder) / STOP).write_text("")


def alive(folder: Path) -> bool:
    try:
        pid = int((folder / "pid").read_text())
    except (OSError, ValueError):
        return False
    try:  # reap it if it is our child and has exited
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return True


def _jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line being written
            break
    return rows


def metrics(folder: str | Path) -> list[dict]:
    return _jsonl(Path(folder) / "metrics.jsonl")


def stats(folder: str | Path) -> list[dict]:
    return _jsonl(Path(folder) / "stats.jsonl")


def config(folder: str | Path) -> dict:
    """The run's settings, flat: {key: value} of its model and training configs."""
    path = Path(folder) / "config.json"
    if not path.exists():
        return {}
    saved = json.loads(path.read_text())
    return {**saved["model"], **saved["train"]}


def status(folder: str | Path) -> str:
    folder = Path(folder)
    if alive(folder):
        return "running"
    steps = config(folder).get("steps")
    rows = metrics(folder)
    if rows and steps and rows[-1]["step"] >= steps:
        return "finished"
    if (folder / "last.pt").exists():
        return "stopped"
    return "failed" if (folder / "pid").exists() else "new"


def log_tail(folder: str | Path, lines: int = 5) -> str:
    path = Path(folder) / "train.log"
    return "\n".join(path.read_text().splitlines()[-lines:]) if path.exists() else ""


def list_runs(root: str | Path) -> list[Path]:
    """Every run folder under ``root`` (config.json or command.json, at any depth: a
    compare's runs are ``root/<compare>/<config>/seed<k>``), newest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = {p.parent for name in ("config.json", "command.json") for p in root.rglob(name)}
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)
