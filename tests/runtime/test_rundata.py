"""A run's data: one subset pipeline for arrays and image folders, in the config's order."""

import warnings

import pytest
import torch

from ait.config import DataConfig
from ait.data import ImageArrays, ImageFolderIndex
from ait.data.sampler import EpochSampler
from ait.runtime.rundata import build_data, evenly_spaced, first_samples, select_samples


def arrays(n: int, classes: int = 4) -> ImageArrays:
    labels = torch.arange(n) % classes
    return ImageArrays(torch.zeros(n, 1, 8, 8, dtype=torch.uint8), labels, [str(c) for c in range(classes)], "toy")


def folder(n: int, classes: int = 4) -> ImageFolderIndex:
    labels = torch.arange(n) * classes // n  # class-ordered, as a scanned folder
    return ImageFolderIndex([f"f{i}.png" for i in range(n)], labels, [str(c) for c in range(classes)], "root")


def test_limits_pick_the_first_or_evenly_spaced_samples():
    cfg = DataConfig(train_limit=8, test_limit=4)
    train, _, test, info = select_samples(arrays(40), arrays(20), cfg, 0, first_samples)
    assert len(train) == 8 and len(test) == 4 and info == {}
    assert train.labels.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    train, _, test, _ = select_samples(folder(40), folder(20), cfg, 0, evenly_spaced)
    assert train.paths == [f"f{i}.png" for i in range(0, 40, 5)] and train.labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert test.paths == ["f0.png", "f5.png", "f10.png", "f15.png"]


def test_fraction_is_stratified_and_noise_seeded_and_recorded_for_both_kinds():
    for make, limit in ((arrays, first_samples), (folder, evenly_spaced)):
        half, _, _, info = select_samples(make(40), make(8), DataConfig(train_fraction=0.5), 3, limit)
        assert torch.bincount(half.labels).tolist() == [5] * 4 and info == {}
        cfg = DataConfig(train_fraction=0.5, label_noise=0.5)
        train, _, _, info = select_samples(make(40), make(8), cfg, 3, limit)
        again, _, _, _ = select_samples(make(40), make(8), cfg, 3, limit)
        other, _, _, _ = select_samples(make(40), make(8), cfg, 4, limit)
        assert len(train) == 20 and not torch.equal(train.labels, half.labels)
        assert torch.equal(train.labels, again.labels) and not torch.equal(train.labels, other.labels)
        assert 0 < info["label_noise_changed_fraction"] <= 0.5


def test_build_data_applies_the_same_pipeline_and_records_it():
    data = build_data(DataConfig(dataset="synthetic", synthetic_size=64, train_limit=32, label_noise=0.25), seed=0)
    assert len(data.train) == 32 and data.info["train_size"] == 32
    assert "label_noise_changed_fraction" in data.info and len(data.mean) == 3


def numbered(n: int, classes: int = 4) -> ImageArrays:
    """Arrays whose first pixel names the sample, so the samples of two splits can be told apart."""
    images = torch.zeros(n, 1, 8, 8, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)
    return ImageArrays(images, torch.arange(n) % classes, [str(c) for c in range(classes)], "toy")


def test_a_validation_split_is_held_out_class_balanced_seeded_and_with_true_labels():
    cfg = DataConfig(val_fraction=0.25, label_noise=1.0)
    train, val, _, _ = select_samples(numbered(80), arrays(8), cfg, 3, first_samples)
    assert len(val) == 20 and len(train) == 60
    assert torch.bincount(val.labels).tolist() == [5, 5, 5, 5]  # class-balanced
    seen_val, seen_train = set(val.images[:, 0, 0, 0].tolist()), set(train.images[:, 0, 0, 0].tolist())
    assert not seen_val & seen_train and len(seen_val | seen_train) == 80  # disjoint, nothing lost
    assert all(label == pixel % 4 for label, pixel in zip(val.labels.tolist(), val.images[:, 0, 0, 0].tolist()))
    again, _, _, _ = select_samples(numbered(80), arrays(8), cfg, 3, first_samples)
    other, _, _, _ = select_samples(numbered(80), arrays(8), cfg, 4, first_samples)
    assert torch.equal(again.images, train.images) and not torch.equal(other.images, train.images)
    _, none, _, _ = select_samples(numbered(80), arrays(8), DataConfig(), 3, first_samples)
    assert none is None


def test_a_run_with_a_validation_split_reports_it_apart_from_the_test_set(tmp_path):
    import json
    from pathlib import Path

    import ait
    from ait_testutils import one_torch_thread, tiny_config

    cfg = tiny_config(tmp_path, "baseline", data={"dataset": "synthetic", "synthetic_size": 320, "val_fraction": 0.2})
    with one_torch_thread():
        summary = ait.train(cfg, overrides=["train.epochs=1"])
    sizes = summary["data"]
    assert sizes["val_size"] + sizes["train_size"] == 320 and 0.15 * 320 <= sizes["val_size"] <= 0.25 * 320
    net = summary["networks"][0]
    assert 0 <= net["final_val_top1"] <= 100 and "final_top1" in net
    record = json.loads((Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()[-1])
    assert set(record["val"]) == set(record["test"]) == {"net0"}


def test_seed_0s_noisy_labels_are_spread_over_epoch_0s_order():
    # The noise draw once shared seed 0's stream with the sampler's epoch-0 permutation: the first
    # 40% of epoch 0 were then exactly the noisy samples.
    n, noise = 1000, 0.4
    train, _, _, _ = select_samples(arrays(n, 10), arrays(10, 10), DataConfig(label_noise=noise), 0, first_samples)
    noisy = train.labels != arrays(n, 10).labels
    order = EpochSampler(n, 100, seed=0).permutation(0)
    first_batches = noisy[order[: int(noise * n)]].float().mean().item()
    assert first_batches < 0.5  # about 0.4 * 0.9 = 0.36 when independent; 0.9 with the shared stream


def test_a_limit_that_leaves_out_classes_is_warned_about():
    sorted_by_class = ImageArrays(
        torch.zeros(40, 1, 8, 8, dtype=torch.uint8), torch.arange(40) // 10, ["a", "b", "c", "d"], "toy"
    )
    with pytest.warns(RuntimeWarning, match=r"data.train_limit=10 keeps 1 of the 4 classes of 40 samples"):
        select_samples(sorted_by_class, arrays(8), DataConfig(train_limit=10), 0, first_samples)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        select_samples(arrays(40), arrays(8), DataConfig(train_limit=10, test_limit=4), 0, first_samples)
