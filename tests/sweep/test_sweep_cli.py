"""`ait sweep` from the command line: sweep files, --status, --shard, several workers, job arrays."""

import argparse
import re
from pathlib import Path

import pytest
import yaml
from sweep_testutils import write_config

from ait.cli import main
from ait.sweep.cli import add_sweep_parser, run_sweep_command


def test_command_line(tmp_path, capsys):
    path = write_config(tmp_path)
    parser = argparse.ArgumentParser(prog="ait")
    add_sweep_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "sweep",
            str(path),
            "--seeds",
            "0",
            "1",
            "--grid",
            "consistency.weight=1,2",
            "--set",
            "train.epochs=2",
            "--dry-run",
        ]
    )
    assert args.handler is run_sweep_command
    assert run_sweep_command(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("sweep: 4 runs, 0 done, 4 to do") and "train.epochs=2" in out
    assert main(["sweep", str(path), "--grid", "consistency.weight"]) == 2
    assert "KEY=V1,V2" in capsys.readouterr().err


def sweep_file(tmp_path, **extra) -> str:
    """Baseline x 2 seeds, and AIT x a lambda grid of 2 x 2 seeds: 6 runs (a grid of the AIT alone)."""
    base = write_config(tmp_path, "baseline")
    ait_cfg = write_config(tmp_path, "ait")
    data = {
        "experiments": [
            {"config": str(base), "seeds": [0, 1]},
            {"config": str(ait_cfg), "seeds": [0, 1], "grid": {"consistency.weight": [0.5, 2]}},
        ],
        "set": ["train.epochs=1"],
        **extra,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_a_sweep_file_grids_each_experiment_alone(tmp_path, capsys):
    path = sweep_file(tmp_path)
    assert main(["sweep", path, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sweep: 6 runs, 0 done, 6 to do")
    assert out.count("/tiny_baseline/seed") == 2 and "tiny_baseline_consistency" not in out
    assert out.count("/tiny_ait_consistency.weight=") == 4
    assert main(["sweep", path, "--dry-run"]) == 0 and capsys.readouterr().out == out  # the same plan again


@pytest.mark.parametrize(
    "change, message",
    [
        ({"experiments": []}, "experiments: expected a non-empty list"),
        ({"experiments": [{"configs": "a.yaml"}]}, r"experiments\[0\]: config\(s\): expected paths"),
        ({"experiments": [{"config": "a.yaml", "grid": [1]}]}, r"experiments\[0\]: grid: expected a mapping"),
        ({"experiments": [{"config": "a.yaml", "seed": [1]}]}, r"experiments\[0\]: unknown key 'seed'"),
        ({"runs": []}, "unknown key 'runs'"),
    ],
)
def test_bad_sweep_files_are_named(tmp_path, capsys, change, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"experiments": [{"config": "x.yaml"}], **change}))
    assert main(["sweep", str(path)]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_a_sweep_file_beside_other_files_is_refused(tmp_path, capsys):
    path = sweep_file(tmp_path)
    other = write_config(tmp_path, "baseline", name="other")
    for argv in ([path, path], [str(other), path]):
        assert main(["sweep", *argv, "--dry-run"]) == 2
        assert (
            capsys.readouterr()
            .err.strip()
            .endswith("sweep.yaml is a sweep file: give it alone (one sweep file, or config files)")
        )


def test_status_names_every_run_done_running_failed_or_to_do(tmp_path, capsys):
    from ait.engine.lock import RunLock

    path = sweep_file(tmp_path)
    assert main(["sweep", path, "--set", "train.max_steps_per_epoch=1", "--shard", "0/3"]) == 0  # runs 0 and 3
    runs = tmp_path / "runs"
    failing = runs / "tiny_ait_consistency.weight=0.5" / "seed0"
    failing.mkdir(parents=True)
    (failing / "config.yaml").write_text("name: partial\n")
    (failing / "metrics.jsonl").write_text("")  # a run that failed in its first epoch
    (failing / "error.txt").write_text("RunFailed: one\nRunFailed: the last line\n")
    held = RunLock(runs / "tiny_baseline" / "seed1").acquire()
    try:
        capsys.readouterr()
        assert main(["sweep", path, "--set", "train.max_steps_per_epoch=1", "--status"]) == 0
    finally:
        held.release()
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2] == "sweep: 6 runs: 2 done, 1 running, 1 failed, 2 to do"
    assert re.fullmatch(
        r"left: about \d+\.\d h of training for one worker at the rate of 2 finished runs .*", lines[-1]
    ), lines
    assert any(line.split()[0] == "running" and "tiny_baseline/seed1 (pid" in line for line in lines)
    assert any(line.split()[0] == "running" and line.endswith("; 0/1 epochs)") for line in lines)
    assert any(line.split()[0] == "failed" and line.endswith("(RunFailed: the last line)") for line in lines)
    to_do = [line for line in lines if line.startswith("  to do ")]
    assert len(to_do) == 2 and all(line.rstrip().endswith("seed1") or line.rstrip().endswith("seed0") for line in to_do)


def test_shards_come_from_slurm_variables_and_cover_the_plan(tmp_path, capsys, monkeypatch):
    path = sweep_file(tmp_path)
    seen = []
    for task in (3, 4, 5):  # an array --array=3-5
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", str(task))
        monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "3")
        monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "3")
        assert main(["sweep", path, "--dry-run"]) == 0
        seen.append([line.split()[2] for line in capsys.readouterr().out.splitlines() if "] todo" in line])
    assert [len(s) for s in seen] == [2, 2, 2] and len({d for s in seen for d in s}) == 6
    assert main(["sweep", path, "--shard", "3/3"]) == 2
    assert "expected I/N with 0 <= I < N" in capsys.readouterr().err


def test_the_sweep_files_of_the_repository_plan(capsys, monkeypatch):
    from ait_testutils import REPO

    monkeypatch.chdir(REPO)
    files = sorted((REPO / "sweeps").glob("*.yaml"))
    assert files
    for path in files:
        assert main(["sweep", str(path.relative_to(REPO)), "--dry-run"]) == 0
        assert capsys.readouterr().out.startswith("sweep: ")


def test_a_run_another_worker_trains_is_reported_busy_without_being_announced(tmp_path, capsys):
    from ait.engine.lock import RunLock

    path = sweep_file(tmp_path)
    held_dir = tmp_path / "runs" / "tiny_baseline" / "seed1"
    held_dir.mkdir(parents=True)
    held = RunLock(held_dir).acquire()
    try:
        assert main(["sweep", path, "--set", "train.max_steps_per_epoch=1", "--shard", "1/6"]) == 0  # that run
    finally:
        held.release()
    out = capsys.readouterr().out
    assert f"skipped, busy: {held_dir} is being trained by pid" in out and "training tiny_baseline seed 1" not in out


def test_a_job_array_is_not_submitted_while_a_run_directory_is_in_conflict(tmp_path, capsys):
    path = write_config(tmp_path)
    assert main(["sweep", str(path), "--dry-run"]) == 0
    run_dir = capsys.readouterr().out.split("todo        ")[1].split()[0]  # where the plan puts its run
    Path(run_dir).parent.mkdir(parents=True)
    Path(run_dir).write_text("not a run")  # a file where the run directory belongs: no task could train it
    folder = tmp_path / "submitit"
    args = ["--launcher", "submitit", "--cluster", "local", "--submitit-dir", str(folder)]
    assert main(["sweep", str(path), *args]) == 2
    assert "1 run directories are in conflict" in capsys.readouterr().err and not folder.exists()


def test_slurm_options_where_there_is_no_slurm_are_refused_before_anything_is_submitted(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-sbatch"))  # submitit then chooses its local executor
    path = write_config(tmp_path)
    folder = tmp_path / "submitit"
    args = ["--launcher", "submitit", "--partition", "gpu", "--gpus-per-run", "1", "--submitit-dir", str(folder)]
    assert main(["sweep", str(path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        "--partition, --gpus-per-run: SLURM's, and there is no SLURM here (no sbatch found); "
        "pass --cluster local to run the tasks on this machine without them"
    )
    assert len(err.splitlines()) == 1 and not list(folder.glob("*_submission.sh"))


@pytest.mark.parametrize(
    "option",
    [["--partition", "gpu"], ["--gpus-per-run", "1"], ["--time-min", "30"], ["--wait"], ["--cluster", "local"]],
)
def test_submitit_options_without_the_submitit_launcher_are_refused(tmp_path, capsys, option):
    path = write_config(tmp_path)
    assert main(["sweep", str(path), *option]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"{option[0]} applies to --launcher submitit only (this sweep runs here: --launcher local)")
    assert not (tmp_path / "runs").exists()
