"""The training and test sets of a run, as the config describes them.

Both kinds of data -- arrays in memory (:func:`build_data`) and image folders streamed from disk
(:func:`ait.engine.streams.scan_imagefolder_splits`) -- take their subsets through one function,
:func:`select_samples`, so a limit, a fraction or label noise means the same thing for both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from ait.config import DataConfig
from ait.data import (
    DataError,
    ImageArrays,
    corrupt_labels,
    load_dataset,
    load_hf_splits,
    load_npz,
    normalization_for,
    stratified_subset,
)
from ait.data.synthetic import make_synthetic_split

Samples = TypeVar("Samples")  # ImageArrays or ImageFolderIndex: len(), .labels, .num_classes, .subset(indices)


def fingerprint(*parts: bytes | memoryview | str) -> str:
    """A short hex digest (BLAKE2b, 16 bytes) of ``parts``: a cheap identity of data, not a secret."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
    return h.hexdigest()


def arrays_fingerprint(arrays: ImageArrays) -> str:
    """Of in-memory data: its sizes and the bytes of its images and labels (about 1 s per GB)."""
    images, labels = arrays.images.contiguous(), arrays.labels.contiguous()
    return fingerprint(
        f"{tuple(images.shape)}|{images.dtype}|{len(labels)}|",
        memoryview(images.numpy()).cast("B"),
        memoryview(labels.numpy()).cast("B"),
    )


def files_fingerprint(paths: Sequence[str], labels: Sequence[int]) -> str:
    """Of data read from files: the sorted (path, label, size, modification time) of each file, not
    its contents (a stat per file: cheap next to decoding them once)."""
    rows = []
    for path, label in sorted(zip(paths, labels)):
        st = os.stat(path)
        rows.append(f"{path}\t{label}\t{st.st_size}\t{st.st_mtime_ns}\n")
    return fingerprint(f"{len(rows)}|", "".join(rows))


def first_samples(n: int, k: int) -> Sequence[int]:
    """The first k of n samples (in-memory data sets come shuffled)."""
    return range(k)


def evenly_spaced(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n) (every class of a class-ordered folder stays in)."""
    return [i * n // k for i in range(k)]


def select_samples(
    train: Samples, test: Samples, cfg: DataConfig, seed: int, limit: Callable[[int, int], Sequence[int]]
) -> tuple[Samples, Samples | None, Samples, dict[str, Any]]:
    """The run's subsets, in this order: ``data.train_limit`` training samples (``limit(n, k)``
    picks which k of n), a stratified ``data.train_fraction`` of them, a class-balanced
    ``data.val_fraction`` of those held out as the validation set (true labels), ``data.label_noise``
    of the remaining training labels replaced by random classes, ``data.test_limit`` test samples.
    Fraction, split and noise depend on ``seed`` so that each seed of an experiment sees its own
    draw, as independent repetitions should. Returns (train, validation or None, test, what was
    done for the run record)."""
    info: dict[str, Any] = {}
    if cfg.train_limit is not None and cfg.train_limit < len(train):
        train = _limited(train, cfg.train_limit, limit, "data.train_limit")
    if cfg.train_fraction < 1.0:
        train = train.subset(stratified_subset(train.labels, cfg.train_fraction, seed))
    train, val = carve_validation(train, cfg.val_fraction, seed)
    if cfg.label_noise > 0:
        labels, changed = corrupt_labels(
            train.labels, cfg.label_noise, train.num_classes, seed + LABEL_NOISE_SEED_OFFSET
        )
        train = dataclasses.replace(train, labels=labels)
        info["label_noise_changed_fraction"] = changed
    if cfg.test_limit is not None and cfg.test_limit < len(test):
        test = _limited(test, cfg.test_limit, limit, "data.test_limit")
    return train, val, test, info


def _limited(samples: Samples, k: int, limit: Callable[[int, int], Sequence[int]], key: str) -> Samples:
    """The k samples ``limit`` picks, with a warning when they leave out classes the whole set has
    (the first k of a file sorted by class: a run on a few classes that looks like any other)."""
    picked = samples.subset(limit(len(samples), k))
    kept, present = len(picked.labels.unique()), len(samples.labels.unique())
    if kept < present:
        warnings.warn(
            f"{key}={k} keeps {kept} of the {present} classes of {len(samples)} samples "
            "(a file sorted by class?); shuffle the file, or raise the limit",
            RuntimeWarning,
            stacklevel=3,
        )
    return picked


def carve_validation(train: Samples, fraction: float, seed: int) -> tuple[Samples, Samples | None]:
    """(the training samples left, a seeded class-balanced ``fraction`` of them held out), or
    (train, None) for a fraction of 0."""
    if fraction <= 0:
        return train, None
    held = stratified_subset(train.labels, fraction, seed + VALIDATION_SEED_OFFSET)
    keep = torch.ones(len(train), dtype=torch.bool)
    keep[held] = False
    if not keep.any():
        raise DataError(f"data.val_fraction={fraction} leaves no training sample of {len(train)}")
    return train.subset(keep.nonzero().flatten()), train.subset(held)


# Each seeded draw of the data has its own stream. The validation split is not the training
# fraction's draw of the same seed; the noisy samples are not the first of epoch 0's order (with
# the bare seed, seed 0's noise permutation was the sampler's epoch-0 permutation: the first
# batches of training were almost all noisy).
VALIDATION_SEED_OFFSET = 7919
LABEL_NOISE_SEED_OFFSET = 104_729


@dataclass
class RunData:
    """A run's splits. Arrays in memory; for the evaluation of an image-folder run, the training
    index and a streamed test set instead (``ait.evaluate.folders.folder_run_data``)."""

    train: ImageArrays
    test: ImageArrays
    mean: tuple[float, ...]  # per-channel normalisation of [0, 1] pixels
    std: tuple[float, ...]
    info: dict[str, Any] = field(default_factory=dict)  # what was done to the data, for the run record
    val: ImageArrays | None = None  # data.val_fraction of the training samples, held out (None: none)


def build_data(cfg: DataConfig, seed: int) -> RunData:
    """Load train / test, check that they fit each other, then take the config's subsets
    (:func:`select_samples`). ``info`` records what was done and the data's fingerprints."""
    train, test = _load_splits(cfg)
    check_splits_match(train, test)
    info: dict[str, Any] = {"train_source": train.source, "test_source": test.source}
    train, val, test, selected = select_samples(train, test, cfg, seed, first_samples)
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
        fingerprint={"train": arrays_fingerprint(train), "test": arrays_fingerprint(test)},
    )
    if val is not None:
        info.update(val_size=len(val))
        info["fingerprint"]["val"] = arrays_fingerprint(val)
    return RunData(train, test, tuple(mean), tuple(std), info, val)


def _load_splits(cfg: DataConfig) -> tuple[ImageArrays, ImageArrays]:
    if cfg.dataset == "imagefolder":
        raise DataError(
            f"{cfg.root}: data.dataset=imagefolder is streamed from disk during training "
            "(ait.engine.streams.ImageFolderStream), not loaded into memory; evaluations that need the "
            "whole test set as arrays (ait eval) support in-memory datasets only"
        )
    if cfg.dataset == "synthetic":
        return make_synthetic_split(cfg.synthetic_size, max(cfg.synthetic_size // 4, 10), seed=1234)
    if cfg.dataset == "npz":
        return load_npz(cfg.train_file), load_npz(cfg.test_file)
    if cfg.dataset == "hf":
        train, test = load_hf_splits(cfg.root, [cfg.train_split, cfg.test_split], cfg.image_column, cfg.label_column)
        return train, test
    train = load_dataset(cfg.dataset, cfg.root, train=True, download=cfg.download)
    return train, load_dataset(cfg.dataset, cfg.root, train=False, download=cfg.download)


def check_splits_match(train: ImageArrays, test: ImageArrays) -> None:
    """The test images must have the training images' shape (C, H, W) and the same classes; DataError naming both."""
    if train.image_shape != test.image_shape:
        raise DataError(
            f"{test.source}: test images are {tuple(test.image_shape)} (C, H, W) but the training images of "
            f"{train.source} are {tuple(train.image_shape)}; both splits need the same channels and size"
        )
    if train.num_classes != test.num_classes:
        raise DataError(
            f"{test.source}: the test set has {test.num_classes} classes but the training set {train.source} has "
            f"{train.num_classes} (without classes.txt the classes are 0 .. the largest label); give both splits "
            "the same classes, e.g. one classes.txt beside both files"
        )
