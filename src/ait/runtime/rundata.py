"""The training and test sets of a run, as the config describes them.

Both kinds of data -- arrays in memory (:func:`build_data`) and image folders streamed from disk
(:func:`ait.engine.streams.scan_imagefolder_splits`) -- take their subsets through one function,
:func:`select_samples`, so a limit, a fraction or label noise means the same thing for both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

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

Samples = TypeVar("Samples")  # ImageArrays or ImageFolderIndex: len(), .labels, .num_classes, .subset(indices)


def first_samples(n: int, k: int) -> Sequence[int]:
    """The first k of n samples (in-memory data sets come shuffled)."""
    return range(k)


def evenly_spaced(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n) (every class of a class-ordered folder stays in)."""
    return [i * n // k for i in range(k)]


def select_samples(
    train: Samples, test: Samples, cfg: DataConfig, seed: int, limit: Callable[[int, int], Sequence[int]]
) -> tuple[Samples, Samples, dict[str, Any]]:
    """The run's subsets, in this order: ``data.train_limit`` training samples (``limit(n, k)``
    picks which k of n), a stratified ``data.train_fraction`` of them, ``data.label_noise`` of their
    labels replaced by random classes, ``data.test_limit`` test samples. Fraction and noise depend
    on ``seed`` so that each seed of an experiment sees its own draw, as independent repetitions
    should. Returns (train, test, what was done for the run record)."""
    info: dict[str, Any] = {}
    if cfg.train_limit is not None and cfg.train_limit < len(train):
        train = train.subset(limit(len(train), cfg.train_limit))
    if cfg.train_fraction < 1.0:
        train = train.subset(stratified_subset(train.labels, cfg.train_fraction, seed))
    if cfg.label_noise > 0:
        labels, changed = corrupt_labels(train.labels, cfg.label_noise, train.num_classes, seed)
        train = dataclasses.replace(train, labels=labels)
        info["label_noise_changed_fraction"] = changed
    if cfg.test_limit is not None and cfg.test_limit < len(test):
        test = test.subset(limit(len(test), cfg.test_limit))
    return train, test, info


@dataclass
class RunData:
    train: ImageArrays
    test: ImageArrays
    mean: tuple[float, ...]  # per-channel normalisation of [0, 1] pixels
    std: tuple[float, ...]
    info: dict[str, Any] = field(default_factory=dict)  # what was done to the data, for the run record


def build_data(cfg: DataConfig, seed: int) -> RunData:
    """Load train / test, then take the config's subsets (:func:`select_samples`)."""
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
    train, test, selected = select_samples(train, test, cfg, seed, first_samples)
    info.update(selected)
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
