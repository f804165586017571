"""`ait train` on an ImageNet-style folder (data.dataset: imagefolder): every strategy, loader
workers, exact resume, Ctrl-C with workers, corrupt files, config checks. Tiny generated folders
(3 classes, 40x48-px PNG and JPEG images), trained at 32 px with the tiny test network."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

import ait
from ait.config import ConfigError, load_config
from ait.data import DataError
from ait.data.imagefolder import ImageFolderLoader, ImageFolderViews, imagefolder_loader, scan_image_folder
from ait.engine import streams
from ait.engine.checkpoint import CheckpointError, load_checkpoint
from ait.engine.distributed import DistContext
from ait.engine.run import TIMING_FIELDS, RunInterrupted
from ait.engine.trainer import BranchTrainer
from ait_testutils import make_image_folder, tiny_config

TESTS = Path(__file__).resolve().parents[1]
VIEWS = {"baseline": ["rrc"], "ait": ["rrc", "rrc"], "dml": ["rrc"], "multi_ait": ["rrc", "rrc"]}
TRAIN_IMAGES, VAL_IMAGES = 12, 6  # 3 classes x 4, 3 classes x 2


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("imagenet"), train_per_class=4, val_per_class=2)


@pytest.fixture(scope="module")
def corrupt_folder(folder, tmp_path_factory) -> Path:
    """The same folder plus one training file of random bytes (sorted last in class b)."""
    root = tmp_path_factory.mktemp("corrupt") / "imagenet"
    shutil.copytree(folder, root)
    noise = torch.randint(0, 256, (300,), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    (root / "train" / "b" / "zz_corrupt.jpg").write_bytes(noise.numpy().tobytes())
    return root


def folder_config(tmp_path: Path, root: Path, strategy_name: str = "ait", data=None, **sections) -> dict:
    """tiny_config on the image folder: 32-px views, no workers, fp32 on one thread (bit-exact)."""
    data = {"dataset": "imagefolder", "root": str(root), "image_size": 32, "workers": 0, **(data or {})}
    cfg = tiny_config(
        tmp_path,
        strategy_name,
        strategy={"views": VIEWS[strategy_name]},
        data=data,
        train={"epochs": 2, "batch_size": 4, "num_threads": 1, "eval_batch_size": 4},
    )
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value}
    return cfg


def weights(run: Path) -> list[dict[str, torch.Tensor]]:
    return load_checkpoint(run / "checkpoint.pt")["networks"]


def assert_same_weights(a: Path, b: Path) -> None:
    for na, nb in zip(weights(a), weights(b)):
        assert na.keys() == nb.keys()
        for key in na:
            assert torch.equal(na[key], nb[key]), key


def metrics(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records]


@pytest.fixture(scope="module")
def reference(folder, tmp_path_factory) -> Path:
    """An uninterrupted AIT run without workers: what workers and resumed runs must reproduce."""
    tmp = tmp_path_factory.mktemp("reference")
    ait.train(folder_config(tmp, folder), run_dir=tmp / "run")
    return tmp / "run"


@pytest.mark.parametrize("strategy", ["baseline", "ait", "dml", "multi_ait"])
def test_each_strategy_trains_on_loader_views_and_evaluates_every_val_image_once(
    tmp_path, folder, strategy, monkeypatch
):
    seen_shapes, eval_labels = [], []
    real_step, real_table = BranchTrainer.step, streams.accuracy_table

    def spy_step(self, images, labels, *args, **kwargs):
        seen_shapes.append((tuple(images.shape), images.dtype, self.premade))
        return real_step(self, images, labels, *args, **kwargs)

    def spy_table(logits, labels):
        eval_labels.append(labels.clone())
        return real_table(logits, labels)

    monkeypatch.setattr(BranchTrainer, "step", spy_step)
    monkeypatch.setattr(streams, "accuracy_table", spy_table)
    cfg = folder_config(tmp_path, folder, strategy)
    summary = ait.train(cfg)
    run = Path(summary["run_dir"])

    n_nets, n_views = len(cfg["strategy"]["networks"]), len(VIEWS[strategy])
    samples = 4 // n_views if strategy == "ait" else 4  # batch_size images per network per step
    assert summary["steps_per_epoch"] == TRAIN_IMAGES // samples
    assert seen_shapes[0] == ((samples, n_views, 3, 32, 32), torch.uint8, True)
    assert len(summary["networks"]) == n_nets
    for net in summary["networks"]:
        assert 0 <= net["final_top1"] <= 100 and net["final_top5"] >= net["final_top1"]
    assert (summary["ensemble"] is not None) == (n_nets == 2)
    data = summary["data"]
    assert data["train_size"] == TRAIN_IMAGES and data["test_size"] == VAL_IMAGES and data["num_classes"] == 3
    assert data["image_shape"] == [3, 32, 32] and data["eval_resize"] == 37  # round(32 * 256 / 224)
    # Every evaluation saw each validation image exactly once.
    assert len(eval_labels) == 2
    for labels in eval_labels:
        assert sorted(labels.tolist()) == [0, 0, 1, 1, 2, 2]

    assert load_config(run / "config.yaml") == load_config(cfg)
    lines = metrics(run)
    assert [r["epoch"] for r in lines] == [1, 2]
    assert set(lines[-1]["test"]) == ({"net0"} if n_nets == 1 else {"net0", "net1", "ensemble"})
    assert (lines[0]["train_consistency"] > 0) == (strategy != "baseline")
    assert json.loads((run / "summary.json").read_text()) == summary


def test_loader_workers_give_the_same_weights_as_in_process_loading(tmp_path, folder, reference):
    summary = ait.train(folder_config(tmp_path, folder, data={"workers": 2}), run_dir=tmp_path / "run")
    assert_same_weights(tmp_path / "run", reference)
    assert metrics(tmp_path / "run") == metrics(reference)
    assert summary["data"]["test_size"] == VAL_IMAGES


def test_interrupted_mid_epoch_then_resumed_is_bit_identical(tmp_path, folder, reference, monkeypatch):
    cfg = folder_config(tmp_path, folder)
    run = tmp_path / "run"
    calls, real_step = [], BranchTrainer.step

    def step_then_sigint(self, *args, **kwargs):
        out = real_step(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 9:  # epoch 2 (6 AIT steps per epoch), step 3: as if Ctrl-C were pressed
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(BranchTrainer, "step", step_then_sigint)
    with pytest.raises(RunInterrupted, match="epoch 2, step 3"):
        ait.train(cfg, run_dir=run)
    assert not (run / "summary.json").exists()
    assert load_checkpoint(run / "checkpoint.pt")["position"]["step"] == 3

    monkeypatch.setattr(BranchTrainer, "step", real_step)
    epochs_set, real_set_epoch = [], ImageFolderLoader.set_epoch

    def spy_set_epoch(self, epoch, start_batch=0):
        epochs_set.append((epoch, start_batch))
        return real_set_epoch(self, epoch, start_batch)

    monkeypatch.setattr(ImageFolderLoader, "set_epoch", spy_set_epoch)
    summary = ait.train(cfg, run_dir=run)  # the matching checkpoint is picked up
    assert epochs_set[0] == (1, 3)  # the loader restarts at the interrupted step
    assert_same_weights(run, reference)
    assert metrics(run) == metrics(reference)
    assert summary["networks"] == json.loads((reference / "summary.json").read_text())["networks"]


def test_ctrl_c_to_the_process_group_with_workers_saves_and_stops_cleanly(tmp_path, folder):
    """Ctrl-C reaches the loader workers too: they must survive until the checkpoint is saved."""
    path = tmp_path / "cfg.yaml"
    cfg = folder_config(
        tmp_path, folder, data={"workers": 2}, train={"epochs": 1000, "checkpoint_every_steps": 1}
    )  # far longer than the test waits
    path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import ait_testutils; from ait.cli import main; "
        "sys.exit(main(sys.argv[2:]))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(TESTS), "train", str(path), "--run-dir", str(run)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while True:  # until a checkpoint inside epoch 2 (the validation workers have started too)
            assert proc.poll() is None and time.time() < deadline, proc.communicate()
            try:
                pos = load_checkpoint(run / "checkpoint.pt")["position"]
                if pos["epoch"] >= 1 and pos["step"] > 0:
                    break
            except CheckpointError:
                pass
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: every process of the group
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "ait train --resume" in err and "DataLoader worker" not in err
    assert load_checkpoint(run / "checkpoint.pt")["saved_at"].startswith(f"signal {int(signal.SIGINT)}")
    deadline = time.time() + 15
    while True:  # the workers are gone with their main process
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        assert time.time() < deadline, "loader workers outlived the run"
        time.sleep(0.1)


def test_two_processes_shard_the_folder_and_match_one_process(tmp_path, folder):
    """torchrun (gloo, 2 CPU processes): each rank loads its half of every step and evaluates every
    other validation image; with a GroupNorm network the result equals one process's."""
    cfg = folder_config(tmp_path, folder, strategy={"networks": ["test_tiny_gn"]})
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    runs = {}
    for nproc in (1, 2):
        out = tmp_path / f"out{nproc}"
        out.mkdir()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                f"--nproc_per_node={nproc}",
                str(TESTS / "engine" / "ddp_worker.py"),
                str(path),
                str(tmp_path / f"run{nproc}"),
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        runs[nproc] = json.loads((tmp_path / f"run{nproc}" / "summary.json").read_text())
    single = torch.load(tmp_path / "out1" / "rank0.pt")
    rank0, rank1 = torch.load(tmp_path / "out2" / "rank0.pt"), torch.load(tmp_path / "out2" / "rank1.pt")
    for key in single[0]:
        assert torch.equal(rank0[0][key], rank1[0][key]), key
        assert torch.allclose(rank0[0][key], single[0][key], rtol=1e-4, atol=1e-5), key
    assert runs[2]["world_size"] == 2 and runs[1]["steps_per_epoch"] == runs[2]["steps_per_epoch"] == 6
    assert runs[2]["data"]["test_size"] == VAL_IMAGES
    # Equal weights up to float order: the predictions agree but for a near-tie (one image is 16.7 %).
    assert abs(runs[1]["networks"][0]["final_top1"] - runs[2]["networks"][0]["final_top1"]) <= 100 / VAL_IMAGES + 1e-6


def test_each_rank_loads_only_its_shard_of_every_step(tmp_path, folder):
    cfg = load_config(folder_config(tmp_path, folder, "baseline"))  # 4 samples per step
    cpu = torch.device("cpu")

    def epoch_batches(rank, world):
        stream = streams.build_stream(cfg, DistContext(rank=rank, world_size=world), cpu)
        try:
            return [b.images for b in stream.batches(epoch=1)]
        finally:
            stream.close()

    whole, first, second = epoch_batches(0, 1), epoch_batches(0, 2), epoch_batches(1, 2)
    assert len(whole) == len(first) == len(second) == 3
    for full, a, b in zip(whole, first, second):
        assert a.shape == b.shape == (2, 1, 3, 32, 32)
        assert torch.equal(torch.cat([a, b]), full)  # contiguous halves, views independent of the split


class _SignalReport(ImageFolderViews):
    """Reports, from inside a loader worker, whether SIGINT and SIGTERM are ignored there."""

    def __getitem__(self, key):
        ignored = [signal.getsignal(s) is signal.SIG_IGN for s in (signal.SIGINT, signal.SIGTERM)]
        return torch.tensor(ignored), 0


@pytest.mark.parametrize("ignore_sigterm", [False, True])
def test_loader_workers_leave_stop_signals_to_the_main_process(folder, ignore_sigterm):
    before = signal.getsignal(signal.SIGINT)  # a job started in the background may already ignore SIGINT
    loader = imagefolder_loader(
        _SignalReport(scan_image_folder(folder / "val")), batch_size=2, workers=1, ignore_sigterm=ignore_sigterm
    )
    try:
        flags, _ = next(iter(loader))
    finally:
        loader.close()
    assert flags[0].tolist() == [True, ignore_sigterm]
    assert signal.getsignal(signal.SIGINT) is before  # this process is untouched


def test_corrupt_training_file_fails_naming_it_or_is_skipped(tmp_path, corrupt_folder):
    for workers in (0, 2):  # from a worker too, the message starts with the file (no worker traceback)
        with pytest.raises(DataError, match=r"^\S*zz_corrupt\.jpg: cannot decode[^\n]*skip_corrupt=true[^\n]*$"):
            ait.train(
                folder_config(tmp_path, corrupt_folder, "baseline", data={"workers": workers}, train={"epochs": 1}),
                run_dir=tmp_path / f"a{workers}",
            )

    summary = ait.train(
        folder_config(tmp_path, corrupt_folder, "baseline", data={"skip_corrupt": True}, train={"epochs": 1}),
        run_dir=tmp_path / "b",
    )
    assert summary["data"]["train_size"] == TRAIN_IMAGES + 1  # still indexed, replaced when read
    assert summary["steps_per_epoch"] == 4


def test_verify_images_lists_corrupt_files_before_training_or_leaves_them_out(tmp_path, corrupt_folder):
    cfg = folder_config(tmp_path, corrupt_folder, "baseline", data={"verify_images": True}, train={"epochs": 1})
    with pytest.raises(DataError, match=r"^\S*zz_corrupt\.jpg: 1 image file\(s\)[^\n]*data.skip_corrupt=true[^\n]*$"):
        ait.train(cfg)
    assert not (tmp_path / "runs").exists()  # nothing written before the data is known to be good

    cfg["data"]["skip_corrupt"] = True
    summary = ait.train(cfg)
    assert summary["data"]["train_size"] == TRAIN_IMAGES and summary["data"]["corrupt_files_left_out"] == 1
    assert summary["data"]["corrupt_file_examples"][0].endswith("zz_corrupt.jpg")


def test_fraction_limits_and_label_noise_apply_to_the_folder(tmp_path, folder):
    summary = ait.train(
        folder_config(
            tmp_path,
            folder,
            "baseline",
            train={"epochs": 1},
            data={"train_fraction": 0.5, "test_limit": 3, "label_noise": 0.5},
        )
    )
    data = summary["data"]
    assert data["train_size"] == 6 and data["test_size"] == 3  # 2 of 4 per class; every 2nd val image
    assert 0.0 <= data["label_noise_changed_fraction"] <= 0.5


def test_config_and_layout_errors_are_clear(tmp_path, folder):
    with pytest.raises(ConfigError, match=r"strategy.views\[0\]: 'rp' .*imagefolder.*'rrc'"):
        load_config(folder_config(tmp_path, folder, "baseline", strategy={"views": ["rp"]}))
    # In-memory arrays have a batched rrc of their own (ait.views): accepted there.
    assert load_config(tiny_config(tmp_path, "ait", strategy={"views": ["rp", "rrc"]})).strategy.views == ["rp", "rrc"]
    with pytest.raises(ConfigError, match="data.root: expected the folder holding train/"):
        load_config(folder_config(tmp_path, folder, data={"root": None}))
    with pytest.raises(ConfigError, match="data.eval_resize"):
        load_config(folder_config(tmp_path, folder, data={"eval_resize": 16}))
    with pytest.raises(ConfigError, match="data.workers"):
        load_config(folder_config(tmp_path, folder, data={"workers": -1}))

    no_val = tmp_path / "no_val"
    shutil.copytree(folder / "train", no_val / "train")
    with pytest.raises(DataError, match=r"no_val/val: no such folder; expected .*/train/<class>/<images>"):
        ait.train(folder_config(tmp_path, no_val))
    assert not (tmp_path / "runs").exists()
