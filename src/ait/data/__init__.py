"""Datasets as in-memory uint8 tensors: CIFAR folders, Fashion-MNIST IDX files, `.npz` arrays,
Hugging Face datasets on disk (:mod:`ait.data.hf`, the ``hf`` extra); label noise, class-balanced
fractions and a deterministic, shardable epoch sampler; ImageNet-style image folders decoded per
sample into uint8 views (:mod:`ait.data.imagefolder`).

Your own arrays as an ``.npz`` file (``images`` uint8 (N, H, W, C), integer ``labels``)::

    >>> import numpy as np
    >>> from ait.data import EpochSampler, load_dataset
    >>> np.savez("mine.npz", images=np.zeros((6, 32, 32, 3), np.uint8), labels=np.array([0, 1, 2, 0, 1, 2]))
    >>> train = load_dataset("npz", "mine.npz", train=True)
    >>> tuple(train.images.shape), train.num_classes  # uint8 (N, C, H, W)
    ((6, 3, 32, 32), 3)
    >>> [len(idx) for idx in EpochSampler(len(train), 4, seed=0).batches(epoch=0)]  # the last batch is short
    [4, 2]
"""

from ait.data.arrays import ImageArrays, load_npz, read_class_names
from ait.data.cifar import load_cifar
from ait.data.errors import DataError
from ait.data.fashion_mnist import load_fashion_mnist, read_idx
from ait.data.fractions import stratified_subset
from ait.data.hf import load_hf, load_hf_splits
from ait.data.imagefolder import (
    IMAGENET_NORMALIZATION,
    ImageFolderIndex,
    ImageFolderLoader,
    ImageFolderViews,
    fraction_subset,
    imagefolder_loader,
    scan_image_folder,
    verify_images,
)
from ait.data.noise import corrupt_labels
from ait.data.registry import (
    DATASETS,
    NORMALIZATION,
    channel_stats,
    load_dataset,
    normalization_for,
)
from ait.data.sampler import EpochSampler
from ait.data.synthetic import make_synthetic_split

__all__ = [
    "DATASETS",
    "NORMALIZATION",
    "DataError",
    "EpochSampler",
    "IMAGENET_NORMALIZATION",
    "ImageFolderIndex",
    "ImageFolderLoader",
    "ImageFolderViews",
    "ImageArrays",
    "channel_stats",
    "corrupt_labels",
    "fraction_subset",
    "imagefolder_loader",
    "load_cifar",
    "load_dataset",
    "load_fashion_mnist",
    "load_hf",
    "load_hf_splits",
    "load_npz",
    "make_synthetic_split",
    "normalization_for",
    "read_class_names",
    "read_idx",
    "scan_image_folder",
    "stratified_subset",
    "verify_images",
]
