"""Hugging Face ``datasets`` on disk as in-memory arrays (the optional extra ``ait-train[hf]``).

``data.root`` is either a folder written by ``DatasetDict.save_to_disk`` or a folder of parquet
files, in any of the hub's layouts: ``data/train-00000-of-00001.parquet``, ``train-*.parquet``,
``train.parquet`` or ``train/*.parquet`` (the same for every split). Nothing is downloaded: the
folder is read with ``datasets.load_from_disk`` or with pyarrow, never through the hub.

The image column is an ``Image`` feature (encoded files, decoded here with PIL) or uint8 arrays
(H, W) or (H, W, C); the label column holds integers, with class names from a ``ClassLabel``
feature when it has one. All images of a run must share one size, as every in-memory dataset does.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ait.data.arrays import MAX_UNNAMED_CLASSES, ImageArrays
from ait.data.errors import DataError
from ait.data.pixels import check_eight_bit

__all__ = ["INSTALL", "hf_split_size", "load_hf", "load_hf_splits"]

INSTALL = "pip install 'ait-train[hf]'"
CHUNK = 1024  # rows read from the table at a time: bounded memory beside the output array
EXIF_ORIENTATION = 0x0112  # the tag itself: PIL.ExifTags.Base exists only in newer Pillow than we allow
LAYOUT = (
    "expected a folder written by DatasetDict.save_to_disk (with dataset_dict.json) or a folder of parquet "
    "files named by split (train-*.parquet, data/train-*.parquet, train/*.parquet)"
)


def load_hf(
    root: str | Path, split: str = "train", image_column: str | None = None, label_column: str = "label"
) -> ImageArrays:
    """One split of the dataset at ``root`` as uint8 images (N, C, H, W) and int64 labels (N,).

    image_column None: the dataset's single image column. Without a ClassLabel feature the classes
    are "0" .. the largest label of this split; :func:`load_hf_splits` counts them over all splits.
    """
    return load_hf_splits(root, [split], image_column, label_column)[0]


def load_hf_splits(
    root: str | Path, splits: Sequence[str], image_column: str | None = None, label_column: str = "label"
) -> list[ImageArrays]:
    """The given splits of the dataset at ``root`` (see the module docstring), in that order.

    Every split gets the same class names (a ClassLabel's names, else "0" .. the largest label of
    any split) and the same channels: grayscale images are repeated into RGB where another image or
    split is in colour, as PIL's ``convert("RGB")`` does. Any problem raises DataError naming the split.
    """
    root = Path(root)
    with _quiet(_import_datasets(root)):
        opened = _open_splits(root, splits)
        where = [f"{root} [{s}]" for s in splits]
        image_cols = [_image_column(ds, image_column, w) for ds, w in zip(opened, where)]
        labels = [_labels(ds, label_column, image_col, w) for ds, image_col, w in zip(opened, image_cols, where)]
        classes = _class_names([ds.features[label_column] for ds in opened], labels, where)
        images = [_images(ds, col, w) for ds, col, w in zip(opened, image_cols, where)]
    channels = max(x.shape[1] for x in images)
    return [
        ImageArrays(_with_channels(x, channels), y, classes, name=root.name, source=w)
        for x, y, w in zip(images, labels, where)
    ]


def hf_split_size(root: str | Path, split: str) -> int:
    """The number of rows of one split, read from the files' metadata (no image is decoded)."""
    root = Path(root)
    datasets = _import_datasets(root)
    if _saved_kind(root) is not None:
        with _quiet(datasets):
            return len(_open_splits(root, [split])[0])
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in _parquet_files(root, split))


# ----------------------------------------------------------------------------------------------
# Finding and opening the splits (nothing is decoded yet)


def _import_datasets(root: Path) -> Any:
    try:
        import datasets
    except ImportError:
        raise DataError(f"{root}: data.dataset=hf needs the datasets package: {INSTALL}") from None
    return datasets


@contextmanager
def _quiet(datasets: Any) -> Iterator[None]:
    """datasets' own progress bars off while it reads (they would interleave with the run's log)."""
    was_disabled = datasets.utils.are_progress_bars_disabled()
    datasets.utils.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.utils.enable_progress_bars()


def _saved_kind(root: Path) -> str | None:
    """ "dict" or "dataset" for a save_to_disk folder, None otherwise (DataError if root is no folder)."""
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; {LAYOUT}")
    if (root / "dataset_dict.json").is_file():
        return "dict"
    if (root / "state.json").is_file() and (root / "dataset_info.json").is_file():
        return "dataset"
    return None


def _open_splits(root: Path, splits: Sequence[str]) -> list[Any]:
    """The datasets.Dataset of each split: memory-mapped for save_to_disk, read into memory for parquet."""
    import datasets

    kind = _saved_kind(root)
    if kind == "dataset":
        parent = " (it looks like one split of the DatasetDict in its parent folder)" if _is_dict(root.parent) else ""
        raise DataError(
            f"{root}: a single Dataset saved with save_to_disk, without splits{parent}; a run needs a training "
            "and a test split: save a DatasetDict, e.g. ds.train_test_split(test_size=0.2, seed=0).save_to_disk(...) "
            "gives 'train' and 'test'"
        )
    if kind == "dict":
        try:
            saved = datasets.load_from_disk(str(root), keep_in_memory=False)  # memory-mapped arrow files
        except (OSError, ValueError) as exc:
            raise DataError(f"{root}: cannot read the saved DatasetDict ({exc})") from exc
        missing = [s for s in splits if s not in saved]
        if missing:
            raise DataError(f"{root}: no split {missing[0]!r}; its splits are {sorted(saved)}")
        return [saved[s] for s in splits]
    return [_read_parquet(_parquet_files(root, s), datasets) for s in splits]


def _is_dict(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file()


def _parquet_files(root: Path, split: str) -> list[Path]:
    """The parquet files of ``split``: under root, else under root/data (the hub's layout)."""
    for base in (root, root / "data"):
        files = [base / f"{split}.parquet", *base.glob(f"{split}-*.parquet"), *(base / split).rglob("*.parquet")]
        files = sorted({f for f in files if f.is_file()})
        if files:
            return files
    found = _parquet_splits(root)
    if found:
        raise DataError(f"{root}: no parquet files of split {split!r}; its splits are {found}")
    raise DataError(f"{root}: no dataset_dict.json and no parquet files; {LAYOUT}")


def _parquet_splits(root: Path) -> list[str]:
    """Split names of the parquet files under root and root/data (a file's name up to '-' or '.', or its folder)."""
    names = set()
    for base in (root, root / "data"):
        names.update(re.split(r"[-.]", f.name, maxsplit=1)[0] for f in base.glob("*.parquet"))
        if base.is_dir():
            names.update(
                d.name for d in base.iterdir() if d.is_dir() and d.name != "data" and any(d.rglob("*.parquet"))
            )
    return sorted(names)


def _read_parquet(files: list[Path], datasets: Any) -> Any:
    """One in-memory Dataset of the parquet files (features from the files' Hugging Face metadata)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets.table import InMemoryTable

    tables = []
    for f in files:
        try:
            tables.append(pq.read_table(f))
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"{f}: cannot read as parquet ({exc})") from exc
    for f, t in zip(files[1:], tables[1:]):
        if t.schema.remove_metadata() != tables[0].schema.remove_metadata():
            raise DataError(f"{f}: its columns {t.schema.names} or their types differ from those of {files[0]}")
    # The in-memory table keeps the data out of the datasets cache (load_dataset("parquet") copies it there).
    return datasets.Dataset(InMemoryTable(pa.concat_tables(tables)))


# ----------------------------------------------------------------------------------------------
# Columns and labels


def _describe(features: dict[str, Any]) -> str:
    """ "img (Image), label (ClassLabel), x (List)": the columns as error messages list them."""
    return ", ".join(f"{name} ({type(f).__name__})" for name, f in features.items())


def _is_image(ds: Any, column: str) -> bool:
    """An Image feature, or the struct of encoded bytes it is stored as (parquet without metadata)."""
    import datasets
    import pyarrow as pa

    if isinstance(ds.features[column], datasets.Image):
        return True
    kind = ds.data.schema.field(column).type
    return pa.types.is_struct(kind) and kind.get_field_index("bytes") >= 0


def _image_column(ds: Any, name: str | None, where: str) -> str:
    """``name`` if the dataset has it, else its single image column; DataError listing the columns."""
    if name is not None:
        if name not in ds.features:
            raise DataError(
                f"{where}: no column {name!r} (data.image_column); its columns are {_describe(ds.features)}"
            )
        return name
    found = [c for c in ds.features if _is_image(ds, c)]
    if len(found) != 1:
        problem = "no image column" if not found else f"{len(found)} image columns"
        raise DataError(
            f"{where}: {problem}; name the column of the images with data.image_column. Its columns are "
            f"{_describe(ds.features)}"
        )
    return found[0]


def _labels(ds: Any, column: str, image_column: str, where: str) -> torch.Tensor:
    """The label column as int64 (N,): integers >= 0, no missing value; DataError naming the problem."""
    import pyarrow as pa

    if column not in ds.features:
        raise DataError(f"{where}: no column {column!r} (data.label_column); its columns are {_describe(ds.features)}")
    if column == image_column:
        raise DataError(f"{where}: data.label_column {column!r} is the image column")
    values = ds.select_columns([column]).with_format("arrow")[:].column(column)
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        raise DataError(
            f"{where}: labels in {column!r} are strings; encode them as a ClassLabel first, e.g. "
            f"ds = ds.class_encode_column({column!r})"
        )
    if not pa.types.is_integer(values.type):
        raise DataError(f"{where}: labels in {column!r} must be integers, got {values.type}")
    if values.null_count:
        i = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{where}: label {i} is missing (null)")
    labels = values.to_numpy().astype(np.int64)  # a copy: arrow's buffers are read-only
    if len(labels) and labels.min() < 0:
        i = int(np.flatnonzero(labels < 0)[0])
        raise DataError(
            f"{where}: labels must be >= 0, found {int(labels[i])} at index {i} (-1 is ClassLabel's 'no label': "
            "a split without labels cannot be trained or tested on)"
        )
    return torch.from_numpy(labels)


def _class_names(features: list[Any], labels: list[torch.Tensor], where: list[str]) -> list[str]:
    """A ClassLabel's names (the same in every split), else "0" .. the largest label of any split."""
    import datasets

    named = [(f.names, w) for f, w in zip(features, where) if isinstance(f, datasets.ClassLabel)]
    if named:
        names, first = named[0]
        for other, w in named[1:]:
            if other != names:
                raise DataError(f"{w}: its ClassLabel names {other} differ from those of {first}, {names}")
        return list(names)  # ImageArrays refuses a label beyond them, naming its index
    top = max((int(y.max()) for y in labels if len(y)), default=0)
    if top >= MAX_UNNAMED_CLASSES:
        raise DataError(
            f"{where[0]}: labels go up to {top}; without a ClassLabel feature the classes are 0 .. the largest label, "
            f"and more than {MAX_UNNAMED_CLASSES:,} is taken for a mistake. Cast the column to a ClassLabel"
        )
    return [str(i) for i in range(top + 1)]


# ----------------------------------------------------------------------------------------------
# Images


def _images(ds: Any, column: str, where: str) -> torch.Tensor:
    """The image column as uint8 (N, C, H, W), decoded CHUNK rows at a time into one array."""
    rows = _encoded_rows(ds, column, where) if _is_image(ds, column) else _array_rows(ds, column, where)
    out: np.ndarray | None = None  # (N, C, H, W), allocated from the first image's shape
    for i, image in enumerate(rows):
        image = image.transpose(2, 0, 1)  # (C, H, W): written straight into the layout the views read
        if out is None:
            out = np.empty((len(ds), *image.shape), np.uint8)
        image, out = _fit(image, out, i, where)
        out[i] = image
    if out is None:
        raise DataError(f"{where}: the split is empty (N = 0)")
    return torch.from_numpy(out)


def _fit(image: np.ndarray, out: np.ndarray, i: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(image (C, H, W), out (N, C, H, W)) with the same channels, gray repeated into RGB for either;
    DataError if the sizes differ."""
    if image.shape == out.shape[1:]:
        return image, out
    if image.shape[1:] == out.shape[2:] and {image.shape[0], out.shape[1]} == {1, 3}:
        if image.shape[0] == 1:
            return np.repeat(image, 3, axis=0), out
        return image, np.repeat(out, 3, axis=1)  # colour after gray: once per split at most
    c, h, w = image.shape
    raise DataError(
        f"{where}: image {i} is {h}x{w} with {c} channel(s) but image 0 is {out.shape[2]}x{out.shape[3]} with "
        f"{out.shape[1]}; in-memory data needs one size: resize the images first, e.g. "
        "ds.map(lambda e: {'img': e['img'].resize((32, 32))})"
    )


def _encoded_rows(ds: Any, column: str, where: str) -> Iterator[np.ndarray]:
    """Each image file of an Image column decoded by PIL, as uint8 (H, W, 1) or (H, W, 3)."""
    import datasets

    if isinstance(ds.features[column], datasets.Image):
        ds = ds.cast_column(column, datasets.Image(decode=False))  # the stored bytes: decoded below, our way
    table = ds.select_columns([column]).with_format("arrow")
    i = 0
    for batch in table.iter(batch_size=CHUNK):
        for item in batch.column(column).to_pylist():
            yield _decode(item, i, where)
            i += 1


def _decode(item: dict | None, i: int, where: str) -> np.ndarray:
    """One stored image ({"bytes", "path"}) as uint8 (H, W, C): grayscale as 1 channel, others as RGB."""
    import PIL.Image
    import PIL.ImageOps

    data, path = (item or {}).get("bytes"), (item or {}).get("path")
    if data is None and (path is None or "://" in path):  # a remote path would need the network
        raise DataError(f"{where}: image {i} has no stored bytes (path {path!r}); embed the files before saving")
    try:
        image = PIL.Image.open(io.BytesIO(data) if data is not None else path)
        image.load()
    except (OSError, ValueError, PIL.Image.DecompressionBombError) as exc:
        raise DataError(f"{where}: image {i} cannot be decoded ({exc})") from exc
    # As datasets' own Image decoding does: a photo stored sideways is turned upright.
    if image.getexif().get(EXIF_ORIENTATION) is not None:
        image = PIL.ImageOps.exif_transpose(image)
    check_eight_bit(image.mode, f"{where}: image {i}")
    mode = "L" if image.mode in ("1", "L", "LA") else "RGB"
    if image.mode != mode:  # convert() copies even when the mode is already right
        image = image.convert(mode)
    pixels = np.asarray(image)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def _array_rows(ds: Any, column: str, where: str) -> Iterator[np.ndarray]:
    """Each row of a column of uint8 arrays (H, W) or (H, W, C), as (H, W, C)."""
    dtype = _value_dtype(ds.features[column])
    if dtype != "uint8":
        raise DataError(
            f"{where}: column {column!r} holds {dtype or type(ds.features[column]).__name__}, expected an Image "
            "feature or uint8 arrays (H, W) or (H, W, C); name the image column with data.image_column"
        )
    i = 0
    for batch in ds.select_columns([column]).with_format("numpy").iter(batch_size=CHUNK):
        for row in batch[column]:  # (B, ...) int64 from datasets' numpy formatter, or an object array of rows
            pixels = np.asarray(row).astype(np.uint8)  # exact: the stored values are uint8
            if pixels.ndim == 2:
                pixels = pixels[:, :, None]
            if pixels.ndim != 3:
                raise DataError(f"{where}: image {i} has shape {pixels.shape}, expected (H, W) or (H, W, C)")
            yield pixels
            i += 1


def _value_dtype(feature: Any) -> str | None:
    """The innermost value type of an array feature (List, Sequence, Array2D/3D), or None."""
    while True:
        dtype = getattr(feature, "dtype", None)
        if isinstance(dtype, str) and not hasattr(feature, "feature"):
            return dtype
        feature = getattr(feature, "feature", None)
        if feature is None:
            return None


def _with_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 (N, C, H, W) with ``channels`` channels where a grayscale split is repeated into RGB;
    other differences are left to the splits' own check (ait.runtime.rundata.check_splits_match)."""
    if images.shape[1] == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    return images
