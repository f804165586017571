"""Helpers for the ait.data tests: tiny synthetic dataset files in the official formats.

A uniquely named module (not conftest) so that `import` cannot pick up another package's conftest.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np


def write_npz(path: Path, images: np.ndarray, labels: np.ndarray, **extra) -> Path:
    np.savez(path, images=images, labels=labels, **extra)
    return path


def write_fake_cifar(root: Path, num_classes: int, per_batch: int = 4, seed: int = 0) -> Path:
    """A tiny folder laid out like the official one (bytes keys, like the Python 2 pickles)."""
    rng = np.random.default_rng(seed)
    if num_classes == 10:
        folder = root / "cifar-10-batches-py"
        files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        meta_name, names_key, labels_key = "batches.meta", b"label_names", b"labels"
    else:
        folder = root / "cifar-100-python"
        files = ["train", "test"]
        meta_name, names_key, labels_key = "meta", b"fine_label_names", b"fine_labels"
    folder.mkdir(parents=True)
    for name in files:
        d = {
            b"batch_label": name.encode(),
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            labels_key: [int(v) for v in rng.integers(0, num_classes, per_batch)],
            b"filenames": [f"img{i}.png".encode() for i in range(per_batch)],
        }
        if num_classes == 100:
            d[b"coarse_labels"] = [int(v) for v in rng.integers(0, 20, per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump(d, f)
    meta = {names_key: [f"class{i}".encode() for i in range(num_classes)]}
    if num_classes == 100:
        meta[b"coarse_label_names"] = [f"super{i}".encode() for i in range(20)]
    with open(folder / meta_name, "wb") as f:
        pickle.dump(meta, f)
    return folder


_IDX_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, _IDX_CODES[arr.dtype], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, arr: np.ndarray) -> Path:
    data = idx_bytes(arr)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def write_fake_fashion(root: Path, n_train: int = 12, n_test: int = 5, gz: bool = True) -> Path:
    rng = np.random.default_rng(1)
    root.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{prefix}-images-idx3-ubyte{ext}", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / f"{prefix}-labels-idx1-ubyte{ext}", rng.integers(0, 10, n, dtype=np.uint8))
    return root
