"""ait.budget and ait sweep --budget-s: the work of a run, a measured rate, runs that would not fit left out."""

import json

import numpy as np
import pytest
import yaml

from ait import budget
from ait.config import load_config
from ait.data.errors import DataError
from ait.sweep import run_sweep
from ait_testutils import tiny_config


def test_work_counts_images_through_every_network(tmp_path):
    cfg = load_config(tiny_config(tmp_path, "ait", train={"epochs": 3, "batch_size": 32}))  # 320 samples, 16 a step
    assert budget.train_size(cfg) == 320 and budget.work(cfg) == 3 * 20 * 1 * 32
    dml = load_config(tiny_config(tmp_path, "dml", train={"epochs": 1, "batch_size": 32, "max_steps_per_epoch": 4}))
    assert budget.work(dml) == 1 * 4 * 2 * 32  # two networks, capped steps
    np.savez(tmp_path / "a.npz", images=np.zeros((50, 8, 8, 3), np.uint8), labels=np.arange(50) % 5)
    data = {"dataset": "npz", "train_file": str(tmp_path / "a.npz"), "test_file": "b.npz", "train_fraction": 0.5}
    npz = load_config({"data": data})
    assert budget.train_size(npz) == 25
    held_out = load_config(
        tiny_config(tmp_path, "ait", data={"dataset": "synthetic", "synthetic_size": 320, "val_fraction": 0.5})
    )
    assert budget.train_size(held_out) == 160  # the validation half trains nothing


def test_relative_data_paths_are_found_under_ait_data(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "a.npz", images=np.zeros((30, 8, 8, 3), np.uint8), labels=np.arange(30) % 5)
    monkeypatch.setenv("AIT_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path / "data")  # not where the relative path points from
    cfg = load_config({"data": {"dataset": "npz", "train_file": "data/a.npz", "test_file": "data/a.npz"}})
    assert budget.train_size(cfg) == 30
    monkeypatch.setenv("AIT_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(DataError, match=r"elsewhere/data/a.npz: file not found \(data.train_file\)"):
        budget.train_size(cfg)


def test_a_calibration_measures_the_machine(tmp_path):
    import ait

    cfg = load_config(tiny_config(tmp_path, "ait", train={"epochs": 5}))
    rate = budget.calibrate(cfg, ait.train)
    assert rate.images_per_s > 0 and rate.startup_s >= 0 and "calibration" in rate.source
    assert rate.predict(cfg) > rate.startup_s


class TimedSpy:
    """Stands in for the engine: a finished run that "took" 1 s per epoch of training."""

    def __init__(self):
        self.trained = []

    def __call__(self, config, run_dir, overwrite=False, resume=False):
        self.trained.append(config.name)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
        seconds = float(config.train.epochs)
        summary = {"networks": [], "train_seconds": seconds, "wall_seconds": seconds + 0.5}
        (run_dir / "summary.json").write_text(json.dumps(summary))
        return summary


def test_runs_predicted_not_to_fit_are_not_started(tmp_path):
    spy = TimedSpy()
    configs = []
    for name, epochs in (("short", 1), ("long", 100)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(tiny_config(tmp_path, "baseline", name=name, train={"epochs": epochs})))
        configs.append(str(path))
    run_sweep([configs[0]], log=[].append, train_fn=spy)  # one finished run: the rate (1 s an epoch)
    lines = []
    result = run_sweep(configs, seeds=[0, 1], log=lines.append, train_fn=spy, budget_s=20)
    assert [p.name for p in result.over_budget] == ["long", "long"] and spy.trained == ["short", "short"]
    assert any("not started, over budget" in line and "predicted 100 s" in line for line in lines)
    assert "sweep finished: 1 trained, 1 already done, 0 failed, 2 over budget" in lines
    closing = [line for line in lines if line.startswith("  ") and "runs/long/" in line]
    assert len(closing) == 2 and all(line.startswith("  not started (over budget) ") for line in closing)  # not "ok"


def test_a_budget_of_nothing_starts_nothing(tmp_path):
    spy = TimedSpy()
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tmp_path, "baseline", train={"epochs": 2})))
    run_sweep([str(path)], seeds=[0], log=[].append, train_fn=spy)
    result = run_sweep([str(path)], seeds=[0, 1, 2], log=[].append, train_fn=spy, budget_s=0.0)  # 0: the rate
    assert len(result.over_budget) == 2 and spy.trained == ["tiny_baseline"]
