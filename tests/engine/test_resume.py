"""Runs that survive: exact resume after SIGKILL, SIGTERM, config checks, safe loading, guards."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

import ait
from ait.engine.checkpoint import CheckpointError, load_checkpoint
from ait.engine.run import TIMING_FIELDS, RunFailed
from ait.engine.rundir import RunDirError
from ait_testutils import launch, tiny_config

TESTS = Path(__file__).resolve().parents[1]


def resumable_config(tmp_path, **train):
    """fp32, one thread (bit-identical on CPU), 4 epochs x 50 steps, a checkpoint every 7 steps."""
    return tiny_config(
        tmp_path,
        "ait",
        data={"synthetic_size": 1600},
        train={"epochs": 4, "num_threads": 1, "checkpoint_every_steps": 7, **train},
    )


def wait_for_mid_run_checkpoint(run_dir: Path, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Until the checkpoint is mid-epoch of epoch >= 2 (so that epoch 1 is in the log too)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, f"run ended before it could be interrupted: {proc.communicate()}"
        try:
            pos = load_checkpoint(run_dir / "checkpoint.pt")["position"]
            if pos["epoch"] >= 1 and pos["step"] > 0:
                return
        except CheckpointError:
            pass  # not written yet
        time.sleep(0.05)
    raise AssertionError("no mid-epoch checkpoint appeared")


def without_timing(records):
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records]


def read_metrics(run_dir: Path):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def assert_same_weights(a: Path, b: Path):
    wa, wb = load_checkpoint(a / "checkpoint.pt"), load_checkpoint(b / "checkpoint.pt")
    for na, nb in zip(wa["networks"], wb["networks"]):
        for key in na:
            assert torch.equal(na[key], nb[key]), key
    for oa, ob in zip(wa["optimizers"], wb["optimizers"]):
        for key, st in oa["state"].items():
            assert torch.equal(st["momentum_buffer"], ob["state"][key]["momentum_buffer"])


@pytest.fixture
def reference(tmp_path_factory):
    """The uninterrupted run the resumed ones must reproduce."""
    tmp = tmp_path_factory.mktemp("reference")
    ait.train(resumable_config(tmp), run_dir=tmp / "run")
    return tmp / "run"


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path, reference):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(resumable_config(tmp_path)))
    run = tmp_path / "run"
    proc = launch(path, run)
    wait_for_mid_run_checkpoint(run, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "summary.json").exists()

    summary = ait.train(path, run_dir=run, resume=True)
    assert_same_weights(run, reference)
    assert without_timing(read_metrics(run)) == without_timing(read_metrics(reference))
    ref_summary = json.loads((reference / "summary.json").read_text())
    assert summary["networks"] == ref_summary["networks"]


def test_sigterm_saves_a_checkpoint_and_the_same_command_continues(tmp_path, reference):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(resumable_config(tmp_path)))
    run = tmp_path / "run"
    proc = launch(path, run)
    wait_for_mid_run_checkpoint(run, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "ait train --resume" in err
    assert load_checkpoint(run / "checkpoint.pt")["saved_at"].startswith(f"signal {int(signal.SIGTERM)}")

    ait.train(path, run_dir=run)  # no --resume: the matching checkpoint is picked up automatically
    assert_same_weights(run, reference)
    assert without_timing(read_metrics(run)) == without_timing(read_metrics(reference))


def test_sigterm_without_checkpoints_says_the_run_cannot_be_resumed(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(resumable_config(tmp_path, epochs=20, checkpoint=False)))
    run = tmp_path / "run"
    proc = launch(path, run)
    deadline = time.time() + 120
    while not (run / "metrics.jsonl").is_file() and time.time() < deadline:  # the signal handler is in place
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "no checkpoint was written (train.checkpoint=false), so it cannot be resumed" in err
    assert "--resume" not in err and not (run / "checkpoint.pt").exists()


def test_mismatching_config_is_refused_with_the_differing_keys(tmp_path):
    cfg = resumable_config(tmp_path, epochs=1, max_steps_per_epoch=3)
    run = tmp_path / "run"
    state_dir = tmp_path / "partial"
    ait.train(cfg, run_dir=state_dir)
    # A partial run: the checkpoint without the summary.
    run.mkdir()
    for name in ("checkpoint.pt", "config.yaml", "metrics.jsonl"):
        (run / name).write_bytes((state_dir / name).read_bytes())
    changed = dict(cfg, consistency={"weight": 3.0})
    with pytest.raises(RunDirError, match=r"consistency.weight: 1.0 -> 3.0"):
        ait.train(changed, run_dir=run)
    # Keys that do not change the computation may differ.
    ait.train(dict(cfg, train={**cfg["train"], "progress": "plain"}), run_dir=run)
    assert (run / "summary.json").exists()
    with pytest.raises(RunDirError, match="finished run"):
        ait.train(cfg, run_dir=run)
    with pytest.raises(RunDirError, match="no checkpoint"):
        ait.train(cfg, run_dir=tmp_path / "empty", resume=True)


def test_truncated_and_tampered_checkpoints_are_named_and_never_run_code(tmp_path):
    cfg = resumable_config(tmp_path, epochs=1, max_steps_per_epoch=2)
    ait.train(cfg, run_dir=tmp_path / "run")
    ckpt = tmp_path / "run" / "checkpoint.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=str(ckpt)):
        load_checkpoint(ckpt)

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    torch.save({"format": "ait-checkpoint-2", "x": Evil()}, evil)
    with pytest.raises(CheckpointError, match="evil.pt") as refused:
        load_checkpoint(evil)
    assert not marker.exists()
    assert "whose loading would run code (ait loads none)" in str(refused.value)
    assert "weights_only" not in str(refused.value)  # torch's text offers to load it unsafely


def test_resume_with_damaged_checkpoint_says_what_to_do(tmp_path):
    cfg = resumable_config(tmp_path, epochs=1, max_steps_per_epoch=2)
    run = tmp_path / "run"
    ait.train(cfg, run_dir=run)
    (run / "summary.json").unlink()
    (run / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(RunDirError, match="checkpoint.pt.*--overwrite"):
        ait.train(cfg, run_dir=run)


def test_non_finite_loss_fails_with_the_step_and_network_named(tmp_path):
    cfg = tiny_config(tmp_path, "baseline", strategy={"networks": ["test_nan_step3"]}, train={"epochs": 1})
    with pytest.raises(RunFailed, match=r"CE of net0 \(test_nan_step3\) = nan.*epoch 1, step 3"):
        ait.train(cfg)


def test_non_finite_steps_can_be_skipped(tmp_path):
    cfg = tiny_config(
        tmp_path, "baseline", strategy={"networks": ["test_nan_step3"]}, train={"epochs": 2, "max_nonfinite_skips": 1}
    )
    summary = ait.train(cfg)
    assert summary["nonfinite_skips"] == 1
    weights = load_checkpoint(Path(summary["run_dir"]) / "checkpoint.pt")["networks"][0]
    assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())


def test_unwritable_run_directory_and_full_disk_fail_early(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(RunDirError, match="a-file"):
        ait.train(tiny_config(tmp_path, "baseline"), run_dir=blocker / "run")

    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(RunDirError, match="MiB free"):
        ait.train(tiny_config(tmp_path, "baseline"), run_dir=tmp_path / "full")


def test_run_without_checkpoints_needs_no_room_for_them(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    summary = ait.train(tiny_config(tmp_path, "baseline"), overrides=["train.checkpoint=false"], run_dir=tmp_path / "r")
    assert summary["epochs"] >= 1 and not (tmp_path / "r" / "checkpoint.pt").exists()


OWN_VIEWS = '''
import torch
from ait import views


def speckle(x, generator):
    """Multiplicative noise of a std drawn per sample: random, from the trainer's generator."""
    std = 0.2 * torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=generator.device).to(x.device)
    noise = torch.randn(x.shape, generator=generator, device=generator.device).to(x.device)
    return (x * (1 + std * noise)).clamp(0, 1)


views.register_recipe("test+speckle", speckle, pad=4, flip_p=0.5)  # the README registers rp+speckle
'''


def test_a_recipe_of_your_own_and_in_memory_rrc_resume_bit_identical(tmp_path):
    """A module given with --import registers a random recipe; a run with it and an in-memory
    random-resized crop is SIGKILLed, resumed by a new process, and equals an uninterrupted run.
    Without --import it is refused."""
    from ait import views
    from ait.models import import_plugins

    module = tmp_path / "own_views.py"
    module.write_text(OWN_VIEWS)
    import_plugins([str(module)])  # the uninterrupted reference, in this process
    cfg = resumable_config(tmp_path)
    cfg["strategy"]["views"] = ["rrc", "test+speckle"]
    try:
        ait.train(cfg, run_dir=tmp_path / "reference")
    finally:
        del views.RECIPES["test+speckle"]  # leave the recipes of the test process as they were
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    proc = launch(path, run, "--import", str(module))
    wait_for_mid_run_checkpoint(run, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    refused = launch(path, run)  # the same command picks the checkpoint up: here without the module
    _, err = refused.communicate()
    assert refused.returncode == 2 and "unknown augmentation recipe 'test+speckle'" in err and "--import" in err
    resumed = launch(path, run, "--import", str(module))
    _, err = resumed.communicate()
    assert resumed.returncode == 0, err
    assert_same_weights(run, tmp_path / "reference")
