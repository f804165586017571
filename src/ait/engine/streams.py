"""Where a run's training batches and test accuracy come from: two kinds of data, one interface.

* :class:`InMemoryStream` -- CIFAR, Fashion-MNIST, ``.npz`` arrays, synthetic data: the whole
  training set lives on the training device as uint8; a step indexes its batch there and the
  trainer augments it (:mod:`ait.views`, views seeded by (seed, epoch, step)).
* :class:`ImageFolderStream` -- ImageNet-style folders (``data.dataset: imagefolder``): files are
  decoded by ``data.workers`` DataLoader processes per rank, which also make the views
  (RandomResizedCrop + flip per view, "rrc", seeded by (seed, epoch, sample, view)); a step
  receives uint8 views (B, V, 3, S, S) and the trainer only normalises them.

The training loop (:mod:`ait.engine.run`) sees only this::

    stream.num_batches                       steps in a full epoch
    stream.batches(epoch, start)             TrainBatch iterator from step ``start`` on (resume)
    stream.evaluate(networks, prepare, precision, batch_size)
                                             accuracy table; each test sample counted once over ranks
    stream.in_channels, .num_classes, .input_shape, .classes, .mean, .std, .info, .premade, .close()

Both kinds draw the same epoch order (:class:`ait.data.EpochSampler`, seeded by (seed, epoch)) of
``samples_per_step`` samples per step. Under DDP the in-memory stream hands every rank the whole
global batch plus its shard (views are drawn for all samples, so they do not depend on the number
of processes); the image-folder stream decodes only the rank's shard.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ait.config import Config, ConfigError
from ait.data import (
    IMAGENET_NORMALIZATION,
    DataError,
    EpochSampler,
    ImageFolderIndex,
    ImageFolderViews,
    imagefolder_loader,
    scan_image_folder,
    verify_images,
)
from ait.runtime.predict import accuracy_table, predict_batches, predict_logits
from ait.runtime.rundata import RunData, build_data, evenly_spaced, files_fingerprint, select_samples

__all__ = [
    "ImageFolderStream",
    "InMemoryStream",
    "TrainBatch",
    "build_stream",
    "evaluate_sharded",
    "pad_to_multiple",
    "samples_per_step",
    "scan_imagefolder_splits",
]


def samples_per_step(config: Config) -> int:
    """Samples drawn per step: ``batch_size`` images per network, so AIT with V views takes
    ``batch_size / V`` samples (:meth:`ait.strategies.Strategy.samples_per_step`)."""
    return config.strategy.samples_per_step(config.train.batch_size)


@dataclass
class TrainBatch:
    """One step's input, on the training device."""

    images: torch.Tensor  # uint8: (B, C, H, W) for the trainer to augment, or premade views (B, V, C, H, W)
    labels: torch.Tensor  # int64 (B,)
    shard: slice | None = None  # this rank's part of a global batch (in-memory data under DDP)


def build_stream(cfg: Config, ctx, device: torch.device) -> InMemoryStream | ImageFolderStream:
    """The run's data as the config describes it; bad data fails here, before anything is written."""
    if cfg.data.dataset == "imagefolder":
        return ImageFolderStream(cfg, ctx, device)
    return InMemoryStream(build_data(cfg.data, cfg.seed), samples_per_step(cfg), cfg.seed, ctx, device)


def pad_to_multiple(idx: torch.Tensor, multiple: int) -> torch.Tensor:
    """Repeat the first indices so that every rank gets an equal shard (only the last batch is short)."""
    short = (-len(idx)) % multiple
    return torch.cat([idx, idx[:short]]) if short else idx


def evaluate_sharded(ctx, networks, test, prepare, precision, batch_size: int) -> dict[str, dict[str, float]]:
    """Top-1/top-5 per network and ensemble; with several ranks each evaluates a contiguous shard
    and the logits are gathered, so every test sample counts exactly once."""
    n = len(test)
    lo, hi = n * ctx.rank // ctx.world_size, n * (ctx.rank + 1) // ctx.world_size
    logits = predict_logits(networks, test.images[lo:hi], prepare, precision, batch_size)
    logits = [ctx.gather_cat(part) for part in logits]
    return accuracy_table(logits, test.labels)


class InMemoryStream:
    """Small datasets resident on the training device (see the module docstring)."""

    premade = False

    def __init__(self, data: RunData, samples: int, seed: int, ctx, device: torch.device):
        self.data, self.ctx, self.device = data, ctx, device
        self.images = data.train.images.to(device)  # uint8 (N, C, H, W)
        self.labels = data.train.labels.to(device)
        self.sampler = EpochSampler(len(data.train), samples, seed=seed)
        self.num_batches = len(self.sampler)
        self.in_channels, self.num_classes = data.train.image_shape[0], data.train.num_classes
        self.input_shape = tuple(data.train.image_shape)  # (C, H, W): the batch recipes keep the size
        self.classes = list(data.train.classes)
        self.mean, self.std, self.info = data.mean, data.std, data.info

    def batches(self, epoch: int, start: int = 0) -> Iterator[TrainBatch]:
        ctx = self.ctx
        for idx in self.sampler.batches(epoch, start=start):
            shard = None
            if ctx.enabled:  # every rank draws the views of the whole global batch, trains on its shard
                shard_size = (len(idx) + ctx.world_size - 1) // ctx.world_size
                idx = pad_to_multiple(idx, ctx.world_size)
                shard = slice(ctx.rank * shard_size, (ctx.rank + 1) * shard_size)
            idx = idx.to(self.device)
            yield TrainBatch(self.images[idx], self.labels[idx], shard)

    @property
    def has_validation(self) -> bool:
        return self.data.val is not None

    def evaluate(
        self, networks, prepare, precision, batch_size: int, split: str = "test"
    ) -> dict[str, dict[str, float]]:
        """Accuracy on the test set, or (split="val") on the held-out validation set."""
        arrays = self.data.val if split == "val" else self.data.test
        return evaluate_sharded(self.ctx, networks, arrays, prepare, precision, batch_size)

    def close(self) -> None:
        pass


@dataclass
class _Indexes:
    train: ImageFolderIndex
    val: ImageFolderIndex
    info: dict[str, Any] = field(default_factory=dict)


def scan_imagefolder_splits(cfg: Config, ctx, verify_train: bool = True) -> _Indexes:
    """The training and validation indexes of ``data.root`` after limits, fraction, label noise and
    (with ``data.verify_images``) the removal of undecodable files (``verify_train=False``: of the
    validation files only, for an evaluation). Raises DataError naming paths."""
    d = cfg.data
    root = Path(d.root)
    layout = f"expected {root}/train/<class>/<images> and {root}/val/<class>/<images> (the ImageNet layout)"
    if not root.is_dir():
        raise DataError(f"{root}: data.root is not a directory; {layout}")
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise DataError(f"{root / split}: no such folder; {layout}")
    train = scan_image_folder(root / "train")
    val = scan_image_folder(root / "val", classes=train.classes)  # a class unknown to train/ is an error
    info: dict[str, Any] = {"train_source": str(root / "train"), "test_source": str(root / "val")}
    train, _, val, selected = select_samples(train, val, d, cfg.seed, evenly_spaced)  # no held-out split here
    info.update(selected)
    if ctx.is_main:  # rank 0 alone records and checks it: one stat per file is enough
        info["fingerprint"] = {
            "train": files_fingerprint(train.paths, train.labels.tolist()),
            "test": files_fingerprint(val.paths, val.labels.tolist()),
        }
    if d.verify_images:  # after the subsets: only the files the run reads are decoded
        bad = (_verify_sharded(train, d.workers, ctx) if verify_train else []) + _verify_sharded(val, d.workers, ctx)
        if bad and not d.skip_corrupt:
            others = f" (the others: {', '.join(bad[1:4])}{', ...' if len(bad) > 4 else ''})" if len(bad) > 1 else ""
            raise DataError(
                f"{bad[0]}: {len(bad)} image file(s) under {root} cannot be decoded{others}; "
                "set data.skip_corrupt=true to leave them out, or replace them"
            )
        if bad:
            train, val = train.without(bad), val.without(bad)
            if ctx.is_main:
                print(
                    f"[{cfg.name}] data.verify_images: left out {len(bad)} undecodable file(s), e.g. {bad[0]}",
                    file=sys.stderr,
                )
        info["corrupt_files_left_out"] = len(bad)
        info["corrupt_file_examples"] = bad[:20]
    if len(train) == 0 or len(val) == 0:
        raise DataError(f"{root}: no {'training' if len(train) == 0 else 'validation'} images left to use")
    return _Indexes(train, val, info)


def _verify_sharded(index: ImageFolderIndex, workers: int, ctx) -> list[str]:
    """Undecodable paths of ``index``; each rank decodes every world_size-th file, then all share."""
    mine = index.subset(range(ctx.rank, len(index), ctx.world_size)) if ctx.enabled else index
    parts = ctx.gather_objects(verify_images(mine, workers) if len(mine) else [])
    return sorted(p for part in parts for p in part)


class ImageFolderStream:
    """ImageNet-style folders decoded from disk (see the module docstring).

    Corrupt files: with ``data.skip_corrupt`` a file that fails to decode is replaced by the next
    decodable one of the split (also in evaluation, where that sample then counts twice);
    ``data.verify_images`` decodes every used file once before training and leaves the bad ones
    out (or, without skip_corrupt, fails listing them). Otherwise the first bad file met fails
    the run with a DataError naming it.
    """

    premade = True

    def __init__(self, cfg: Config, ctx, device: torch.device):
        d, self.ctx, self.device = cfg.data, ctx, device
        samples = samples_per_step(cfg)
        if samples % ctx.world_size:
            raise ConfigError(
                f"train.batch_size: {cfg.train.batch_size} images per network per step give {samples} "
                f"samples per step, which the {ctx.world_size} processes cannot share evenly "
                "(each loads its own shard of every step)"
            )
        indexes = scan_imagefolder_splits(cfg, ctx)
        self.workers = d.workers
        self.train_set = ImageFolderViews(
            indexes.train,
            num_views=len(cfg.strategy.views),
            train=True,
            size=d.image_size,
            seed=cfg.seed,
            skip_corrupt=d.skip_corrupt,
        )
        self.val_set = ImageFolderViews(
            indexes.val,
            num_views=1,
            train=False,
            size=d.image_size,
            eval_resize=d.eval_resize,
            skip_corrupt=d.skip_corrupt,
        )
        # ignore_sigterm: a scheduler's SIGTERM to the whole process tree must not kill the workers
        # before this process has saved its checkpoint; close() shuts them down.
        self.train_loader = imagefolder_loader(
            self.train_set,
            samples,
            d.workers,
            seed=cfg.seed,
            shuffle=True,
            rank=ctx.rank,
            world_size=ctx.world_size,
            ignore_sigterm=True,
        )
        self.val_loader = None  # made at the first evaluation (its batch size is the eval batch size)
        self.num_batches = math.ceil(len(self.train_set) / samples)  # as EpochSampler without drop_last
        self.in_channels, self.num_classes = 3, indexes.train.num_classes
        self.input_shape = (3, d.image_size, d.image_size)
        self.classes = list(indexes.train.classes)
        self.mean, self.std = IMAGENET_NORMALIZATION
        eval_resize = d.eval_resize if d.eval_resize is not None else int(round(d.image_size / 0.875))
        self.info = {
            **indexes.info,
            "train_size": len(self.train_set),
            "test_size": len(self.val_set),
            "num_classes": self.num_classes,
            "image_shape": [3, d.image_size, d.image_size],
            "eval_resize": eval_resize,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    def batches(self, epoch: int, start: int = 0) -> Iterator[TrainBatch]:
        self.train_loader.set_epoch(epoch, start_batch=start)
        try:
            for views, labels in self.train_loader:  # uint8 (B, V, 3, S, S), int64 (B,): this rank's shard
                yield TrainBatch(views.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True))
        except DataError as err:
            message = str(err)
            if "Original Traceback" in message:  # re-raised from a worker: keep the worker's own message
                message = message.strip().splitlines()[-1].split("DataError: ", 1)[-1]
            raise DataError(
                f"{message}; set data.skip_corrupt=true to replace undecodable files by the next image, "
                "or data.verify_images=true to find (and with skip_corrupt leave out) all of them before training"
            ) from None

    has_validation = False  # data.val_fraction is refused for image folders

    def evaluate(self, networks, prepare, precision, batch_size: int) -> dict[str, dict[str, float]]:
        """Each rank predicts every world_size-th validation image; logits and labels are gathered."""
        ctx = self.ctx
        if self.val_loader is None or self.val_loader.batch_sampler.batch_size != batch_size * ctx.world_size:
            if self.val_loader is not None:
                self.val_loader.close()
            self.val_loader = imagefolder_loader(
                self.val_set,
                batch_size * ctx.world_size,
                self.workers,
                shuffle=False,
                rank=ctx.rank,
                world_size=ctx.world_size,
                ignore_sigterm=True,
            )
        labels: list[torch.Tensor] = []

        def images() -> Iterator[torch.Tensor]:
            for crops, y in self.val_loader:  # uint8 (B, 1, 3, S, S)
                labels.append(y)
                yield crops[:, 0]

        logits = [
            ctx.gather_cat(p.logits) for p in predict_batches(networks, images(), prepare, precision, features=False)
        ]
        all_labels = ctx.gather_cat(torch.cat(labels))
        if len(all_labels) != len(self.val_set):  # the strided shards cover the set exactly once
            raise RuntimeError(f"evaluated {len(all_labels)} validation images, expected {len(self.val_set)}")
        return accuracy_table(logits, all_labels)

    def close(self) -> None:
        """Shut the loaders' worker processes down."""
        for loader in (self.train_loader, self.val_loader):
            if loader is not None:
                loader.close()
