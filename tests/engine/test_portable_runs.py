"""Run directories that move: data paths resolved when a run starts, evaluated and resumed from
anywhere, $AIT_DATA for relative paths, and runs of before (relative paths) still resuming."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import ait
from ait.config import config_differences, load_config
from ait.engine.checkpoint import load_checkpoint
from ait.evaluate.loading import load_run
from ait_testutils import one_torch_thread, stop_after_first_epoch, tiny_config

TESTS = Path(__file__).resolve().parents[1]


def write_npz(folder: Path) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in (("train.npz", 96), ("test.npz", 32)):
        labels = np.arange(n) % 4
        np.savez(folder / name, images=rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8), labels=labels)


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A project folder with its data in data/ and a config naming it by relative paths."""
    root = tmp_path / "project"
    write_npz(root / "data")
    cfg = tiny_config(root, "baseline", train={"epochs": 2}, out_dir="runs")
    cfg["data"] = {"dataset": "npz", "train_file": "data/train.npz", "test_file": "data/test.npz"}
    (root / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    monkeypatch.chdir(root)
    return root


def train(config, **kwargs) -> dict:
    with one_torch_thread():
        return ait.train(config, **kwargs)


def test_a_moved_run_is_evaluated_and_resumed_from_another_folder(project, tmp_path, monkeypatch):
    stop_after_first_epoch("cfg.yaml", project / "runs" / "r", monkeypatch)
    saved = yaml.safe_load((project / "runs" / "r" / "config.yaml").read_text())
    assert saved["data"]["train_file"] == str(project / "data" / "train.npz")  # absolute from the start
    env = json.loads((project / "runs" / "r" / "env.json").read_text())
    assert env["data_paths"]["data.train_file"] == {
        "written": "data/train.npz",
        "resolved": str(project / "data" / "train.npz"),
    }
    moved = tmp_path / "elsewhere" / "r"
    shutil.move(str(project / "runs" / "r"), moved)
    monkeypatch.chdir(tmp_path)  # neither the project nor the run's folder
    assert load_run(moved, device="cpu").data.test.images.shape == (32, 3, 16, 16)
    summary = train(moved / "config.yaml", run_dir=moved, resume=True)
    assert summary["epochs"] == 2 and load_checkpoint(moved / "checkpoint.pt")["position"]["epoch"] == 2
    # And in a fresh process, from a third folder, as a user who received the run directory.
    (tmp_path / "third").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "ait", "eval", str(moved), "--transfer", "--device", "cpu", "--import", "ait_testutils"],
        cwd=tmp_path / "third",
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(TESTS)},  # where the module of the tiny test network is
    )
    assert done.returncode == 0, done.stderr


def test_ait_data_roots_relative_paths(project, tmp_path, monkeypatch):
    monkeypatch.setenv("AIT_DATA", str(project))
    monkeypatch.chdir(tmp_path)
    cfg = load_config(project / "cfg.yaml")
    summary = train(cfg, run_dir=tmp_path / "run", overrides=["train.epochs=1"])
    assert summary["data"]["train_source"] == str(project / "data" / "train.npz")


def test_a_run_of_before_with_relative_paths_still_resumes(project, monkeypatch):
    """A run written before paths were resolved holds them as written, in config.yaml and the checkpoint."""
    run = project / "runs" / "old"
    stop_after_first_epoch("cfg.yaml", run, monkeypatch)
    relative = {"train_file": "data/train.npz", "test_file": "data/test.npz"}
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["data"].update(relative)
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    state = load_checkpoint(run / "checkpoint.pt")
    state["config"]["data"].update(relative)
    torch.save(state, run / "checkpoint.pt")
    assert config_differences(state["config"], load_config("cfg.yaml").to_dict()) == []  # the same run
    summary = train(run / "config.yaml", run_dir=run, resume=True)
    assert summary["epochs"] == 2
