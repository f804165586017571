"""Load a dataset by name; per-dataset normalisation constants."""

from __future__ import annotations

from pathlib import Path

import torch

from ait.data.arrays import ImageArrays, load_npz
from ait.data.cifar import load_cifar
from ait.data.errors import DataError
from ait.data.fashion_mnist import load_fashion_mnist
from ait.data.hf import load_hf

__all__ = ["DATASETS", "NORMALIZATION", "channel_stats", "load_dataset", "normalization_for"]

DATASETS = ("cifar10", "cifar100", "fashion_mnist", "npz", "hf")

# Per-channel (mean, std) of pixel values scaled to [0, 1]; CIFAR values as in the authors' code.
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.491, 0.482, 0.447), (0.247, 0.243, 0.262)),
    "cifar100": ((0.507, 0.487, 0.441), (0.267, 0.256, 0.276)),
    "fashion_mnist": ((0.286,), (0.353,)),
}


def load_dataset(name: str, root: str | Path | None, train: bool, download: bool = False) -> ImageArrays:
    """Load dataset `name` (one of DATASETS) as uint8 (N, C, H, W) images.

    root: cifar10/cifar100: the folder holding (or to receive) the python-pickle folder, or that
    folder itself. fashion_mnist: the IDX folder (None: /usr/share/datasets/fashion-mnist/).
    npz: the .npz file itself (train is then ignored); or a folder, from which train=True picks
    the single ``train*.npz`` and train=False ``test.npz``. hf: a Hugging Face DatasetDict saved with
    ``save_to_disk`` or a folder of parquet files; train picks split "train" or "test", the image
    column is the single Image column, the labels are "label" (:func:`ait.data.hf.load_hf` names
    others). download applies to CIFAR only.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if name in ("cifar10", "cifar100"):
        if root is None:
            raise DataError(  # a config's default dataset: the user may not have named it (exit 2)
                f"data.root: {name} needs a folder that holds (or, with data.download, will hold) its dataset folder"
            )
        return load_cifar(root, 10 if name == "cifar10" else 100, train=train, download=download)
    if name == "fashion_mnist":
        return load_fashion_mnist(root, train=train)
    if name == "hf":
        if root is None:
            raise DataError("data.root: hf needs a folder written by save_to_disk, or a folder of parquet files")
        return load_hf(root, "train" if train else "test")
    if root is None:
        raise DataError("data.root: npz needs the path of the .npz file")
    return load_npz(_npz_file(Path(root), train))


def _npz_file(root: Path, train: bool) -> Path:
    if not root.is_dir():
        return root  # a file path; load_npz reports if it is missing
    if not train:
        return root / "test.npz"
    found = sorted(root.glob("train*.npz"))
    if len(found) != 1:
        raise DataError(
            f"{root}: expected exactly one train*.npz for train=True, found "
            f"{[p.name for p in found] or 'none'}; pass the file path instead"
        )
    return found[0]


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images (N, C, H, W), scaled to [0, 1].

    Computed from per-chunk histograms, so memory stays small for large N.
    """
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[0] == 0:
        raise ValueError(f"images must be non-empty uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    c = images.shape[1]
    # A per-channel histogram of the 256 pixel values is exact and faster than float sums.
    hist = torch.zeros(c, 256, dtype=torch.int64)
    for i in range(0, images.shape[0], chunk):
        x = images[i : i + chunk].transpose(0, 1).reshape(c, -1)  # (C, chunk * H * W)
        for ch in range(c):
            hist[ch] += torch.bincount(x[ch].long(), minlength=256).cpu()
    values = torch.arange(256, dtype=torch.float64) / 255.0
    p = hist.to(torch.float64) / hist.sum(dim=1, keepdim=True)
    mean = (p * values).sum(dim=1)
    var = (p * (values - mean[:, None]) ** 2).sum(dim=1)
    return tuple(mean.tolist()), tuple(var.clamp_min(0.0).sqrt().tolist())


def normalization_for(name: str, arrays: ImageArrays) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """NORMALIZATION[name] when known (and matching the channel count), else channel_stats."""
    stats = NORMALIZATION.get(name)
    if stats is not None and len(stats[0]) == arrays.images.shape[1]:
        return stats
    return channel_stats(arrays.images)
