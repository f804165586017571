"""ImageNet-style folders of image files (``root/<class>/**/<image>``), decoded per sample with Pillow
and turned into the paper's training views / evaluation crops (sec. 4.1).

With ``imagenet/{train,val}/<class>/<images>`` (here 3 classes of 4 training images)::

    >>> from ait.data import ImageFolderViews, imagefolder_loader, scan_image_folder
    >>> train_index = scan_image_folder("imagenet/train")
    >>> val_index = scan_image_folder("imagenet/val", classes=train_index.classes)
    >>> train = ImageFolderViews(train_index, num_views=2, train=True, seed=0)
    >>> loader = imagefolder_loader(train, batch_size=4, workers=0, seed=0, drop_last=True)  # e.g. workers=8
    >>> for epoch in range(2):
    ...     loader.set_epoch(epoch)
    ...     for views, labels in loader:  # uint8 (B, 2, 3, 224, 224), int64 (B,)
    ...         pass
    >>> tuple(views.shape), views.dtype, len(train_index), train_index.classes
    ((4, 2, 3, 224, 224), torch.uint8, 12, ['a', 'b', 'c'])

Recipe (torchvision's "ImageNet" transforms, which the paper follows):

* training view: RandomResizedCrop(224, scale=(0.08, 1), ratio=(3/4, 4/3)) then horizontal flip
  with p = 0.5; every view of a sample draws its own crop and flip.
* evaluation: resize the shorter side to 256, centre crop 224. The paper writes "resized to
  256x256"; we follow the practice it cites ([4], torchvision), which keeps the aspect ratio -- a
  square 256x256 resize would distort every non-square image.

Resizing is Pillow's antialiased bilinear filter, as torchvision's PIL path. Outputs are uint8
(3, H, W) tensors, not normalised: the trainer normalises on the device with
:data:`IMAGENET_NORMALIZATION`, which keeps the host-to-device copy 4x smaller than float32.

Randomness: each view's crop and flip come from a numpy Generator seeded by (seed, epoch, sample,
view) alone, so a batch is identical whatever the number of workers or which worker loads it.
"""

from __future__ import annotations

import functools
import math
import os
import signal
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ait.data.errors import DataError
from ait.data.fractions import stratified_subset
from ait.data.pixels import check_eight_bit
from ait.data.sampler import EpochSampler

__all__ = [
    "IMAGENET_NORMALIZATION",
    "IMG_EXTENSIONS",
    "EpochKeyBatchSampler",
    "ImageFolderIndex",
    "ImageFolderLoader",
    "ImageFolderViews",
    "center_crop_box",
    "eval_transform",
    "fraction_subset",
    "imagefolder_loader",
    "load_rgb",
    "random_resized_crop_box",
    "scan_image_folder",
    "train_view",
    "verify_images",
]

# Per-channel (mean, std) of ImageNet train pixels scaled to [0, 1] (the torchvision constants).
IMAGENET_NORMALIZATION: tuple[tuple[float, float, float], tuple[float, float, float]] = (
    (0.485, 0.456, 0.406),
    (0.229, 0.224, 0.225),
)

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

_BILINEAR = Image.Resampling.BILINEAR


# --------------------------------------------------------------------------------------------
# Scanning


@dataclass
class ImageFolderIndex:
    """The files of an image folder. paths: (N,) in class order, sorted within a class. labels:
    int64 (N,) indices into ``classes``. classes: class folder names (label order). root: the
    folder scanned. ignored: files skipped because of their extension."""

    paths: list[str]
    labels: torch.Tensor
    classes: list[str]
    root: str
    ignored: int = 0

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_counts(self) -> torch.Tensor:
        """int64 (num_classes,): images per class (0 for an empty class)."""
        return torch.bincount(self.labels, minlength=self.num_classes)

    def subset(self, indices: Sequence[int] | torch.Tensor) -> ImageFolderIndex:
        """A new index with the samples at ``indices`` (in that order); classes are kept."""
        idx = torch.as_tensor(indices, dtype=torch.int64).flatten()
        return ImageFolderIndex(
            [self.paths[i] for i in idx.tolist()],
            self.labels[idx].clone(),
            list(self.classes),
            self.root,
            self.ignored,
        )

    def without(self, paths: Iterable[str]) -> ImageFolderIndex:
        """A new index without ``paths`` (e.g. the output of :func:`verify_images`)."""
        drop = set(map(str, paths))
        return self.subset([i for i, p in enumerate(self.paths) if p not in drop])


def scan_image_folder(
    root: str | os.PathLike,
    classes: Sequence[str] | None = None,
    extensions: Sequence[str] = IMG_EXTENSIONS,
) -> ImageFolderIndex:
    """Index ``root/<class>/**/<file>`` for files whose extension is in ``extensions``
    (case-insensitive); other files are counted in ``ignored``. Class folders are the sorted
    non-hidden subfolders (torchvision's order; hidden ones are skipped); subfolders of a class
    folder are searched too.

    classes: None uses the sorted class folder names. For a validation split pass the training
    index's classes so labels agree: a class folder of ``root`` not in ``classes`` is a DataError;
    a class in ``classes`` with no folder or no images is kept (labels stay stable) with a warning.
    Raises DataError naming ``root`` when it is missing, has no class folders or no images.
    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise DataError(f"{root_path}: not a directory (expected <root>/<class>/<image files>)")
    exts = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
    entries = list(os.scandir(root_path))
    # Hidden folders (.ipynb_checkpoints, .cache, ...) are not classes: one would shift every label.
    folders = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    ignored = sum(1 for e in entries if not e.is_dir())  # stray top-level files
    class_list = _class_list(root_path, folders, classes)
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(class_list):
        found, skipped = _files_of_class(root_path / name, exts)
        ignored += skipped
        if not found:
            warnings.warn(
                f"{root_path / name}: no images for class {name!r}; the class is kept so label indices match "
                "the other split",
                stacklevel=2,
            )
        paths += found
        labels += [label] * len(found)
    if not paths:
        raise DataError(
            f"{root_path}: no image files ({', '.join(exts)}) in any of the {len(class_list)} class folders"
        )
    return ImageFolderIndex(paths, torch.tensor(labels, dtype=torch.int64), class_list, str(root_path), ignored)


def _class_list(root: Path, folders: list[str], classes: Sequence[str] | None) -> list[str]:
    """The classes in label order: the sorted class folders, or ``classes`` when given (then a
    folder of ``root`` that is not among them is a DataError)."""
    if classes is None:
        if not folders:
            raise DataError(f"{root}: no class folders (expected <root>/<class>/<image files>)")
        return folders
    class_list = [str(c) for c in classes]
    if len(set(class_list)) != len(class_list):
        raise ValueError("classes contains duplicates")
    unknown = sorted(set(folders) - set(class_list))
    if unknown:
        shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise DataError(
            f"{root}: {len(unknown)} class folder(s) not among the {len(class_list)} "
            f"given classes (e.g. the training split's): {shown}"
        )
    return class_list


def _files_of_class(folder: Path, exts: tuple[str, ...]) -> tuple[list[str], int]:
    """(sorted image paths under ``folder``, files skipped for their extension); nothing if it is absent."""
    found: list[str] = []
    ignored = 0
    if folder.is_dir():
        # followlinks: ImageNet copies are often assembled from symlinked folders.
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
            dirnames.sort()
            for fname in filenames:
                if fname.lower().endswith(exts):
                    found.append(os.path.join(dirpath, fname))
                else:
                    ignored += 1
    return sorted(found), ignored


def fraction_subset(index: ImageFolderIndex, fraction: float, seed: int) -> ImageFolderIndex:
    """Class-balanced subset (paper Table 4): round(fraction * n_c) images of each class c (at
    least 1), chosen by ``seed``; see :func:`ait.data.stratified_subset`. Classes are kept."""
    return index.subset(stratified_subset(index.labels, fraction, seed))


# --------------------------------------------------------------------------------------------
# Decoding


def load_rgb(path: str) -> Image.Image:
    """Decode ``path`` fully to an RGB image; DataError naming the file if that fails."""
    try:
        with open(path, "rb") as f:
            img = Image.open(f)
            check_eight_bit(img.mode, path)
            return img.convert("RGB")  # convert() loads the pixels, so truncation shows here
    except DataError:
        raise
    except Exception as err:  # Pillow raises OSError, ValueError, SyntaxError, struct.error, ...
        # Pillow's "cannot identify image file <_io.BufferedReader name='...'>" names the file again
        detail = f"{type(err).__name__}" if str(path) in str(err) else f"{type(err).__name__}: {err}"
        raise DataError(f"{path}: cannot decode image ({detail})") from err


def _is_bad(path: str) -> bool:
    try:
        load_rgb(path)
    except DataError:
        return True
    return False


def verify_images(index: ImageFolderIndex, workers: int = 0) -> list[str]:
    """Decode every file of ``index`` once; return the paths that fail, sorted.

    Meant to run once before training so a run can log the bad files (and drop them with
    :meth:`ImageFolderIndex.without`) instead of discovering them per worker. ``workers`` > 0
    decodes in that many processes. Full decoding, since Image.verify() misses truncated data.
    """
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers!r}")
    if workers == 0:
        bad = [p for p in index.paths if _is_bad(p)]
    else:
        chunk = max(1, min(256, len(index.paths) // (workers * 4) or 1))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            flags = list(pool.map(_is_bad, index.paths, chunksize=chunk))
        bad = [p for p, b in zip(index.paths, flags) if b]
    return sorted(bad)


# --------------------------------------------------------------------------------------------
# Transforms (torchvision's algorithms, on PIL images)


def random_resized_crop_box(
    width: int,
    height: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a RandomResizedCrop box in a ``width`` x ``height`` image.

    torchvision's algorithm: up to 10 tries of area ~ U(scale) * W * H and log aspect (w/h) ~
    U(log ratio); the first box that fits wins, placed uniformly. Otherwise the centred largest
    box with the aspect ratio clamped to ``ratio`` (the whole image when it is within range).
    """
    area = width * height
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def train_view(
    img: Image.Image,
    rng: np.random.Generator,
    size: int = 224,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: bool = True,
) -> Image.Image:
    """One training view: RandomResizedCrop to ``size`` x ``size`` then, if ``flip``, a
    horizontal flip with p = 0.5 (crop drawn first, then the flip, from ``rng``)."""
    top, left, h, w = random_resized_crop_box(img.width, img.height, rng, scale, ratio)
    # crop-then-resize (not resize(box=...)) so edge pixels match torchvision exactly.
    out = img.crop((left, top, left + w, top + h)).resize((size, size), _BILINEAR)
    if flip and rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return out


def center_crop_box(width: int, height: int, size: int) -> tuple[int, int, int, int]:
    """(top, left, h, w) of torchvision's CenterCrop(size) in a ``width`` x ``height`` image
    (requires size <= both sides)."""
    return int(round((height - size) / 2.0)), int(round((width - size) / 2.0)), size, size


def eval_transform(img: Image.Image, size: int = 224, resize: int | None = None) -> Image.Image:
    """Resize the shorter side to ``resize`` (default round(size / 0.875): 256 for 224), keeping
    the aspect ratio, then centre crop ``size`` x ``size``."""
    resize = int(round(size / 0.875)) if resize is None else int(resize)
    if resize < size:
        raise ValueError(f"resize ({resize}) must be >= size ({size})")
    w, h = img.size
    # torchvision's rule: the long side is truncated, not rounded.
    if w <= h:
        new_w, new_h = resize, int(resize * h / w)
    else:
        new_w, new_h = int(resize * w / h), resize
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), _BILINEAR)
    top, left, ch, cw = center_crop_box(new_w, new_h, size)
    return img.crop((left, top, left + cw, top + ch))


def _to_chw_uint8(img: Image.Image) -> torch.Tensor:
    # np.array (a copy) rather than asarray: the tensor must own writable memory.
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)


# --------------------------------------------------------------------------------------------
# Dataset


class _PathTable:
    """Paths packed into one byte buffer + offsets.

    A list of 1.28M Python strings in a forked DataLoader worker is slowly copied page by page
    (reading an object writes its refcount), multiplying resident memory by the worker count;
    two numpy arrays are never written to, so the pages stay shared.
    """

    def __init__(self, paths: Sequence[str]) -> None:
        encoded = [os.fsencode(p) for p in paths]
        self.offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=self.offsets[1:])
        self.buffer = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        return os.fsdecode(self.buffer[self.offsets[i] : self.offsets[i + 1]].tobytes())


class ImageFolderViews(Dataset):
    """Samples of an :class:`ImageFolderIndex` as ``num_views`` uint8 views.

    ``dataset[i]`` -> (views uint8 (V, 3, size, size), label int). ``dataset[(epoch, i)]`` does
    the same for an explicit epoch; :func:`imagefolder_loader` uses those keys so persistent
    workers (which hold their own copy of the dataset) need no :meth:`set_epoch` call.

    train=True: each view is an independent :func:`train_view`, drawn from a numpy Generator
    seeded by (seed, epoch, i, view). train=False: ``num_views`` must be 1; the view is
    :func:`eval_transform`, independent of seed and epoch, then ``transform(view, i)`` when given
    (uint8 (3, size, size) -> the same: a fixed test set's augmentation or a corruption, made in
    the workers; it must be picklable).

    Corrupt files: DataError naming the file, or with ``skip_corrupt`` the next index (i + 1,
    wrapping) that decodes is returned instead -- its label, but the random stream of key i --
    and the bad path is appended to ``skipped``. ``skipped`` is per process: with DataLoader
    workers each worker has its own copy, and the main process sees none of them. Run
    :func:`verify_images` once up front to log (and drop) bad files instead.
    """

    def __init__(
        self,
        index: ImageFolderIndex,
        num_views: int = 1,
        train: bool = True,
        size: int = 224,
        seed: int = 0,
        skip_corrupt: bool = False,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip: bool = True,
        eval_resize: int | None = None,
        transform: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
    ) -> None:
        if len(index) == 0:
            raise DataError(f"{index.root}: the index has no images")
        if int(num_views) < 1:
            raise ValueError(f"num_views must be >= 1, got {num_views!r}")
        if not train and int(num_views) != 1:
            raise ValueError(f"evaluation is deterministic: num_views must be 1, got {num_views}")
        if train and transform is not None:
            raise ValueError("transform applies to evaluation views only (train=False)")
        if int(size) < 1:
            raise ValueError(f"size must be >= 1, got {size!r}")
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f"scale must satisfy 0 < lo <= hi, got {scale!r}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < lo <= hi, got {ratio!r}")
        self._paths = _PathTable(index.paths)
        self.labels = index.labels.clone()
        self.classes = list(index.classes)
        self.root = index.root
        self.num_views = int(num_views)
        self.train = bool(train)
        self.size = int(size)
        self.seed = int(seed) % (1 << 64)  # SeedSequence wants a non-negative int
        self.skip_corrupt = bool(skip_corrupt)
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.flip = bool(flip)
        self.eval_resize = eval_resize
        self.transform = transform
        self.epoch = 0
        self.skipped: list[str] = []
        self._bad: set[int] = set()  # indices known to be corrupt (this process)

    def __len__(self) -> int:
        return len(self._paths)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def path(self, i: int) -> str:
        return self._paths[i]

    def set_epoch(self, epoch: int) -> None:
        """Epoch used by integer keys (in this process only; see the class docstring)."""
        if int(epoch) < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch!r}")
        self.epoch = int(epoch)

    def view_rng(self, epoch: int, i: int, view: int) -> np.random.Generator:
        """The Generator for view ``view`` of sample ``i`` in ``epoch``."""
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, int(epoch), int(i), int(view)])))

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        if isinstance(key, tuple):
            epoch, i = int(key[0]), int(key[1])
        else:
            epoch, i = self.epoch, int(key)
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {n} samples")
        i %= n
        src, img = self._decode(i)
        if self.train:
            views = [
                _to_chw_uint8(train_view(img, self.view_rng(epoch, i, v), self.size, self.scale, self.ratio, self.flip))
                for v in range(self.num_views)
            ]
        else:
            view = _to_chw_uint8(eval_transform(img, self.size, self.eval_resize))
            views = [view if self.transform is None else self.transform(view, i)]
        return torch.stack(views), int(self.labels[src])

    def _decode(self, i: int) -> tuple[int, Image.Image]:
        """(index actually decoded, RGB image) for sample i, skipping corrupt files if asked."""
        n = len(self)
        for step in range(n):
            j = (i + step) % n
            if j in self._bad:
                continue
            try:
                return j, load_rgb(self._paths[j])
            except DataError:
                if not self.skip_corrupt:
                    raise
                self._bad.add(j)
                self.skipped.append(self._paths[j])
        raise DataError(f"{self.root}: none of the {n} images could be decoded")


# --------------------------------------------------------------------------------------------
# Loading


class EpochKeyBatchSampler:
    """Batches of (epoch, index) keys for :class:`ImageFolderViews`.

    shuffle=True: the batches of :class:`ait.data.EpochSampler` (permutation seeded by (seed,
    epoch), rank-sharded, resumable from ``start_batch``). shuffle=False: consecutive indices;
    with world_size > 1 rank r takes every world_size-th sample from r (no padding, so the
    ranks' counts sum to the dataset size).
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.shuffle = bool(shuffle)
        self.epoch = 0
        self.start_batch = 0
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)
        self.rank, self.world_size = int(rank), int(world_size)
        # EpochSampler validates the arguments in both modes.
        self._sampler = EpochSampler(num_samples, batch_size, seed, drop_last, rank, world_size)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        if int(epoch) < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch!r}")
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def _index_batches(self) -> list[list[int]]:
        if self.shuffle:
            return [b.tolist() for b in self._sampler.batches(self.epoch, self.start_batch)]
        mine = list(range(self.rank, self.num_samples, self.world_size))
        shard = self.batch_size // self.world_size
        batches = [mine[k : k + shard] for k in range(0, len(mine), shard)]
        if self.drop_last and batches and len(batches[-1]) < shard:
            batches.pop()
        return batches[self.start_batch :]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for batch in self._index_batches():
            yield [(self.epoch, i) for i in batch]

    def __len__(self) -> int:
        if self.shuffle:
            total = self._sampler.num_batches(self.epoch)
        else:
            mine = len(range(self.rank, self.num_samples, self.world_size))
            shard = self.batch_size // self.world_size
            total = mine // shard if self.drop_last else math.ceil(mine / shard)
        return max(0, total - self.start_batch)


class ImageFolderLoader(DataLoader):
    """A DataLoader over :class:`ImageFolderViews` whose epoch is set with :meth:`set_epoch`."""

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Use ``epoch``'s order and random views, from batch ``start_batch`` on (resume)."""
        self.batch_sampler.set_epoch(epoch, start_batch)  # type: ignore[union-attr]
        self.dataset.set_epoch(epoch)  # type: ignore[attr-defined]

    def close(self) -> None:
        """Shut the persistent workers down now (they restart if the loader is iterated again)."""
        iterator = getattr(self, "_iterator", None)
        self._iterator = None
        shutdown = getattr(iterator, "_shutdown_workers", None)  # torch's own shutdown path
        if shutdown is not None:
            shutdown()


def imagefolder_loader(
    dataset: ImageFolderViews,
    batch_size: int,
    workers: int = 0,
    seed: int = 0,
    shuffle: bool = True,
    drop_last: bool = False,
    rank: int = 0,
    world_size: int = 1,
    prefetch_factor: int | None = None,
    ignore_sigterm: bool = False,
) -> ImageFolderLoader:
    """A loader yielding (views uint8 (B, V, 3, size, size), labels int64 (B,)).

    ``batch_size`` is global; each of ``world_size`` ranks gets batch_size / world_size samples.
    Workers are persistent (no re-fork and re-pickling of the index every epoch); memory is
    pinned when CUDA is available. Call ``loader.set_epoch(e)`` before each epoch.

    Workers ignore SIGINT: Ctrl-C in a terminal reaches every process of the group, and the main
    process decides what happens (``ait train`` saves a checkpoint at the next step, which needs
    the workers alive). ``ignore_sigterm`` does the same for SIGTERM (a scheduler signalling the
    whole process tree); the caller must then shut the workers down itself
    (:meth:`ImageFolderLoader.close`) before the interpreter exits, since multiprocessing stops
    leftover workers at exit with SIGTERM. The loader has its own torch Generator (seeded by
    ``seed``) for the workers' base seed, so iterating it never advances the global torch RNG.
    """
    if int(workers) < 0:
        raise ValueError(f"workers must be >= 0, got {workers!r}")
    batches = EpochKeyBatchSampler(len(dataset), batch_size, seed, shuffle, drop_last, rank, world_size)
    extra = {}
    if workers > 0:
        extra = {
            "persistent_workers": True,
            "prefetch_factor": prefetch_factor or 2,
            "worker_init_fn": functools.partial(_ignore_signals, bool(ignore_sigterm)),
        }
    return ImageFolderLoader(
        dataset,
        batch_sampler=batches,
        num_workers=int(workers),
        pin_memory=torch.cuda.is_available(),
        generator=torch.Generator().manual_seed(int(seed) % (1 << 63)),
        **extra,
    )


def _ignore_signals(sigterm: bool, worker_id: int) -> None:
    """DataLoader worker initialisation: leave SIGINT (and SIGTERM if asked) to the main process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
