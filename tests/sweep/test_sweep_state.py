"""ait.sweep.state: what --status says of a run directory, and of the time left."""

import re

import pytest
import yaml
from sweep_testutils import write_config

from ait.engine.lock import RunLock
from ait.sweep import plan_sweep, run_state, run_status
from ait.sweep.state import time_left
from ait_testutils import tiny_config


def test_an_interrupted_run_says_how_many_epochs_it_recorded_passing_over_a_line_being_written(tmp_path):
    (planned,) = plan_sweep([write_config(tmp_path)], overrides=["train.epochs=3"])
    assert run_status(planned) == "to do"
    planned.run_dir.mkdir(parents=True)
    (planned.run_dir / "config.yaml").write_text(yaml.safe_dump(planned.config.to_dict()))
    (planned.run_dir / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n{"epo')
    assert run_status(planned) == "interrupted (2/3 epochs)"


def test_a_run_another_process_has_just_begun_is_not_a_conflict(tmp_path):
    """Its lock is held and only config.yaml is written yet: a worker planning then sees it running."""
    (planned,) = plan_sweep([write_config(tmp_path)])
    held = RunLock(planned.run_dir).acquire()
    try:
        (planned.run_dir / "config.yaml").write_text(yaml.safe_dump(planned.config.to_dict()))
        assert run_state(planned.config, planned.run_dir)[0] == "interrupted"
        assert run_status(planned).startswith("running (pid")
    finally:
        held.release()
    assert run_state(planned.config, planned.run_dir)[0] == "conflict"  # a lone config.yaml nobody holds


def test_the_time_left_counts_the_epochs_left_of_an_interrupted_run_at_the_finished_runs_rate(tmp_path):
    cfg = tiny_config(tmp_path, "baseline", train={"epochs": 4, "max_steps_per_epoch": 2})
    plan = plan_sweep([cfg], seeds=[0, 1, 2])
    assert time_left(plan, ["to do"] * 3) is None  # no finished run: no rate to predict from
    done = plan[0].run_dir
    done.mkdir(parents=True)
    (done / "config.yaml").write_text(yaml.safe_dump(cfg))
    (done / "summary.json").write_text('{"train_seconds": 3600.0, "wall_seconds": 3600.0, "networks": []}')
    hours = float(re.search(r"about ([\d.]+) h", time_left(plan, ["done", "to do", "to do"])).group(1))
    assert hours == pytest.approx(2.0, abs=0.05)  # two runs like the finished one
    half = plan[1].run_dir
    half.mkdir(parents=True)
    (half / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n')  # 2 of 4 epochs recorded
    hours = float(re.search(r"about ([\d.]+) h", time_left(plan, ["done", "interrupted", "to do"])).group(1))
    assert hours == pytest.approx(1.5, abs=0.05)
    assert time_left(plan, ["done"] * 3) is None  # nothing left
