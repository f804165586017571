"""ait.sweep.execute: skipping finished runs, resuming or restarting interrupted ones, conflicts,
failures."""

import pytest
import yaml
from sweep_testutils import Spy, write_config

from ait.sweep import SweepError, SweepRunFailed, run_sweep


def test_dry_run_trains_nothing(tmp_path):
    path = write_config(tmp_path)
    spy, lines = Spy(), []
    result = run_sweep(
        [path], seeds=[0, 1], grid=["consistency.weight=1,2"], dry_run=True, log=lines.append, train_fn=spy
    )
    assert spy.calls == [] and not (tmp_path / "runs").exists()
    assert lines[0] == "sweep: 4 runs, 0 done, 4 to do" and len(result.plan) == 4
    assert any("ait train" in line and "seed=1" in line for line in lines)


def test_real_sweep_skips_finished_runs_and_resumes_or_restarts_interrupted_ones(tmp_path):
    path = write_config(tmp_path)
    grid = ["consistency.weight=0.5,2"]
    lines = []
    result = run_sweep([path], seeds=[3], grid=grid, log=lines.append)
    assert result.ok and len(result.trained) == 2
    dirs = [p.run_dir for p in result.plan]
    assert dirs == [tmp_path / "runs" / f"tiny_ait_consistency.weight={w}" / "seed3" for w in ("0.5", "2")]
    saved = yaml.safe_load((dirs[1] / "config.yaml").read_text())
    assert saved["consistency"]["weight"] == 2.0 and saved["seed"] == 3
    assert "sweep finished: 2 trained, 0 already done, 0 failed" in lines
    mtimes = {d: (d / "summary.json").stat().st_mtime_ns for d in dirs}

    # Second invocation: everything is done, nothing is trained, nothing is touched.
    spy = Spy()
    again = run_sweep([path], seeds=[3], grid=grid, log=[].append, train_fn=spy)
    assert spy.calls == [] and len(again.skipped) == 2
    assert {d: (d / "summary.json").stat().st_mtime_ns for d in dirs} == mtimes

    # Interrupted runs (no summary.json): resumed from checkpoint.pt where there is one, else redone.
    for d in dirs:
        (d / "summary.json").unlink()
    (dirs[1] / "checkpoint.pt").unlink()
    lines = []
    third = run_sweep([path], seeds=[3], grid=grid, log=lines.append)
    assert [p.run_dir for p in third.trained] == dirs
    assert lines[0] == (
        "sweep: 2 runs, 0 done, 2 to do (2 interrupted: 1 resumed from checkpoint.pt, 1 restarted from scratch)"
    )
    assert "resuming from checkpoint.pt" in lines[1] and "restarting from scratch" in lines[3]
    for d in dirs:
        assert (d / "summary.json").is_file() and (d / "metrics.jsonl").read_text().count("\n") == 1


def test_restart_interrupted_overwrites_instead_of_resuming(tmp_path):
    path = write_config(tmp_path)
    run_dir = tmp_path / "runs" / "tiny_ait" / "seed0"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("partial")
    (run_dir / "checkpoint.pt").write_bytes(b"x")
    spy = Spy()
    run_sweep([path], log=[].append, train_fn=spy)
    assert spy.calls[-1][3:] == (False, True)  # resume
    (run_dir / "summary.json").unlink()
    run_sweep([path], log=[].append, train_fn=spy, restart_interrupted=True)
    assert spy.calls[-1][3:] == (True, False)  # overwrite


def test_finished_run_of_another_config_is_a_conflict(tmp_path):
    path = write_config(tmp_path)
    spy = Spy()
    run_sweep([path], log=[].append, train_fn=spy)
    # Same name and directory, different config: never silently reused.
    with pytest.raises(SweepError, match="consistency.weight"):
        run_sweep([path], overrides=["consistency.weight=3"], log=[].append, train_fn=spy)
    assert len(spy.calls) == 1


def test_foreign_directory_is_never_deleted(tmp_path):
    path = write_config(tmp_path)
    run_dir = tmp_path / "runs" / "tiny_ait" / "seed0"
    run_dir.mkdir(parents=True)
    (run_dir / "precious.txt").write_text("keep me")
    with pytest.raises(SweepError, match="does not look like a run directory"):
        run_sweep([path], log=[].append, train_fn=Spy())
    assert (run_dir / "precious.txt").read_text() == "keep me"


def test_failures_stop_the_sweep_unless_continue_on_error(tmp_path):
    path = write_config(tmp_path)
    spy = Spy(fail_on={("tiny_ait", 1)})
    with pytest.raises(SweepRunFailed, match="seed1.*boom"):
        run_sweep([path], seeds=[0, 1, 2], log=[].append, train_fn=spy)
    assert [c[1] for c in spy.calls] == [0, 1]

    spy = Spy(fail_on={("tiny_ait", 1)})
    lines = []
    result = run_sweep([path], seeds=[0, 1, 2], continue_on_error=True, log=lines.append, train_fn=spy)
    assert [c[1] for c in spy.calls] == [1, 2]  # seed 0 finished in the first attempt
    assert not result.ok and [p.seed for p, _ in result.failures] == [1]
    assert any(line.startswith("  FAILED") and "seed1" in line for line in lines)
