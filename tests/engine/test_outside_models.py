"""Models from outside the zoo through the command line, each command in a fresh process as a user
runs it: timm and torchvision models trained with AIT, stopped by Ctrl-C and resumed, evaluated;
a plugin module given with --import, an installed entry point, an import-path factory; weights
files as initial weights and as a published model for `ait eval --model`. Real libraries throughout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import save_file

from ait.engine.checkpoint import CheckpointError, load_checkpoint
from ait_testutils import SHARED_DATA

pytestmark = pytest.mark.slow

CIFAR = SHARED_DATA / "cifar10"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    """The data keys of a small CIFAR-10 run: 256 training and 100 test images of the shared data
    when present, else generated 32x32 RGB arrays of 10 classes in the same .npz layout."""
    if (CIFAR / "train-20000.npz").is_file():
        train, test = CIFAR / "train-20000.npz", CIFAR / "test.npz"
    else:
        folder = tmp_path_factory.mktemp("npz")
        rng = np.random.default_rng(0)
        train, test = folder / "train.npz", folder / "test.npz"
        for path, n in ((train, 256), (test, 100)):
            labels = rng.integers(0, 10, n)
            images = (rng.random((n, 32, 32, 3)) * 60 + labels[:, None, None, None] * 19).astype(np.uint8)
            np.savez(path, images=images, labels=labels)
    return {"dataset": "npz", "train_file": str(train), "test_file": str(test), "train_limit": 256, "test_limit": 100}


def write_config(folder: Path, data: dict, networks: list[str], **sections) -> Path:
    cfg = {
        "name": "outside",
        "data": data,
        "strategy": {"name": "ait", "networks": networks, "views": ["rp", "rp"]},
        "optim": {"lr": 0.05, "schedule": "cosine"},
        "train": {"epochs": 2, "batch_size": 64, "progress": "none", "num_threads": 1},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def ait(*args: str, cwd: Path, env: dict | None = None, check: int | None = 0) -> subprocess.CompletedProcess:
    """``python -m ait ARGS`` in a fresh process; with ``check``, its exit status must be that."""
    done = subprocess.run(
        [sys.executable, "-m", "ait", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    if check is not None:
        assert done.returncode == check, done.stderr[-3000:]
    return done


def interrupt_in_second_epoch(args: list[str], cwd: Path, checkpoint: Path) -> subprocess.CompletedProcess:
    """Start ``ait ARGS``, press Ctrl-C (SIGINT to its process group) once a checkpoint is inside epoch 2."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ait", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 180
        while True:
            assert proc.poll() is None and time.time() < deadline, proc.communicate()
            try:
                pos = load_checkpoint(checkpoint)["position"]
                if pos["epoch"] >= 1 and pos["step"] >= 2:
                    break
            except CheckpointError:
                pass
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoint.pt")["networks"][0]


@pytest.fixture(scope="module")
def timm_run(tmp_path_factory, data) -> Path:
    """timm:test_resnet trained with AIT for 2 epochs (8 steps each), without interruption."""
    folder = tmp_path_factory.mktemp("timm")
    config = write_config(folder, data, ["timm:test_resnet"], train={"checkpoint_every_steps": 1})
    ait("train", config, "--run-dir", folder / "run", cwd=folder)
    return folder / "run"


def test_a_timm_model_resumes_after_ctrl_c_exactly_and_is_evaluated(tmp_path, data, timm_run):
    config = write_config(tmp_path, data, ["timm:test_resnet"], train={"checkpoint_every_steps": 1})
    run = tmp_path / "run"
    stopped = interrupt_in_second_epoch(["train", config, "--run-dir", run], tmp_path, run / "checkpoint.pt")
    assert stopped.returncode == 130, stopped.stderr
    assert f"ait train --resume {run}" in stopped.stderr
    ait("train", "--resume", run, cwd=tmp_path)
    resumed, straight = final_weights(run), final_weights(timm_run)
    assert resumed.keys() == straight.keys()
    assert all(torch.equal(resumed[k], straight[k]) for k in straight), "resuming changed the training"
    env = json.loads((run / "env.json").read_text())
    assert env["networks"][0]["source"]["kind"] == "timm"
    done = ait(
        "eval",
        run,
        "--all",
        "--corruptions",
        "--corruption-names",
        "fog,contrast",
        "--severities",
        "2",
        "--tsne-samples",
        "4",
        "--tsne-variants",
        "3",
        "--device",
        "cpu",
        cwd=tmp_path,
    )
    assert "net0 (timm:test_resnet)" in done.stdout
    for name in ("accuracy", "transfer", "variation", "tsne", "corruptions"):
        assert (run / "eval" / f"{name}.json").is_file(), name


def test_a_small_vit_trains_on_the_pooled_feature_and_refuses_the_feature_map(tmp_path, data):
    vit = {"timm:test_vit": {"kwargs": {"img_size": 32, "drop_path_rate": 0.1}}}
    config = write_config(
        tmp_path,
        data,
        ["timm:test_vit"],
        models=vit,
        optim={"name": "adamw", "lr": 1e-3},
        consistency={"layer": "feature"},
    )
    ait("train", config, "--run-dir", tmp_path / "run", "--set", "train.epochs=1", cwd=tmp_path)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["networks"][0]["name"] == "timm:test_vit" and 0 <= summary["networks"][0]["final_top1"] <= 100
    refused = ait(
        "train",
        config,
        "--run-dir",
        tmp_path / "other",
        "--set",
        "consistency.layer=feature_map",
        cwd=tmp_path,
        check=2,
    )
    assert "consistency.layer=feature_map: model 'timm:test_vit' gives no spatial feature map" in refused.stderr
    assert not (tmp_path / "other" / "checkpoint.pt").exists()


def test_a_torchvision_model_trains_and_is_evaluated(tmp_path, data):
    config = write_config(tmp_path, data, ["torchvision:resnet18"], train={"epochs": 1})
    ait("train", config, "--run-dir", tmp_path / "run", "--set", "train.max_steps_per_epoch=2", cwd=tmp_path)
    done = ait("eval", tmp_path / "run", "--transfer", "--device", "cpu", cwd=tmp_path)
    assert "net0 (torchvision:resnet18)" in done.stdout


PLUGIN = """
from torch import nn

from ait import models


@models.register("plugin_cnn")
def plugin_cnn(num_classes, in_channels):
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes),
    )
"""


def test_a_plugin_module_is_imported_only_when_named(tmp_path, data):
    (tmp_path / "my_models.py").write_text(PLUGIN)
    config = write_config(tmp_path, data, ["plugin_cnn"], train={"epochs": 1})
    run = tmp_path / "run"
    unknown = ait("train", config, "--run-dir", run, cwd=tmp_path, check=2)
    assert "unknown model 'plugin_cnn'" in unknown.stderr and "--import MODULE" in unknown.stderr
    ait("train", config, "--run-dir", run, "--import", "my_models.py", cwd=tmp_path)
    assert json.loads((run / "env.json").read_text())["networks"][0]["source"] == {
        "kind": "module",
        "module": "my_models",
    }
    refused = ait("eval", run, "--device", "cpu", cwd=tmp_path, check=2)
    assert "came from module 'my_models'" in refused.stderr and "pass --import my_models" in refused.stderr
    refused = ait("train", "--resume", run, cwd=tmp_path, check=2)
    assert "pass --import my_models" in refused.stderr
    done = ait("eval", run, "--device", "cpu", "--import", "my_models", cwd=tmp_path)
    assert "net0 (plugin_cnn)" in done.stdout


def test_an_import_path_in_a_config_is_imported_to_train_but_never_from_a_run(tmp_path, data):
    (tmp_path / "user_nets.py").write_text(
        PLUGIN.replace('@models.register("plugin_cnn")\n', "").replace("in_channels):", "in_channels, width=8):")
    )
    config = write_config(tmp_path, data, ["user_nets:plugin_cnn"], train={"epochs": 1})
    ait("train", config, "--run-dir", tmp_path / "run", cwd=tmp_path)
    refused = ait("eval", tmp_path / "run", "--device", "cpu", cwd=tmp_path, check=2)
    assert "does not import from a run directory on its own" in refused.stderr
    assert "--import user_nets" in refused.stderr
    ait("eval", tmp_path / "run", "--device", "cpu", "--import", "user_nets", cwd=tmp_path)


def test_an_installed_entry_point_adds_models_without_import(tmp_path, data):
    """A distribution on the path, as pip installs one: its dist-info declares the entry point."""
    site = tmp_path / "site"
    (site / "ep_models-0.1.dist-info").mkdir(parents=True)
    (site / "ep_models.py").write_text(PLUGIN.replace('@models.register("plugin_cnn")\n', ""))
    (site / "ep_models-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-models\nVersion: 0.1\n")
    (site / "ep_models-0.1.dist-info" / "entry_points.txt").write_text("[ait.models]\nep_cnn = ep_models:plugin_cnn\n")
    env = {"PYTHONPATH": str(site)}
    assert "ep_cnn" in ait("models", cwd=tmp_path, env=env).stdout.split()
    config = write_config(tmp_path, data, ["ep_cnn"], train={"epochs": 1})
    ait("train", config, "--run-dir", tmp_path / "run", cwd=tmp_path, env=env)
    source = json.loads((tmp_path / "run" / "env.json").read_text())["networks"][0]["source"]
    assert source == {"kind": "entry_point", "module": "ep_models", "distribution": "ep-models 0.1"}
    ait("eval", tmp_path / "run", "--device", "cpu", cwd=tmp_path, env=env)


def test_initial_weights_start_the_run_and_a_new_head_is_said(tmp_path, data):
    import timm

    torch.manual_seed(5)
    published = timm.create_model("test_resnet", num_classes=100).state_dict()
    save_file({k: v.contiguous() for k, v in published.items()}, str(tmp_path / "published.safetensors"))
    options = {"timm:test_resnet": {"weights": str(tmp_path / "published.safetensors"), "replace_head": True}}
    config = write_config(tmp_path, data, ["timm:test_resnet"], models=options, optim={"lr": 1e-9}, train={"epochs": 1})
    done = ait("train", config, "--run-dir", tmp_path / "run", "--set", "train.max_steps_per_epoch=1", cwd=tmp_path)
    assert "head fc.weight, fc.bias replaced (fresh init)" in done.stderr
    trained = final_weights(tmp_path / "run")
    convs = [k for k in published if k.endswith("conv.weight") or k.endswith("conv1.0.weight")]
    assert convs and all(torch.allclose(trained[f"model.{k}"], published[k], atol=1e-6) for k in convs)
    assert trained["model.fc.weight"].shape == (10, published["fc.weight"].shape[1])
    mismatch = ait(
        "train",
        config,
        "--run-dir",
        tmp_path / "other",
        "--set",
        "models.timm:test_resnet.replace_head=false",
        cwd=tmp_path,
        check=2,
    )
    assert "fc.weight (100, " in mismatch.stderr and "in the file" in mismatch.stderr


def test_a_model_ait_did_not_train_is_evaluated_like_a_run(tmp_path, data, timm_run):
    """The run's own weights as a published file: `ait eval --model` gives the run's accuracy."""
    weights = {k.removeprefix("model."): v.contiguous() for k, v in final_weights(timm_run).items()}
    save_file(weights, str(tmp_path / "published.safetensors"))
    ait("eval", timm_run, "--device", "cpu", cwd=tmp_path)
    data_keys = [f"data.{k}={v}" for k, v in data.items()]
    sets = [arg for key in data_keys for arg in ("--set", key)]
    out = tmp_path / "published"
    done = ait(
        "eval",
        "--model",
        "timm:test_resnet",
        "--weights",
        tmp_path / "published.safetensors",
        "--out",
        out,
        "--device",
        "cpu",
        *sets,
        cwd=tmp_path,
    )
    assert "net0 (timm:test_resnet)" in done.stdout
    theirs = json.loads((out / "eval" / "accuracy.json").read_text())
    ours = json.loads((timm_run / "eval" / "accuracy.json").read_text())
    assert theirs["networks"]["net0"] == ours["networks"]["net0"] and theirs["num_samples"] == 100
    assert json.loads((out / "model.json").read_text())["model"] == "timm:test_resnet"
    missing = ait("eval", "--model", "timm:test_resnet", "--device", "cpu", cwd=tmp_path, check=2)
    assert "--model NAME needs --weights FILE" in missing.stderr
    # --out never overwrites a run's or another model's results.
    published = ["--model", "timm:test_resnet", "--weights", tmp_path / "published.safetensors", "--device", "cpu"]
    into_run = ait("eval", *published, "--out", timm_run, *sets, cwd=tmp_path, check=2)
    assert "holds files but no model.json" in into_run.stderr and len(into_run.stderr.strip().splitlines()) == 1
    assert json.loads((timm_run / "eval" / "accuracy.json").read_text()) == ours
    save_file({k: v + 1 for k, v in weights.items()}, str(tmp_path / "other.safetensors"))
    other = ["--weights", tmp_path / "other.safetensors", "--out", out]
    refused = ait("eval", "--model", "timm:test_resnet", *other, "--device", "cpu", *sets, cwd=tmp_path, check=2)
    assert "holds the evaluation of 'timm:test_resnet' with" in refused.stderr
