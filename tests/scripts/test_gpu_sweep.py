"""scripts/gpu_sweep.sh, run for real on the CPU (--device cpu --smoke): the time limit stops the
sweep with a checkpoint, the pack holds what the next loan needs, and the same call resumes it."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_sweep.sh"


def gpu_sweep(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, **(env or {})}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300)


def test_time_limit_packs_a_checkpoint_and_the_next_call_finishes_the_run(tmp_path):
    sweep = tmp_path / "sweep.yaml"
    smoke = ROOT / "configs" / "smoke" / "synthetic_resnet20_baseline.yaml"
    sweep.write_text(
        f"experiments:\n  - config: {smoke}\n    seeds: [0]\nset: [train.epochs=150, train.num_threads=1]\n"
    )
    common = [str(sweep), "--device", "cpu", "--smoke", "--jobs", "1", "--runs", str(tmp_path / "runs")]
    first = gpu_sweep(*common, "--time-s", "20", "--out", str(tmp_path / "out1"))  # stopped by the limit: 0
    assert first.returncode == 0, first.stderr
    assert "time is up" in first.stdout and "1 interrupted" in first.stdout
    with tarfile.open(tmp_path / "out1" / "sweep.tar.gz") as pack:
        names = {Path(n).name for n in pack.getnames()}
    assert {"config.yaml", "env.json", "metrics.jsonl", "checkpoint.pt"} <= names and "summary.json" not in names

    second = gpu_sweep(*common, "--time-s", "240", "--out", str(tmp_path / "out2"))
    assert second.returncode == 0, second.stderr
    assert "time is up" not in second.stdout and "1 done" in second.stdout
    assert "resumed from checkpoint.pt" in (tmp_path / "out2" / "sweep.log").read_text()
    with tarfile.open(tmp_path / "out2" / "sweep.tar.gz") as pack:  # a finished run's checkpoint stays behind
        names = {Path(n).name for n in pack.getnames()}
    assert "summary.json" in names and "checkpoint.pt" not in names


def test_a_failing_sweep_fails_the_script_and_its_runs_are_still_packed(tmp_path):
    sweep = tmp_path / "sweep.yaml"
    smoke = ROOT / "configs" / "smoke" / "synthetic_resnet20_baseline.yaml"
    sweep.write_text(f"experiments:\n  - {{config: {smoke}, seeds: [0, 1]}}\n")
    missing = ["--set", "data.dataset=npz", "--set", f"data.train_file={tmp_path}/absent.npz"]  # passed to ait sweep
    missing += ["--set", f"data.test_file={tmp_path}/absent_test.npz", "--jobs", "1"]
    where = ["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "o")]
    done = gpu_sweep(str(sweep), "--device", "cpu", *where, *missing)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "sweep: exited with status 1" in done.stderr and (tmp_path / "o" / "sweep.tar.gz").is_file()
    assert "absent.npz" in (tmp_path / "o" / "sweep.log").read_text()


def test_a_damaged_or_unknown_data_file_stops_before_training(tmp_path):
    sweep = ROOT / "sweeps" / "paper_regime_cifar100.yaml"
    (tmp_path / "data" / "cifar100").mkdir(parents=True)
    (tmp_path / "data" / "cifar100" / "test.npz").write_bytes(b"cut short")
    damaged = gpu_sweep(
        str(sweep), "--need", "data/cifar100/test.npz", "--out", str(tmp_path / "o"), env={"AIT_DATA": str(tmp_path)}
    )
    assert damaged.returncode == 2 and "test.npz is damaged (checksum differs)" in damaged.stderr
    unknown = gpu_sweep(str(sweep), "--need", "data/mine.npz", "--out", str(tmp_path / "o"))
    assert unknown.returncode == 2 and "data/mine.npz has no checksum in scripts/data.sha256" in unknown.stderr
    missing = gpu_sweep(
        str(sweep),
        "--need",
        "data/cifar10/test.npz",
        "--check",
        "--out",
        str(tmp_path / "o"),
        env={"AIT_DATA": str(tmp_path)},
    )
    assert missing.returncode == 0 and "not here yet" in missing.stdout
    no_sweep = gpu_sweep("--time-s", "5")
    assert no_sweep.returncode == 2 and "expected a sweep file first" in no_sweep.stderr
    for bad, named in (
        (["--time-s", "soon"], "--time-s: expected whole seconds"),
        (["--jobs"], "--jobs needs a value"),
    ):
        refused = gpu_sweep(str(sweep), *bad)
        assert refused.returncode == 2 and named in refused.stderr, refused.stderr
