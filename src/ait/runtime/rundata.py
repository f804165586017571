"""The training and test sets of a run, as the config describes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ait.config import DataConfig
from ait.data import (
    DataError,
    ImageArrays,
    corrupt_labels,
    load_dataset,
    load_npz,
    normalization_for,
    stratified_subset,
)
from ait.data.synthetic import make_synthetic_split


@dataclass
class RunData:
    train: ImageArrays
    test: ImageArrays
    mean: tuple[float, ...]  # per-channel normalisation of [0, 1] pixels
    std: tuple[float, ...]
    info: dict[str, Any] = field(default_factory=dict)  # what was done to the data, for the run record


def build_data(cfg: DataConfig, seed: int) -> RunData:
    """Load train / test, then keep a stratified fraction and corrupt labels, both seeded.

    The training subset and the label noise depend on ``seed`` so that each seed of an experiment
    sees its own draw, as independent repetitions should.
    """
    if cfg.dataset == "imagefolder":
        raise DataError(
            f"{cfg.root}: data.dataset=imagefolder is streamed from disk during training "
            "(ait.engine.streams.ImageFolderStream), not loaded into memory; evaluations that need the "
            "whole test set as arrays (ait eval) support in-memory datasets only"
        )
    if cfg.dataset == "synthetic":
        train, test = make_synthetic_split(cfg.synthetic_size, max(cfg.synthetic_size // 4, 10), seed=1234)
    elif cfg.dataset == "npz":
        train, test = load_npz(cfg.train_file), load_npz(cfg.test_file)
    else:
        train = load_dataset(cfg.dataset, cfg.root, train=True, download=cfg.download)
        test = load_dataset(cfg.dataset, cfg.root, train=False, download=cfg.download)
    if train.image_shape[0] != test.image_shape[0] or train.num_classes != test.num_classes:
        raise ValueError(
            f"training set {train.source} ({train.image_shape}, {train.num_classes} classes) and test set "
            f"{test.source} ({test.image_shape}, {test.num_classes} classes) do not match"
        )
    info: dict[str, Any] = {"train_source": train.source, "test_source": test.source}
    if cfg.train_limit is not None and cfg.train_limit < len(train):
        train = train.subset(range(cfg.train_limit))
    if cfg.train_fraction < 1.0:
        train = train.subset(stratified_subset(train.labels, cfg.train_fraction, seed))
    if cfg.label_noise > 0:
        labels, changed = corrupt_labels(train.labels, cfg.label_noise, train.num_classes, seed)
        train = ImageArrays(train.images, labels, train.classes, train.name, train.source)
        info["label_noise_changed_fraction"] = changed
    if cfg.test_limit is not None and cfg.test_limit < len(test):
        test = test.subset(range(cfg.test_limit))
    name = cfg.dataset if cfg.dataset in ("cifar10", "cifar100", "fashion_mnist") else "custom"
    mean, std = normalization_for(name, train)
    info.update(
        train_size=len(train),
        test_size=len(test),
        num_classes=train.num_classes,
        image_shape=list(train.image_shape),
        mean=list(mean),
        std=list(std),
    )
    return RunData(train, test, tuple(mean), tuple(std), info)
