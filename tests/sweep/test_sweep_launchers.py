"""ait.sweep.launchers: several workers on one sweep, as real processes (two `ait sweep` commands,
`--jobs 2`, and a job array through submitit's local executor; every run is trained exactly once),
and the workers' exit statuses."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from ait.sweep.launchers import worst_status
from ait_testutils import tiny_config

TESTS = Path(__file__).resolve().parents[1]  # where ait_testutils lies


def two_by_two(tmp_path: Path) -> Path:
    """A sweep file of 2 lambdas x 2 seeds of tiny AIT runs of 2 epochs."""
    cfg = tiny_config(tmp_path, "ait", train={"epochs": 2, "num_threads": 1})
    cfg["data"]["synthetic_size"] = 128
    (tmp_path / "ait.yaml").write_text(yaml.safe_dump(cfg))
    sweep = {
        "experiments": [{"config": str(tmp_path / "ait.yaml"), "seeds": [0, 1], "grid": {"consistency.weight": [1, 2]}}]
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def sweep(*args, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    command = [sys.executable, "-m", "ait", "sweep", *map(str, args), "--import", "ait_testutils"]
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def trained_dirs(output: str) -> Counter:
    """How many times each run directory was trained, from the workers' "done in ... s: DIR:" lines."""
    return Counter(re.findall(r"\] done in [\d.]+ s: (\S+): final top-1", output))


def check_every_run_once(tmp_path: Path, output: str) -> None:
    runs = sorted((tmp_path / "runs").glob("*/seed*"))
    assert len(runs) == 4
    counts = trained_dirs(output)
    assert sorted(counts.values()) == [1, 1, 1, 1] and len(counts) == 4, output
    for run in runs:
        assert (run / "summary.json").is_file() and (run / "metrics.jsonl").read_text().count("\n") == 2


@pytest.mark.slow
@pytest.mark.parametrize("attempt", [0, 1])
def test_two_sweep_processes_train_each_run_once(tmp_path, attempt):
    path = two_by_two(tmp_path)
    workers = [sweep(path, cwd=tmp_path) for _ in range(2)]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    check_every_run_once(tmp_path, "".join(outputs))


@pytest.mark.slow
@pytest.mark.parametrize("attempt", [0, 1])
def test_jobs_2_trains_each_run_once(tmp_path, attempt):
    path = two_by_two(tmp_path)
    parent = sweep(path, "--jobs", "2", cwd=tmp_path)
    output = parent.communicate(timeout=300)[0]
    assert parent.returncode == 0, output
    assert output.count("sweep worker ") == 2 and "1 threads" in output
    check_every_run_once(tmp_path, output)
    trained = [line for line in output.splitlines() if "] done in " in line]
    assert all(re.match(r"\[worker [12]\] \[\d/4\] done in", line) for line in trained), output  # which worker


@pytest.mark.slow
def test_a_submitit_job_array_completes_the_sweep_and_status_says_so(tmp_path):
    path = two_by_two(tmp_path)
    folder = tmp_path / "submitit"
    args = ["--launcher", "submitit", "--cluster", "local", "--array-size", "2", "--submitit-dir", folder, "--wait"]
    submit = sweep(path, *args, cwd=tmp_path)
    output = submit.communicate(timeout=600)[0]
    assert submit.returncode == 0, output
    assert output.count("submitted task") == 2
    logs = "".join(p.read_text() for p in folder.glob("*_log.out"))
    check_every_run_once(tmp_path, logs)
    status = sweep(path, "--status", cwd=tmp_path)
    lines = status.communicate(timeout=120)[0].strip().splitlines()
    assert lines[-1] == "sweep: 4 runs: 4 done", lines


@pytest.mark.slow
def test_a_job_array_shares_out_only_the_runs_left_and_names_a_failed_task_in_one_line(tmp_path):
    path = two_by_two(tmp_path)
    first = sweep(path, "--shard", "0/2", cwd=tmp_path)  # runs 0 and 2 of the plan done here first
    assert first.wait(timeout=600) == 0
    folder = tmp_path / "submitit"
    args = ["--launcher", "submitit", "--cluster", "local", "--submitit-dir", folder, "--wait"]
    submit = sweep(path, *args, "--array-size", "5", "--array-parallelism", "2", cwd=tmp_path)
    output = submit.communicate(timeout=600)[0]
    assert submit.returncode == 0 and output.count("submitted task") == 2, output  # a task per run left
    assert "--array-size 5: 2 runs to do, so 2 tasks" in output
    assert "--cluster local: --array-parallelism left aside (SLURM's)" in output
    per_task = [len(trained_dirs(p.read_text())) for p in folder.glob("*_log.out")]
    assert sorted(per_task) == [1, 1]  # each trains one; none idles on a done run while another trains two
    failing = sweep(path, *args, "--set", "optim.lr=1e38", "--set", "name=huge", "--continue-on-error", cwd=tmp_path)
    said = failing.communicate(timeout=600)[0]
    assert failing.returncode == 1 and "Traceback" not in said, said
    assert re.search(r"ait sweep: error: 4 of 4 tasks failed: task \S+ \(log: \S+_log\.err\)", said), said


def test_a_worker_killed_by_a_signal_is_a_failure_beside_one_that_succeeded():
    killed = subprocess.run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    assert killed.returncode == -signal.SIGKILL
    assert worst_status([0, killed.returncode]) == 128 + signal.SIGKILL  # what a shell reports: 137
    assert worst_status([0, 0]) == 0 and worst_status([2, 0]) == 2 and worst_status([]) == 0
