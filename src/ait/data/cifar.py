"""CIFAR-10 / CIFAR-100 from the official python-pickle folders, with optional download.

Expected layout (root may be the folder itself or its parent)::

    root/cifar-10-batches-py/   data_batch_1 .. data_batch_5, test_batch, batches.meta
    root/cifar-100-python/      train, test, meta

Security: the official files are Python pickles, and unpickling an arbitrary pickle can run code.
They are read with a restricted unpickler (:class:`BatchUnpickler`) that admits only what the
official batches contain -- dicts, lists, bytes, strings, numbers and numpy arrays -- and refuses
any other import with the file named, so a crafted ``data_batch_1`` cannot run code. Downloads are
also checked against the published md5.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from ait.data.arrays import ImageArrays
from ait.data.errors import DataError

__all__ = ["CIFAR_ARCHIVES", "CifarArchive", "load_cifar", "download_cifar"]

DOWNLOAD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class CifarArchive:
    """Where one CIFAR variant lives online and what its extracted folder holds."""

    folder: str  # folder name inside the archive (and expected under root)
    url: str
    md5: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    names_key: str  # key of the class-name list in the meta file
    labels_key: str  # key of the label list in each batch file

    @property
    def archive_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


# Module-level so that tests (and mirrors) can replace a URL or checksum.
CIFAR_ARCHIVES: dict[int, CifarArchive] = {
    10: CifarArchive(
        folder="cifar-10-batches-py",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_files=("test_batch",),
        meta_file="batches.meta",
        names_key="label_names",
        labels_key="labels",
    ),
    100: CifarArchive(
        folder="cifar-100-python",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        md5="eb9058c3a382ffc7106e4002c42a8d85",
        train_files=("train",),
        test_files=("test",),
        meta_file="meta",
        names_key="fine_label_names",
        labels_key="fine_labels",  # the 100-class labels; coarse_labels are the 20 superclasses
    ),
}


def _archive(num_classes: int) -> CifarArchive:
    if num_classes not in CIFAR_ARCHIVES:
        raise ValueError(f"num_classes must be one of {sorted(CIFAR_ARCHIVES)}, got {num_classes!r}")
    return CIFAR_ARCHIVES[num_classes]


def _find_folder(root: Path, spec: CifarArchive) -> Path | None:
    """root/<folder> if present, else root itself if it is that folder, else None."""
    if (root / spec.folder).is_dir():
        return root / spec.folder
    if root.name == spec.folder and root.is_dir():
        return root
    return None


def _guidance(root: Path, spec: CifarArchive) -> str:
    return (
        f"expected the folder {root / spec.folder}/ holding "
        f"{', '.join(spec.train_files + spec.test_files + (spec.meta_file,))}. "
        f"Download {spec.url} (md5 {spec.md5}) and either extract it into {root}/ "
        f"or put the archive at {root / spec.archive_name} and run again with data.download=true"
    )


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _safe_members(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    """All members, after rejecting any that could write outside the target folder."""
    members = tar.getmembers()
    for m in members:
        name = PurePosixPath(m.name)
        if name.is_absolute() or m.name.startswith(("/", "\\")) or ".." in name.parts:
            raise DataError(f"{archive}: unsafe path in archive: {m.name!r}")
        if not (m.isfile() or m.isdir()):
            # The official archives hold only files and folders; links could escape the target.
            raise DataError(f"{archive}: unexpected member type in archive: {m.name!r}")
    return members


def _extract(archive: Path, root: Path, spec: CifarArchive) -> Path:
    """Extract `archive` into root via a temporary folder, so a failure leaves no half folder."""
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = _safe_members(tar, archive)
                kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(tmp, members=members, **kwargs)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise DataError(f"{archive}: cannot extract ({exc}); delete it and retry") from exc
        if not (tmp / spec.folder).is_dir():
            raise DataError(f"{archive}: archive has no folder {spec.folder}/")
        target = root / spec.folder
        os.replace(tmp / spec.folder, target)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def download_cifar(root: str | Path, num_classes: int) -> Path:
    """Download (unless already in root), verify the md5 and extract; returns the data folder."""
    spec = _archive(num_classes)
    root = Path(root)
    made = not root.exists()  # a folder made here for a download that fails is removed again
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{root}: cannot create the data folder ({exc})") from exc
    try:
        archive = _verified_archive(root, spec)
    except DataError:
        if made and not any(root.iterdir()):
            root.rmdir()
        raise
    return _extract(archive, root, spec)


def _verified_archive(root: Path, spec: CifarArchive) -> Path:
    """The archive in ``root``, downloaded unless there, its md5 checked; one that fails the check is
    removed if it was downloaded here (one the user placed is left for them to inspect)."""
    archive = root / spec.archive_name
    downloaded = not archive.is_file()
    if downloaded:
        part = archive.with_name(archive.name + ".part")
        try:
            with urllib.request.urlopen(spec.url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
                with open(part, "wb") as f:
                    shutil.copyfileobj(resp, f, length=1 << 20)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            part.unlink(missing_ok=True)
            raise DataError(
                f"{root / spec.folder}: download of {spec.url} failed ({exc}). "
                f"If this machine has no internet access: {_guidance(root, spec)}"
            ) from exc
        os.replace(part, archive)
    digest = _md5(archive)
    if digest != spec.md5:
        if downloaded:
            archive.unlink(missing_ok=True)
        raise DataError(
            f"{archive}: md5 {digest} does not match the published {spec.md5} "
            "(incomplete or wrong download); delete the file and retry"
        )
    return archive


def _str_keys(d: dict) -> dict:
    # encoding="bytes" gives bytes keys for the official (Python 2) pickles; accept str keys too.
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in d.items()}


class BatchUnpickler(pickle.Unpickler):
    """Unpickles what an official CIFAR batch holds and nothing else: the only globals a pickle may
    name are numpy's array reconstruction (ndarray, dtype, _reconstruct, scalar) and the bytes codec
    of Python 3 pickles; dicts, lists, bytes, strings and numbers need none."""

    ALLOWED = frozenset({
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    })  # fmt: skip

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: an official CIFAR batch holds only dicts, lists, bytes, "
                "strings, numbers and numpy arrays (a crafted file can run code this way)"
            )
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"{path}: file not found (is the CIFAR folder complete?)")
    try:
        with open(path, "rb") as f:
            obj = BatchUnpickler(f, encoding="bytes").load()
    except (
        pickle.UnpicklingError,
        EOFError,
        OSError,
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
        IndexError,
    ) as exc:
        if "refused to load" in str(exc):
            raise DataError(f"{path}: {exc}") from None
        raise DataError(f"{path}: cannot unpickle (corrupt or truncated file?): {exc}") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return _str_keys(obj)


def _read_batch(path: Path, labels_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (n, 3, 32, 32) and labels int64 (n,) of one batch file."""
    d = _unpickle(path)
    for key in ("data", labels_key):
        if key not in d:
            raise DataError(f"{path}: missing key {key!r}; found keys {sorted(d)}")
    data = np.asarray(d["data"])
    labels = np.asarray(d[labels_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: 'data' must be uint8 (n, 3072), got {data.dtype} {data.shape}")
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise DataError(f"{path}: {data.shape[0]} images but labels of shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: labels must be integers, got {labels.dtype}")
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:  # checked here, not only in ImageArrays, so the message names the batch file
        i = int(bad[0])
        raise DataError(f"{path}: labels must be in [0, {num_classes}), found {labels[i]} at index {i}")
    # Rows are R (1024), G (1024), B (1024), each row-major 32x32: exactly (3, 32, 32).
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def load_cifar(root: str | Path, num_classes: int, train: bool, download: bool = False) -> ImageArrays:
    """CIFAR-10 (num_classes=10) or CIFAR-100 (100, fine labels) as uint8 (N, 3, 32, 32).

    Train: 50000 images, test: 10000. `root` is the data folder or its parent. With
    download=True a missing folder is downloaded (or an archive already in root is used).
    """
    spec = _archive(num_classes)
    root = Path(root)
    folder = _find_folder(root, spec)
    if folder is None:
        if not download:
            raise DataError(f"{root / spec.folder}: CIFAR-{num_classes} not found; {_guidance(root, spec)}")
        folder = download_cifar(root, num_classes)

    meta = _unpickle(folder / spec.meta_file)
    if spec.names_key not in meta:
        raise DataError(f"{folder / spec.meta_file}: missing key {spec.names_key!r}; found keys {sorted(meta)}")
    classes = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in meta[spec.names_key]]

    files = spec.train_files if train else spec.test_files
    parts = [_read_batch(folder / f, spec.labels_key, len(classes)) for f in files]
    images = torch.from_numpy(np.concatenate([p[0] for p in parts])).contiguous()
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    split = "train" if train else "test"
    return ImageArrays(images, labels, classes, name=f"cifar{num_classes}-{split}", source=str(folder))
