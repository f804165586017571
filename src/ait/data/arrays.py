"""In-memory image datasets: uint8 images (N, C, H, W) + int64 labels (N,), and `.npz` loading."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ait.data.errors import DataError

__all__ = ["DataError", "ImageArrays", "load_npz", "read_class_names"]


@dataclass
class ImageArrays:
    """A whole dataset held in memory (kept as uint8 so that CIFAR-10 train is 150 MB, not 600).

    images: uint8 (N, C, H, W), contiguous. labels: int64 (N,), values in [0, len(classes)).
    classes: class names in label order. name: short dataset name. source: path it came from.
    The constructor validates (see :meth:`validate`) and raises :class:`DataError` on bad input.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str
    source: str = field(default="<memory>")

    def __post_init__(self) -> None:
        self.classes = [str(c) for c in self.classes]
        self.source = str(self.source)
        self.validate()

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        return (
            f"ImageArrays(name={self.name!r}, n={len(self)}, image_shape={self.image_shape}, "
            f"num_classes={self.num_classes}, device={self.images.device}, source={self.source!r})"
        )

    def validate(self) -> ImageArrays:
        """Check dtypes, shapes and label range; raise DataError naming the source. Returns self."""
        src = self.source

        def fail(problem: str) -> DataError:
            return DataError(f"{src}: {problem}")

        images, labels = self.images, self.labels
        if not isinstance(images, torch.Tensor):
            raise fail(f"images must be a torch.Tensor, got {type(images).__name__}")
        if not isinstance(labels, torch.Tensor):
            raise fail(f"labels must be a torch.Tensor, got {type(labels).__name__}")
        if images.dtype != torch.uint8:
            raise fail(f"images must be uint8 (pixel values 0..255), got {images.dtype}")
        if images.dim() != 4:
            raise fail(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
        if not images.is_contiguous():
            raise fail("images must be contiguous (call .contiguous())")
        if labels.dtype != torch.int64:
            raise fail(f"labels must be int64, got {labels.dtype}")
        if labels.dim() != 1:
            raise fail(f"labels must have shape (N,), got {tuple(labels.shape)}")
        n = images.shape[0]
        if labels.shape[0] != n:
            raise fail(f"{n} images but {labels.shape[0]} labels")
        if n == 0:
            raise fail("dataset is empty (N = 0)")
        if images.shape[2] == 0 or images.shape[3] == 0 or images.shape[1] == 0:
            raise fail(f"images have an empty dimension: {tuple(images.shape)}")
        k = self.num_classes
        if k == 0:
            raise fail("no class names")
        if labels.device != images.device:
            raise fail(f"images on {images.device} but labels on {labels.device}")
        bad = (labels < 0) | (labels >= k)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise fail(f"labels must be in [0, {k}), found {int(labels[i])} at index {i}")
        return self

    def subset(self, indices: torch.Tensor | Sequence[int] | np.ndarray) -> ImageArrays:
        """The samples at `indices` (LongTensor (M,), a sequence of ints or a bool mask (N,))."""
        idx = torch.as_tensor(indices)
        if idx.dtype == torch.bool:
            if idx.shape != (len(self),):
                raise ValueError(f"bool mask must have shape ({len(self)},), got {tuple(idx.shape)}")
            idx = idx.nonzero().flatten()
        if idx.numel() == 0:  # before the dtype check: [] becomes a float tensor
            raise ValueError(f"{self.source}: subset with no indices")
        if idx.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
            raise TypeError(f"indices must be integers or a bool mask, got {idx.dtype}")
        idx = idx.to(device=self.images.device, dtype=torch.int64).flatten()
        if bool(((idx < -len(self)) | (idx >= len(self))).any()):
            raise IndexError(f"{self.source}: subset indices out of range for {len(self)} samples")
        return ImageArrays(
            images=self.images[idx].contiguous(),
            labels=self.labels[idx],
            classes=list(self.classes),
            name=self.name,
            source=self.source,
        )

    def to(self, device: torch.device | str, non_blocking: bool = False) -> ImageArrays:
        """A copy on `device` (images stay uint8: 4x less memory and transfer than float)."""
        device = torch.device(device)
        if self.images.device == device and self.labels.device == device:
            return self
        return ImageArrays(
            images=self.images.to(device, non_blocking=non_blocking),
            labels=self.labels.to(device, non_blocking=non_blocking),
            classes=list(self.classes),
            name=self.name,
            source=self.source,
        )


def read_class_names(path: str | Path) -> list[str]:
    """Class names from a text file, one per line (trailing blank lines ignored)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read class names ({exc})") from exc
    names = [line.strip() for line in lines]
    while names and not names[-1]:
        names.pop()
    if not names:
        raise DataError(f"{path}: no class names (expected one name per line)")
    if "" in names:
        raise DataError(f"{path}: blank class name on line {names.index('') + 1}")
    return names


def load_npz(path: str | Path, classes: Sequence[str] | None = None) -> ImageArrays:
    """Load an `.npz` holding uint8 `images` (N, H, W, C) or (N, H, W) and integer `labels` (N,).

    Returns images as (N, C, H, W). Class names: `classes`, else `classes.txt` beside the file,
    else "0".."K-1" with K = max label + 1. Any problem raises DataError naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected an .npz file")
    images, labels = _read_npz(path)
    images = _checked_arrays(path, images, labels)
    names = _class_names(path, classes, int(labels.max()))
    # from_numpy shares memory; permute + contiguous makes the one NCHW copy we keep.
    images_t = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    labels_t = torch.from_numpy(labels.astype(np.int64, copy=False))
    return ImageArrays(images_t, labels_t, names, name=path.stem, source=str(path))


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The `images` and `labels` arrays of an .npz archive, read in full."""
    # np.load is lazy for .npz: arrays are decompressed on access, so a truncated member only
    # fails when read. Keep the whole read inside one try.
    try:
        if not zipfile.is_zipfile(path):  # else numpy takes any other bytes for a pickle, and says so
            raise DataError(f"{path}: not an .npz archive (no zip file: truncated, a single .npy array, text?)")
        data = np.load(path, allow_pickle=False)
        with data:
            keys = sorted(data.files)
            missing = [k for k in ("images", "labels") if k not in keys]
            if missing:
                raise DataError(
                    f"{path}: missing key(s) {missing}; found keys {keys} "
                    "(expected 'images' (N, H, W, C) uint8 and 'labels' (N,) integers)"
                )
            return data["images"], data["labels"]
    except DataError:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, KeyError) as exc:
        raise DataError(f"{path}: cannot read as .npz (corrupt or truncated file?): {exc}") from exc


def _checked_arrays(path: Path, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``images`` as (N, H, W, C) after checking dtypes and shapes against ``labels``; DataError otherwise."""
    if images.dtype != np.uint8:
        raise DataError(
            f"{path}: images must be uint8 (pixel values 0..255), got {images.dtype}; "
            "convert floats in [0, 1] with (x * 255).round().astype(np.uint8)"
        )
    if images.ndim == 3:  # grayscale (N, H, W)
        images = images[:, :, :, None]
    if images.ndim != 4:
        raise DataError(f"{path}: images must have shape (N, H, W, C) or (N, H, W), got {images.shape}")
    if images.shape[-1] > 4 and images.shape[1] in (1, 3, 4):
        raise DataError(
            f"{path}: images look channels-first {images.shape}; expected (N, H, W, C) with C = 1, 3 or 4 last"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: labels must be integers, got {labels.dtype}")
    if labels.ndim != 1:
        raise DataError(f"{path}: labels must have shape (N,), got {labels.shape}")
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{path}: {images.shape[0]} images but {labels.shape[0]} labels")
    if labels.shape[0] == 0:
        raise DataError(f"{path}: dataset is empty (N = 0)")
    if int(labels.min()) < 0:
        raise DataError(f"{path}: labels must be >= 0, found {int(labels.min())}")
    return images


# Without classes.txt the classes are 0 .. the largest label; beyond this many, a label is taken for
# a mistake (one label of 2**40 would otherwise make a list of 2**40 class names).
MAX_UNNAMED_CLASSES = 100_000


def _class_names(path: Path, classes: Sequence[str] | None, max_label: int) -> list[str]:
    """`classes`, else classes.txt beside the file, else "0".."max_label" (refused beyond
    MAX_UNNAMED_CLASSES, from the largest label: nothing is allocated by a label's size). Labels
    beyond given names are refused by :meth:`ImageArrays.validate`, naming the label and its index."""
    if classes is not None:
        return [str(c) for c in classes]
    if (path.parent / "classes.txt").is_file():
        return read_class_names(path.parent / "classes.txt")
    if max_label >= MAX_UNNAMED_CLASSES:
        raise DataError(
            f"{path}: labels go up to {max_label}; without a classes.txt beside the file the classes are 0 .. the "
            f"largest label, and more than {MAX_UNNAMED_CLASSES:,} is taken for a mistake. List the class names in "
            "classes.txt (one per line) if you mean them"
        )
    return [str(i) for i in range(max_label + 1)]
