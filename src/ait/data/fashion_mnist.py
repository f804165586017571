"""Fashion-MNIST from IDX files (plain or gzipped), e.g. Debian's `dataset-fashion-mnist`."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from ait.data.arrays import ImageArrays
from ait.data.errors import DataError

__all__ = ["DEFAULT_ROOT", "FASHION_MNIST_CLASSES", "load_fashion_mnist", "read_idx"]

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist/"

FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

# IDX type code (third magic byte) -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read (corrupt or truncated file?): {exc}") from exc


def read_idx(path: str | Path) -> np.ndarray:
    """Array stored in an IDX file (`.gz` decompressed), native byte order, shape from the header.

    Header: two zero bytes, a type code, the number of dimensions d, then d big-endian uint32 sizes.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: truncated: {len(raw)} bytes, no IDX header")
    zero, code, ndim = int.from_bytes(raw[0:2], "big"), raw[2], raw[3]
    magic = int.from_bytes(raw[0:4], "big")
    if zero != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise DataError(f"{path}: not an IDX file (bad magic number 0x{magic:08X})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated: header needs {header} bytes, file has {len(raw)}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header
    if found < expected:
        raise DataError(f"{path}: truncated: shape {shape} needs {expected} data bytes, found {found}")
    if found > expected:
        raise DataError(f"{path}: {found - expected} unexpected bytes after the data of shape {shape}")
    arr = np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    # astype copies: the result is writable and owns its memory (frombuffer views are read-only).
    return arr.reshape(shape).astype(dtype.newbyteorder("="))


def _find(root: Path, stem: str) -> Path:
    """root/stem or root/stem.gz (also the `train-images.idx3-ubyte` spelling of some mirrors)."""
    alt = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", alt, alt + ".gz"):
        if (root / name).is_file():
            return root / name
    raise DataError(f"{root / stem}: file not found (nor {stem}.gz) in {root}")


def load_fashion_mnist(root: str | Path | None = None, train: bool = True) -> ImageArrays:
    """Fashion-MNIST as uint8 (N, 1, 28, 28): 60000 train or 10000 test images, 10 classes.

    root defaults to /usr/share/datasets/fashion-mnist/ (Debian package dataset-fashion-mnist).
    """
    root = Path(root if root is not None else DEFAULT_ROOT)
    if not root.is_dir():
        raise DataError(
            f"{root}: Fashion-MNIST folder not found; install it with "
            "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu) or pass the folder holding "
            "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] "
            "and t10k-labels-idx1-ubyte[.gz]"
        )
    prefix = "train" if train else "t10k"
    images_path = _find(root, f"{prefix}-images-idx3-ubyte")
    labels_path = _find(root, f"{prefix}-labels-idx1-ubyte")
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    # Magic numbers 0x00000803 (uint8, 3 dims) and 0x00000801 (uint8, 1 dim).
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DataError(
            f"{images_path}: expected uint8 images (N, H, W) (magic 0x00000803), got {images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(
            f"{labels_path}: expected uint8 labels (N,) (magic 0x00000801), got {labels.dtype} {labels.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{images_path}: {images.shape[0]} images but {labels_path.name} has {labels.shape[0]} labels")
    if labels.size and int(labels.max()) >= len(FASHION_MNIST_CLASSES):
        i = int(np.argmax(labels >= len(FASHION_MNIST_CLASSES)))
        raise DataError(f"{labels_path}: labels must be in [0, 10), found {labels[i]} at index {i}")
    images_t = torch.from_numpy(images).unsqueeze(1).contiguous()  # (N, 1, 28, 28)
    labels_t = torch.from_numpy(labels.astype(np.int64))
    split = "train" if train else "test"
    return ImageArrays(
        images_t, labels_t, list(FASHION_MNIST_CLASSES), name=f"fashion_mnist-{split}", source=str(images_path)
    )
