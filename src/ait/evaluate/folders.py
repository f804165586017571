"""The test sets of image-folder runs (``data.dataset: imagefolder``), streamed from disk.

An image-folder run is evaluated on its ``val/`` split as training evaluated it: each image
decoded, its shorter side resized to ``data.eval_resize`` and centre-cropped to ``data.image_size``,
by the loader's worker processes (``data.workers``). ImageNet's validation set as pixels would be
tens of gigabytes per derived set, so nothing derived is stored: the fixed augmented sets (Table 5)
and the generated corruptions are made in the workers from each crop, their random draws a pure
function of (seed, set, image index) -- the same for every batch size, worker count and run, and
cheap to recompute (a generator seeded per image), so there is no cache to keep or invalidate.

The official ImageNet-C files (``CORRUPTION/SEVERITY/CLASS/*.JPEG``, already 224x224 crops of the
validation images) are read with :func:`official_corruption_set`: resized to ``data.image_size``
on their shorter side when they differ, then centre-cropped, without the 256 -> 224 step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ait.config import Config
from ait.data import IMAGENET_NORMALIZATION, DataError, ImageFolderIndex, ImageFolderViews, imagefolder_loader
from ait.data.imagefolder import scan_image_folder
from ait.engine.distributed import DistContext
from ait.engine.streams import scan_imagefolder_splits
from ait.evaluate.corruptions import corrupt_image
from ait.evaluate.testsets import fixed_set_recipe
from ait.runtime.rundata import RunData
from ait.views import augment


@dataclass
class FolderTestSet:
    """Images of a folder, as uint8 (3, size, size) evaluation crops in the index's order.

    With ``skip_corrupt`` an undecodable file is replaced by the next image, which counts with its
    own label, as in training's evaluation: ``labels`` are then those the last full pass read.
    """

    index: ImageFolderIndex
    size: int
    eval_resize: int | None = None  # None: round(size / 0.875), as in training
    workers: int = 0
    skip_corrupt: bool = False
    fingerprint: str = ""  # of the files (path, label, size, time): what an mCE baseline must share
    _labels_read: torch.Tensor | None = field(default=None, init=False, repr=False)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def labels(self) -> torch.Tensor:
        """int64 (N,): of the images as decoded (see the class docstring), or the index's before any pass."""
        return self._labels_read if self._labels_read is not None else self.index.labels

    @property
    def classes(self) -> list[str]:
        return list(self.index.classes)

    @property
    def num_classes(self) -> int:
        return self.index.num_classes

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, self.size, self.size)

    def batches(self, batch_size: int, transform=None) -> Iterator[torch.Tensor]:
        """uint8 (B, 3, size, size) batches in order; ``transform(crop, i)`` applied per image first."""
        dataset = ImageFolderViews(
            self.index,
            num_views=1,
            train=False,
            size=self.size,
            eval_resize=self.eval_resize,
            skip_corrupt=self.skip_corrupt,
            transform=transform,
        )
        loader = imagefolder_loader(dataset, batch_size, self.workers, shuffle=False)
        labels: list[torch.Tensor] = []
        try:
            for views, y in loader:  # uint8 (B, 1, 3, S, S), int64 (B,)
                labels.append(y)
                yield views[:, 0]
        finally:
            loader.close()
        self._labels_read = torch.cat(labels)  # a full pass: every image's label as decoded


def folder_run_data(config: Config) -> RunData:
    """The training index and the validation set of an image-folder run, after the same limits,
    fraction and removal of undecodable validation files as in training (DataError naming paths);
    the training files are indexed and fingerprinted, not decoded."""
    indexes = scan_imagefolder_splits(config, DistContext(), verify_train=False)
    d = config.data
    fingerprint = indexes.info.get("fingerprint", {})
    test = FolderTestSet(
        indexes.val, d.image_size, d.eval_resize, d.workers, d.skip_corrupt, fingerprint.get("test", "")
    )
    mean, std = IMAGENET_NORMALIZATION
    return RunData(indexes.train, test, mean, std, indexes.info)  # no validation split: refused for folders


def per_image_seed(seed: int, what: str, index: int) -> int:
    """A 63-bit seed for image ``index`` of the set ``what``: unrelated between sets, seeds and images."""
    digest = hashlib.blake2b(f"{int(seed)}|{what}|{int(index)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


@dataclass(frozen=True)
class FixedSetTransform:
    """The fixed test set ``name`` (:data:`ait.evaluate.testsets.TEST_SETS`) of one crop, its draws
    seeded per image. A picklable callable for the loader's workers."""

    name: str
    size: int
    seed: int = 0

    def __call__(self, crop: torch.Tensor, index: int) -> torch.Tensor:
        recipe = fixed_set_recipe(self.name, self.size)
        if recipe is None:
            return crop
        generator = torch.Generator().manual_seed(per_image_seed(self.seed, self.name, index))
        return augment(crop[None], recipe, generator)[0]


@dataclass(frozen=True)
class CorruptionTransform:
    """One corruption at one severity of one crop (:func:`ait.evaluate.corruptions.corrupt_image`)."""

    name: str
    severity: int
    seed: int = 0
    constants: str = "imagenet"

    def __call__(self, crop: torch.Tensor, index: int) -> torch.Tensor:
        return corrupt_image(crop, self.name, self.severity, self.seed, index, self.constants)


def official_corruption_set(folder: str | Path, name: str, severity: int, test: FolderTestSet) -> FolderTestSet:
    """The official ImageNet-C images of one corruption and severity, ``folder/NAME/SEVERITY/CLASS/*``,
    with the run's classes (a class the run does not know is a DataError naming the folder)."""
    root = Path(folder).expanduser() / name / str(int(severity))
    if not root.is_dir():
        raise DataError(
            f"{str(root)!r}: no such folder; --corruptions-dir expects the ImageNet-C layout "
            "CORRUPTION/SEVERITY/CLASS/<images>"
        )
    index = scan_image_folder(root, classes=test.classes)
    if len(index) == 0:
        raise DataError(f"{str(root)!r}: no images")
    # The official files are crops already: only fit them to the input size, no 256 -> 224 step.
    return replace(test, index=index, eval_resize=test.size, fingerprint="")
