"""End to end: every strategy trains above chance and leaves a complete, valid run directory."""

import copy
import json

import pytest
import torch

import ait
from ait.config import load_config
from ait.engine.checkpoint import CheckpointError, load_checkpoint
from ait.engine.run import samples_per_step
from ait.engine.rundir import RunDirError
from ait_testutils import tiny_config


@pytest.mark.parametrize("strategy", ["baseline", "ait", "dml", "multi_ait"])
def test_each_strategy_learns_and_writes_its_run_directory(tmp_path, strategy):
    cfg = tiny_config(tmp_path, strategy)
    summary = ait.train(cfg)
    run = tmp_path / "runs" / f"tiny_{strategy}" / "seed0"
    assert summary["run_dir"] == str(run)

    n_nets = 1 if strategy in ("baseline", "ait") else 2
    assert len(summary["networks"]) == n_nets
    for net in summary["networks"]:
        assert net["final_top1"] > 60.0, net  # 10 classes: chance is 10 %
        assert 0 <= net["final_top1"] <= net["best_top1"] <= 100 and 1 <= net["best_epoch"] <= 6
        assert net["final_top5"] >= net["final_top1"]
    assert (summary["ensemble"] is not None) == (n_nets == 2)
    assert summary["wall_seconds"] > 0 and summary["images_per_s"] > 0

    # The saved config is the resolved config and loads back to the same thing.
    assert load_config(run / "config.yaml") == load_config(cfg)
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4, 5, 6]
    for r in lines:
        assert len(r["train_ce"]) == n_nets and r["images_per_s"] > 0 and r["lr"] > 0
        assert set(r["test"]) == ({"net0"} if n_nets == 1 else {"net0", "net1", "ensemble"})
    assert lines[-1]["train_ce"][0] < lines[0]["train_ce"][0]
    assert (lines[0]["train_consistency"] > 0) == (strategy != "baseline")
    assert json.loads((run / "summary.json").read_text()) == summary
    env = json.loads((run / "env.json").read_text())
    assert env["torch"] == torch.__version__ and env["device"] == "cpu"
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["position"]["epoch"] == 6 and state["position"]["step"] == 0
    assert len(state["networks"]) == n_nets and len(state["optimizers"]) == n_nets


def test_ait_epoch_has_twice_the_steps_of_a_baseline_epoch(tmp_path):
    base = load_config(tiny_config(tmp_path, "baseline"))
    ait_cfg = load_config(tiny_config(tmp_path, "ait"))
    assert samples_per_step(base) == 32 and samples_per_step(ait_cfg) == 16
    b = ait.train(tiny_config(tmp_path, "baseline", train={"epochs": 1}))
    a = ait.train(tiny_config(tmp_path, "ait", train={"epochs": 1}))
    assert a["steps_per_epoch"] == 2 * b["steps_per_epoch"] == 20


def test_same_seed_same_result_and_other_seed_differs(tmp_path):
    cfg = tiny_config(tmp_path, "ait", train={"epochs": 1})
    a = ait.train(cfg, run_dir=tmp_path / "a")
    b = ait.train(cfg, run_dir=tmp_path / "b")
    c = ait.train(dict(cfg, seed=1), run_dir=tmp_path / "c")
    wa, wb, wc = (load_checkpoint(tmp_path / d / "checkpoint.pt")["networks"][0] for d in "abc")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a["networks"] == b["networks"]
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert c["seed"] == 1


def test_existing_run_directory_is_never_overwritten_silently(tmp_path):
    cfg = tiny_config(tmp_path, "baseline", train={"epochs": 1})
    ait.train(cfg)
    run = tmp_path / "runs" / "tiny_baseline" / "seed0"
    before = (run / "metrics.jsonl").read_text()
    with pytest.raises(RunDirError, match="--overwrite"):
        ait.train(cfg)
    assert (run / "metrics.jsonl").read_text() == before
    ait.train(cfg, overwrite=True)


def test_label_noise_and_fraction_are_recorded(tmp_path):
    cfg = tiny_config(tmp_path, "baseline", data={"label_noise": 0.5, "train_fraction": 0.5}, train={"epochs": 1})
    summary = ait.train(cfg)
    assert summary["data"]["train_size"] == 160
    assert 0.3 < summary["data"]["label_noise_changed_fraction"] < 0.6


def test_real_cifar_subset_runs(tmp_path, shared_data):
    cfg = tiny_config(
        tmp_path,
        "ait",
        data={
            "dataset": "npz",
            "train_file": str(shared_data / "cifar10" / "train-20000.npz"),
            "test_file": str(shared_data / "cifar10" / "test.npz"),
            "train_limit": 640,
            "test_limit": 500,
        },
        train={"epochs": 1},
    )
    summary = ait.train(cfg)
    assert summary["data"]["train_size"] == 640 and summary["data"]["test_size"] == 500
    assert summary["data"]["num_classes"] == 10


def test_damaged_checkpoint_is_named(tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="checkpoint.pt"):
        load_checkpoint(bad)


def test_bad_data_fails_before_the_run_directory_is_made(tmp_path):
    cfg = tiny_config(
        tmp_path,
        "baseline",
        data={
            "dataset": "npz",
            "train_file": str(tmp_path / "missing.npz"),
            "test_file": str(tmp_path / "missing.npz"),
        },
    )
    before = copy.deepcopy(cfg)
    with pytest.raises(ValueError, match="missing.npz"):
        ait.train(cfg)
    assert not (tmp_path / "runs").exists()
    assert cfg == before  # the user's config object is untouched


def test_compiled_forward_trains_like_eager(tmp_path, monkeypatch):
    compiled_calls = []
    real_compile = torch.compile

    def spy(fn, *args, **kwargs):
        compiled_calls.append(fn)
        return real_compile(fn, *args, **kwargs)

    monkeypatch.setattr(torch, "compile", spy)
    eager = ait.train(
        tiny_config(tmp_path, "ait", train={"epochs": 1, "max_steps_per_epoch": 3}), run_dir=tmp_path / "e"
    )
    compiled = ait.train(
        tiny_config(tmp_path, "ait", train={"epochs": 1, "max_steps_per_epoch": 3, "compile": True}),
        run_dir=tmp_path / "c",
    )
    we = load_checkpoint(tmp_path / "e" / "checkpoint.pt")["networks"][0]
    wc = load_checkpoint(tmp_path / "c" / "checkpoint.pt")["networks"][0]
    for key in we:
        assert torch.allclose(we[key].float(), wc[key].float(), rtol=1e-3, atol=1e-4), key
    assert compiled["total_steps"] == eager["total_steps"] == 3
    assert len(compiled_calls) == 1  # one network, compiled once, only when asked for
