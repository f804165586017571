"""`ait sweep`: grid expansion, unique run directories, skipping finished runs, restarting interrupted ones."""

import json
import re
from pathlib import Path

import pytest
import yaml

from ait.config import ConfigError
from ait.sweep import (
    SweepError,
    SweepRunFailed,
    canonical_value,
    parse_grid,
    plan_sweep,
    run_sweep,
    split_values,
)
from ait_testutils import tiny_config

ROOT = Path(__file__).resolve().parent.parent


def write_config(tmp_path, strategy="ait", name=None, **sections):
    cfg = tiny_config(tmp_path, strategy, **sections)
    cfg["data"]["synthetic_size"] = 64
    cfg["train"]["epochs"] = 1
    if name:
        cfg["name"] = name
    path = tmp_path / f"{cfg['name']}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


class Spy:
    """Stands in for ait.engine.run.train: records calls, writes a minimal finished run."""

    def __init__(self, fail_on=()):
        self.calls = []
        self.fail_on = set(fail_on)

    def __call__(self, config, run_dir, overwrite=False, resume=False):
        self.calls.append((config.name, config.seed, run_dir, overwrite, resume))
        if (config.name, config.seed) in self.fail_on:
            raise RuntimeError("boom")
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict()))
        summary = {"networks": [{"key": "net0", "final_top1": 50.0}]}
        (run_dir / "summary.json").write_text(json.dumps(summary))
        return summary


def test_split_and_canonical_values():
    assert split_values("0,0.5,[rp, rg],x") == ["0", "0.5", "[rp, rg]", "x"]
    assert canonical_value("2.0") == "2" and canonical_value("[rp, rg]") == "rp,rg"
    assert parse_grid(["a.b=1,2", "c=[x,y],[z]"]) == {"a.b": ["1", "2"], "c": ["[x,y]", "[z]"]}
    assert parse_grid({"consistency.weight": [0.5, 1]}) == {"consistency.weight": ["0.5", "1"]}
    with pytest.raises(SweepError, match="--seeds"):
        parse_grid(["seed=1,2"])
    with pytest.raises(SweepError, match="twice"):
        parse_grid(["a=1", "a=2"])


def test_grid_is_the_cartesian_product_with_unique_readable_names(tmp_path):
    path = write_config(tmp_path)
    plan = plan_sweep([path], seeds=[0, 1], grid=["consistency.weight=0,0.5,2", "data.label_noise=0,0.2"])
    assert len(plan) == 3 * 2 * 2
    points = {(p.config.consistency.weight, p.config.data.label_noise, p.seed) for p in plan}
    assert len(points) == 12
    assert len({p.run_dir for p in plan}) == 12
    p = next(p for p in plan if p.config.consistency.weight == 2 and p.config.data.label_noise == 0.2 and p.seed == 1)
    assert p.name == "tiny_ait_consistency.weight=2_data.label_noise=0.2"
    assert p.run_dir == tmp_path / "runs" / p.name / "seed1"
    assert all(p.status == "todo" for p in plan)
    # Without a grid the names are the configs' own and each config keeps its seed.
    plain = plan_sweep([path])
    assert [(p.name, p.seed) for p in plain] == [("tiny_ait", 0)]


def test_bad_grid_value_names_the_key(tmp_path):
    path = write_config(tmp_path)
    with pytest.raises(ConfigError, match="consistency.weight"):
        plan_sweep([path], grid=["consistency.weight=1,-2"])
    with pytest.raises(ConfigError, match="did you mean"):
        plan_sweep([path], grid=["consistency.wieght=1,2"])


def test_colliding_runs_are_refused_and_duplicates_merged(tmp_path):
    b = write_config(tmp_path, "baseline", name="same").rename(tmp_path / "other.yaml")
    a = write_config(tmp_path, name="same")
    with pytest.raises(SweepError, match="share"):
        plan_sweep([a, b])
    # The same run asked for twice ("2" and "2.0", or one file twice) is planned once.
    assert len(plan_sweep([a, a], grid=["consistency.weight=2,2.0"])) == 1


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


@pytest.mark.parametrize("path", sorted((ROOT / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_each_committed_sweep_file_plans_without_collisions(path, monkeypatch):
    from ait.sweep import plan_experiments, read_sweep_file

    monkeypatch.chdir(ROOT)  # the files name configs relative to the repository root
    experiments, overrides = read_sweep_file(path)
    plan = plan_experiments(experiments, overrides)
    assert plan and len({p.run_dir for p in plan}) == len(plan)
    counted = re.search(r"^# (\d+) runs", path.read_text(), flags=re.M)  # a header that counts them is right
    assert counted is None or int(counted[1]) == len(plan)
