"""Faults a run survives without losing or corrupting anything: exploding updates, a second writer,
torn metrics, a full disk, changed data, a checkpoint copied from another run, a run that stopped
before its first checkpoint. Each is also a row of docs/reliability.md."""

from __future__ import annotations

import json
import multiprocessing
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import ait
from ait.cli import main
from ait.engine.checkpoint import (
    NonFiniteStateError,
    load_checkpoint,
    save_checkpoint,
)
from ait.engine.run import RunFailed
from ait.engine.rundir import RunDirError
from ait.evaluate.export import export
from ait.evaluate.inference import ModelLoadError
from ait.evaluate.loading import RunLoadError, load_run
from ait_testutils import launch, tiny_config


def nonfinite_tensors(checkpoint: Path) -> int:
    state = load_checkpoint(checkpoint)
    return sum(not t.isfinite().all() for net in state["networks"] for t in net.values() if t.is_floating_point())


def test_a_huge_learning_rate_never_leaves_non_finite_weights(tmp_path):
    exploding = tiny_config(tmp_path, "ait", optim={"lr": 1e6}, train={"epochs": 2})
    with pytest.raises(RunFailed, match=r"non-finite .* at epoch 1, step \d+.*No checkpoint was written before it"):
        ait.train(exploding)
    skipping = tiny_config(
        tmp_path, "ait", name="skip", optim={"lr": 1e6}, train={"epochs": 2, "max_nonfinite_skips": 100}
    )
    summary = ait.train(skipping)
    assert summary["nonfinite_skips"] > 0
    assert nonfinite_tensors(Path(summary["run_dir"]) / "checkpoint.pt") == 0


def test_a_state_with_non_finite_values_is_never_written_or_exported(tmp_path):
    summary = ait.train(tiny_config(tmp_path, "baseline", train={"epochs": 1}))
    path = Path(summary["run_dir"]) / "checkpoint.pt"
    good = path.read_bytes()
    state = load_checkpoint(path)
    state["networks"][0]["head.weight"][0, 0] = float("nan")
    with pytest.raises(NonFiniteStateError, match=r"net0\.head\.weight.*the previous checkpoint .* is kept"):
        save_checkpoint(state, path)
    assert path.read_bytes() == good and [p.name for p in path.parent.glob(".*tmp")] == []
    torch.save(state, path)  # a checkpoint written around the guard, as a damaged disk might leave it
    with pytest.raises(ModelLoadError, match="NaN or infinite values; nothing exported"):
        export(path.parent, tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


def test_two_writers_on_one_run_directory_never_interleave(tmp_path):
    """Real concurrent processes, repeated: exactly one trains, the other is refused naming the holder."""
    for attempt in range(3):
        path = tmp_path / f"race{attempt}.yaml"
        path.write_text(yaml.safe_dump(tiny_config(tmp_path, "ait", name=f"race{attempt}", train={"epochs": 3})))
        run_dir = tmp_path / f"run{attempt}"
        procs = [launch(path, run_dir) for _ in range(2)]
        outcomes = sorted((p.wait(timeout=180), p.stderr.read()) for p in procs)
        assert [code for code, _ in outcomes] == [0, 2], outcomes
        assert re.search(r"is in use by another process \(pid \d+ on .*, since", outcomes[1][1]), outcomes[1][1]
        epochs = [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert epochs == [1, 2, 3]
        assert not list(run_dir.glob(".*.tmp"))


def test_the_lock_dies_with_its_process_and_is_released_after_a_run(tmp_path):
    from ait.engine.lock import RunLock, RunLocked

    ctx = multiprocessing.get_context("fork")
    ready, die = ctx.Event(), ctx.Event()

    def hold():
        with RunLock(tmp_path / "run"):
            ready.set()
            die.wait(30)

    holder = ctx.Process(target=hold)
    holder.start()
    assert ready.wait(30)
    with pytest.raises(RunLocked, match=rf"pid {holder.pid} on"):
        RunLock(tmp_path / "run").acquire()
    holder.kill()  # SIGKILL: no chance to release
    holder.join(30)
    RunLock(tmp_path / "run").acquire().release()  # the OS dropped the dead process's lock
    assert (tmp_path / "run" / ".lock").read_text() == ""  # released: no holder left behind


def test_a_heartbeat_lock_refuses_a_fresh_holder_and_takes_over_a_stale_one(tmp_path, monkeypatch):
    import os
    import socket
    import time

    from ait.engine import lock as lock_mod

    monkeypatch.setenv("AIT_LOCK_HEARTBEAT", "1")  # as on a network file system
    run = tmp_path / "run"
    run.mkdir()
    other = {"host": "node7", "pid": 4242, "started": time.time() - 600}
    (run / ".lock").write_text(json.dumps({**other, "heartbeat": time.time() - 10}))
    with pytest.raises(lock_mod.RunLocked, match=r"pid 4242 on node7.*heartbeat 10 s ago"):
        lock_mod.RunLock(run).acquire()
    (run / ".lock").write_text(json.dumps({**other, "heartbeat": time.time() - lock_mod.STALE_S - 1}))
    taken = lock_mod.RunLock(run).acquire()
    record = json.loads((run / ".lock").read_text())
    assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
    taken.release()


def test_a_heartbeat_lock_beats_on_its_own_until_released(tmp_path, monkeypatch):
    import time

    from ait.engine import lock as lock_mod

    monkeypatch.setenv("AIT_LOCK_HEARTBEAT", "1")
    monkeypatch.setattr(lock_mod, "HEARTBEAT_S", 0.05)
    held = lock_mod.RunLock(tmp_path / "run").acquire()
    first = json.loads((tmp_path / "run" / ".lock").read_text())["heartbeat"]
    time.sleep(0.5)  # no step, no beat() call: a long evaluation or save
    assert json.loads((tmp_path / "run" / ".lock").read_text())["heartbeat"] > first
    held.release()
    assert (tmp_path / "run" / ".lock").read_text() == ""
    time.sleep(0.2)
    assert (tmp_path / "run" / ".lock").read_text() == ""  # the thread has stopped beating


def test_a_torn_last_metrics_line_is_dropped_on_resume(tmp_path):
    cfg = tiny_config(tmp_path, "baseline", train={"epochs": 3, "eval_every": 3})
    run = Path(ait.train(cfg)["run_dir"])
    (run / "summary.json").unlink()  # as if the run had been killed after epoch 3's checkpoint...
    state = load_checkpoint(run / "checkpoint.pt")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][: len(lines[2]) // 2])  # ...mid-line
    state["position"]["epoch"] = 2  # ...with the checkpoint of epoch 2 (replayed from here)
    torch.save(state, run / "checkpoint.pt")
    with pytest.warns(UserWarning, match="the last line is torn"):
        summary = ait.train(cfg, resume=True)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3] and summary["epochs"] == 3


FULL_DISK = """
import resource, signal, sys, torch
from ait.engine.checkpoint import CheckpointWriteError, load_checkpoint, save_checkpoint
state = load_checkpoint(sys.argv[1])
state["networks"][0]["big"] = torch.zeros(1 << 20)  # 4 MiB, past the file size limit: the disk is "full"
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit then fail with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))
try:
    save_checkpoint(state, state_path := __import__("pathlib").Path(sys.argv[1]))
except CheckpointWriteError as err:
    print(err)
"""


def test_a_failed_save_keeps_the_previous_checkpoint_and_says_what_to_do(tmp_path):
    summary = ait.train(tiny_config(tmp_path, "baseline", train={"epochs": 1}))
    path = Path(summary["run_dir"]) / "checkpoint.pt"
    good = path.read_bytes()
    out = subprocess.run([sys.executable, "-c", FULL_DISK, str(path)], capture_output=True, text=True, timeout=120)
    message = out.stdout.strip()
    expected = (
        r"could not write checkpoint .*checkpoint\.pt: .*MiB free on its disk, the checkpoint needs about 5 MiB; "
        r"the previous checkpoint .* is kept\. .*ait train --resume"
    )
    assert re.search(expected, message), (message, out.stderr[-2000:])
    assert path.read_bytes() == good
    assert not [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_resume_refuses_changed_data_unless_allowed(tmp_path, capsys):
    data = tmp_path / "train.npz"
    rng = np.random.default_rng(0)
    np.savez(data, images=rng.integers(0, 256, (64, 16, 16, 3), dtype=np.uint8), labels=np.arange(64) % 4)
    np.savez(tmp_path / "test.npz", images=np.zeros((8, 16, 16, 3), np.uint8), labels=np.arange(8) % 4)
    npz = {"dataset": "npz", "train_file": str(data), "test_file": str(tmp_path / "test.npz")}
    cfg = tiny_config(tmp_path, "baseline", train={"epochs": 2})
    cfg["data"] = npz
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path)]) == 0
    run = tmp_path / "runs" / "tiny_baseline" / "seed0"
    (run / "summary.json").unlink()  # an interrupted run, to be resumed...
    np.savez(data, images=rng.integers(0, 256, (64, 16, 16, 3), dtype=np.uint8), labels=np.arange(64) % 4)
    assert main(["train", "--resume", str(run)]) == 2  # ...after its training data changed
    err = capsys.readouterr().err
    assert "the train data changed since the checkpoint was written" in err and "--allow-data-change" in err
    assert main(["train", "--resume", str(run), "--allow-data-change"]) == 0
    recorded = json.loads((run / "env.json").read_text())["model_input"]
    said = capsys.readouterr().err
    assert (
        f"training goes on normalised as it began (mean, std {(tuple(recorded['mean']), tuple(recorded['std']))})"
        in said
    )
    np.savez(data, images=np.ones((64, 16, 16, 3), np.uint8), labels=np.arange(64) % 4)
    with pytest.raises(RunLoadError, match="train data changed"):  # ait eval checks the same
        load_run(run, device="cpu")
    changed = load_run(run, device="cpu", allow_data_change=True)
    assert changed.data.train.images.float().mean() == 1  # evaluated on the data as it is now...
    trained = json.loads((run / "env.json").read_text())["model_input"]
    x = torch.full((1, 3, 16, 16), 128, dtype=torch.uint8)
    expected = (128 / 255 - torch.tensor(trained["mean"])) / torch.tensor(trained["std"])
    assert torch.allclose(changed.prepare(x).float()[0, :, 0, 0], expected, atol=1e-2)  # ...normalised as trained
    assert list(changed.data.mean) != list(trained["mean"])  # (the changed data's own statistics differ)


def test_a_changed_training_fingerprint_with_label_noise_names_the_old_noise_draw():
    from ait.engine.rundir import RunDirError, check_data_unchanged

    saved, now = {"train": "aaa", "test": "ttt"}, {"train": "bbb", "test": "ttt"}
    with pytest.raises(RunDirError, match=r"train aaa -> bbb\); do this\. With data\.label_noise .* before 2026-12-01"):
        check_data_unchanged(saved, now, "run", False, "do this", label_noise=0.2)
    with pytest.raises(RunDirError) as plain:
        check_data_unchanged(saved, now, "run", False, "do this", label_noise=0.0)
    assert "label_noise" not in str(plain.value)
    with pytest.raises(RunDirError) as test_only:
        check_data_unchanged({"train": "aaa", "test": "t1"}, {"train": "aaa", "test": "t2"}, "run", False, "x", 0.2)
    assert "label_noise" not in str(test_only.value)


def test_eval_refuses_a_checkpoint_of_another_config(tmp_path):
    a = ait.train(tiny_config(tmp_path, "baseline", train={"epochs": 1}))
    b = ait.train(tiny_config(tmp_path, "baseline", name="other", optim={"lr": 0.05}, train={"epochs": 1}))
    shutil.copy(Path(a["run_dir"]) / "checkpoint.pt", Path(b["run_dir"]) / "checkpoint.pt")
    with pytest.raises(RunLoadError, match=r"trained with another config than config\.yaml .*optim\.lr: 0\.1 -> 0\.05"):
        load_run(b["run_dir"], device="cpu")


def test_a_run_stopped_before_its_first_checkpoint_is_simply_started_again(tmp_path, capsys):
    cfg = tiny_config(tmp_path, "baseline", train={"epochs": 1})
    run = Path(cfg["out_dir"]) / "tiny_baseline" / "seed0"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))  # what a run writes before its first step
    (run / "env.json").write_text("{}")
    (run / ".lock").write_text("")
    summary = ait.train(cfg)
    assert summary["epochs"] == 1 and "starting again" in capsys.readouterr().err
    with pytest.raises(RunDirError, match="finished run"):
        ait.train(cfg)


def test_a_heartbeat_that_fails_once_is_retried(tmp_path, monkeypatch, capsys):
    import time

    from ait.engine import lock as lock_mod

    monkeypatch.setenv("AIT_LOCK_HEARTBEAT", "1")
    monkeypatch.setattr(lock_mod, "HEARTBEAT_S", 0.05)
    held = lock_mod.RunLock(tmp_path / "run", purpose="evaluation").acquire()
    real_pwrite, failures = lock_mod.os.pwrite, []

    def flaky(fd, data, offset):
        if not failures:
            failures.append(1)
            raise OSError(116, "Stale file handle")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(lock_mod.os, "pwrite", flaky)
    first = json.loads((tmp_path / "run" / ".lock").read_text())["heartbeat"]
    time.sleep(0.5)
    record = json.loads((tmp_path / "run" / ".lock").read_text())
    held.release()
    assert failures and record["heartbeat"] > first and record["purpose"] == "evaluation"
    assert "cannot refresh the heartbeat" in capsys.readouterr().err
