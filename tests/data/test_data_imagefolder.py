"""ImageNet-style folders: scanning, corrupt files, the paper's train views / eval crop, fractions,
DataLoader batches. Uses tiny generated folders (40x50-px images) only."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ait.data import (
    IMAGENET_NORMALIZATION,
    DataError,
    ImageFolderViews,
    fraction_subset,
    imagefolder_loader,
    scan_image_folder,
    verify_images,
)
from ait.data.imagefolder import (
    center_crop_box,
    eval_transform,
    random_resized_crop_box,
    train_view,
)
from ait_testutils import one_torch_thread


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_torch_thread():
        yield


def _noise_image(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


# relative path -> (width, height); sorted order within a class is the listing order here.
IMAGES = {
    "a/img0.png": (40, 50),
    "a/img1.jpg": (50, 40),
    "a/img2.JPEG": (45, 45),  # upper-case extension still counts
    "b/img0.jpg": (40, 50),
    "b/img1.png": (60, 30),
    "c/img0.png": (40, 50),
    "c/img1.jpg": (50, 40),
    "c/sub/img2.png": (30, 60),  # nested folders belong to their class
}
CORRUPT = "b/zz_corrupt.jpg"  # random bytes; sorts last in class b -> index 5
CORRUPT_INDEX = 5


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imagefolder") / "train"
    for k, (rel, (w, h)) in enumerate(IMAGES.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = "PNG" if rel.lower().endswith(".png") else "JPEG"
        _noise_image(w, h, k).save(path, fmt)
    (root / CORRUPT).write_bytes(np.random.default_rng(9).bytes(300))
    (root / "b" / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def index(folder):
    return scan_image_folder(folder)


# ---------------------------------------------------------------- scanning


def test_scan_classes_labels_and_ignored(folder, index):
    assert index.classes == ["a", "b", "c"]
    assert index.ignored == 1  # notes.txt
    assert index.labels.dtype == torch.int64
    assert index.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    rel = [str(Path(p).relative_to(folder)).replace("\\", "/") for p in index.paths]
    assert rel == [
        "a/img0.png",
        "a/img1.jpg",
        "a/img2.JPEG",
        "b/img0.jpg",
        "b/img1.png",
        CORRUPT,
        "c/img0.png",
        "c/img1.jpg",
        "c/sub/img2.png",
    ]
    assert index.class_counts().tolist() == [3, 3, 3]
    assert index.root == str(folder)


def test_empty_class_is_kept_with_a_warning(tmp_path):
    root = tmp_path / "train"
    for name in ("a", "c"):
        (root / name).mkdir(parents=True)
        _noise_image(40, 50, 0).save(root / name / "x.png")
    (root / "b").mkdir()
    (root / ".ipynb_checkpoints").mkdir()  # hidden folders are not classes
    with pytest.warns(UserWarning, match=r"[/\\]b: no images"):
        idx = scan_image_folder(root)
    assert idx.classes == ["a", "b", "c"]
    assert idx.labels.tolist() == [0, 2]


def test_roots_without_classes_or_images_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="not a directory"):
        scan_image_folder(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=f"{empty.name}: no class folders"):
        scan_image_folder(empty)
    (empty / "a").mkdir()
    (empty / "a" / "readme.txt").write_text("x")
    with pytest.warns(UserWarning), pytest.raises(DataError, match=f"{empty.name}: no image files"):
        scan_image_folder(empty)


def test_val_uses_train_classes(tmp_path, index):
    val = tmp_path / "val"
    for name in ("a", "c"):  # no folder for class b
        (val / name).mkdir(parents=True)
        _noise_image(40, 50, 1).save(val / name / "v.png")
    with pytest.warns(UserWarning, match="'b'"):
        vidx = scan_image_folder(val, classes=index.classes)
    assert vidx.classes == index.classes
    assert vidx.labels.tolist() == [0, 2]  # c keeps label 2
    (val / "zebra").mkdir()
    _noise_image(40, 50, 2).save(val / "zebra" / "z.png")
    with pytest.raises(DataError, match="zebra"):
        scan_image_folder(val, classes=index.classes)


# ---------------------------------------------------------------- corrupt files


def test_corrupt_file_is_a_data_error_naming_it(index):
    ds = ImageFolderViews(index, num_views=1, train=False)
    with pytest.raises(DataError, match="zz_corrupt.jpg"):
        ds[CORRUPT_INDEX]


def test_skip_corrupt_returns_the_next_sample_and_records_it(index):
    ds = ImageFolderViews(index, num_views=2, train=True, skip_corrupt=True)
    views, label = ds[CORRUPT_INDEX]
    assert views.shape == (2, 3, 224, 224)
    assert label == int(index.labels[CORRUPT_INDEX + 1])  # the next file's label
    assert len(ds.skipped) == 1 and ds.skipped[0].endswith("zz_corrupt.jpg")
    again, _ = ds[CORRUPT_INDEX]  # deterministic, and not re-decoded / re-counted
    assert torch.equal(views, again)
    assert len(ds.skipped) == 1


@pytest.mark.parametrize("workers", [0, 2])
def test_verify_images_finds_the_corrupt_file(index, workers):
    bad = verify_images(index, workers=workers)
    assert len(bad) == 1 and bad[0].endswith("zz_corrupt.jpg")
    clean = index.without(bad)
    assert len(clean) == len(index) - 1 and clean.classes == index.classes


# ---------------------------------------------------------------- transforms


def test_train_views_shapes_randomness_and_reproducibility(index):
    ds = ImageFolderViews(index, num_views=3, train=True, seed=7)
    views, label = ds[0]
    assert views.shape == (3, 3, 224, 224) and views.dtype == torch.uint8 and label == 0
    assert not torch.equal(views[0], views[1]) and not torch.equal(views[1], views[2])
    same = ImageFolderViews(index, num_views=3, train=True, seed=7)
    assert torch.equal(same[0][0], views)
    assert torch.equal(ds[(0, 0)][0], views)  # explicit (epoch, index) key == epoch 0
    ds.set_epoch(1)
    next_epoch = ds[0][0]
    assert not torch.equal(next_epoch, views)
    assert torch.equal(same[(1, 0)][0], next_epoch)
    other_seed = ImageFolderViews(index, num_views=3, train=True, seed=8)
    assert not torch.equal(other_seed[0][0], views)


def test_eval_is_deterministic_single_view(index):
    ds = ImageFolderViews(index, num_views=1, train=False, seed=1)
    a, label = ds[7]
    ds.set_epoch(3)
    assert a.shape == (1, 3, 224, 224) and a.dtype == torch.uint8 and label == 2
    assert torch.equal(ds[7][0], a)
    assert torch.equal(ImageFolderViews(index, train=False, seed=99)[(5, 7)][0], a)
    with pytest.raises(ValueError, match="num_views"):
        ImageFolderViews(index, num_views=2, train=False)


def test_eval_transform_centre_crop_on_a_gradient():
    # 256 x 286 (w x h): the shorter side is already 256, so only the crop acts.
    x = np.arange(256)[None, :].repeat(286, 0)
    y = np.arange(286)[:, None].repeat(256, 1)
    arr = np.stack([x, y // 2, np.zeros_like(x)], -1).astype(np.uint8)
    out = np.asarray(eval_transform(Image.fromarray(arr)))
    assert out.shape == (224, 224, 3)
    top, left = round((286 - 224) / 2), round((256 - 224) / 2)  # 31, 16
    assert (top, left) == (31, 16)
    assert (out[:, 0, 0] == left).all() and (out[:, -1, 0] == left + 223).all()
    assert out[0, 0, 1] == top // 2 and out[-1, 0, 1] == (top + 223) // 2


def test_eval_transform_resizes_the_shorter_side_to_256():
    img = _noise_image(500, 375, 3)  # landscape: 375 -> 256, 500 -> int(256 * 500 / 375) = 341
    out = eval_transform(img)
    expected = img.resize((341, 256), Image.Resampling.BILINEAR)
    top, left, h, w = center_crop_box(341, 256, 224)
    assert (top, left, h, w) == (16, 58, 224, 224)  # round(58.5) == 58, as torchvision
    assert out.size == (224, 224)
    assert np.array_equal(np.asarray(out), np.asarray(expected.crop((58, 16, 282, 240))))


def test_random_resized_crop_box_respects_scale_and_ratio():
    rng = np.random.default_rng(0)
    width, height = 500, 375
    areas, ratios = [], []
    for _ in range(3000):
        top, left, h, w = random_resized_crop_box(width, height, rng)
        assert 0 <= top and top + h <= height and 0 <= left and left + w <= width and h > 0 < w
        areas.append(w * h / (width * height))
        ratios.append(w / h)
    areas, ratios = np.array(areas), np.array(ratios)
    # Box sides are rounded to whole pixels: allow ~2% slack on both bounds.
    assert areas.min() >= 0.08 * 0.97 and areas.max() <= 1.0
    assert ratios.min() >= 0.75 * 0.98 and ratios.max() <= 4 / 3 * 1.02
    assert areas.min() < 0.1 and areas.max() > 0.9  # the whole range is used
    assert ratios.min() < 0.8 and ratios.max() > 1.25
    # No box fits a 1000x10 strip: torchvision's fallback, a centred crop with ratio 4/3.
    assert random_resized_crop_box(1000, 10, rng) == (0, (1000 - 13) // 2, 10, 13)


def test_train_view_is_the_crop_resized_and_maybe_flipped():
    img = _noise_image(80, 60, 4)
    out = train_view(img, np.random.default_rng(5), size=32)
    rng = np.random.default_rng(5)
    top, left, h, w = random_resized_crop_box(80, 60, rng)
    expected = img.crop((left, top, left + w, top + h)).resize((32, 32), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        expected = expected.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    assert np.array_equal(np.asarray(out), np.asarray(expected))


def test_normalization_constants():
    assert IMAGENET_NORMALIZATION == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


# ---------------------------------------------------------------- fractions and loading


def test_fraction_subset_is_stratified(tmp_path):
    root = tmp_path / "train"
    for c, n in (("a", 10), ("b", 4), ("c", 1)):
        (root / c).mkdir(parents=True)
        for k in range(n):
            (root / c / f"{k}.png").write_bytes(b"")  # never decoded here
    idx = scan_image_folder(root)
    sub = fraction_subset(idx, 0.5, seed=3)
    assert sub.class_counts().tolist() == [5, 2, 1]
    assert sub.classes == idx.classes
    assert set(sub.paths) <= set(idx.paths)
    assert fraction_subset(idx, 0.5, seed=3).paths == sub.paths
    assert len(fraction_subset(idx, 1.0, seed=0)) == 15


def test_loader_with_two_workers_matches_in_process_loading(index):
    clean = index.without([index.paths[CORRUPT_INDEX]])
    ds = ImageFolderViews(clean, num_views=2, train=True, seed=1)
    loader = imagefolder_loader(ds, batch_size=3, workers=2, seed=4, drop_last=True)
    assert loader.persistent_workers and len(loader) == 2
    loader.set_epoch(1)
    batches = list(loader)
    assert len(batches) == 2
    views, labels = batches[0]
    assert views.shape == (3, 2, 3, 224, 224) and views.dtype == torch.uint8
    assert labels.shape == (3,) and labels.dtype == torch.int64
    # The same batches without workers: randomness does not depend on the worker.
    serial = imagefolder_loader(ds, batch_size=3, workers=0, seed=4, drop_last=True)
    serial.set_epoch(1)
    for (v0, l0), (v1, l1) in zip(batches, serial):
        assert torch.equal(v0, v1) and torch.equal(l0, l1)
    del loader  # shut the persistent workers down


def test_eval_loader_is_sequential(index):
    clean = index.without([index.paths[CORRUPT_INDEX]])
    ds = ImageFolderViews(clean, train=False)
    loader = imagefolder_loader(ds, batch_size=5, shuffle=False)
    labels = torch.cat([y for _, y in loader])
    assert labels.tolist() == clean.labels.tolist()
    assert math.ceil(len(clean) / 5) == len(loader)


def test_a_sixteen_bit_image_is_refused_by_name_not_clipped_to_white(tmp_path):
    from ait.data.imagefolder import load_rgb

    Image.fromarray((np.arange(40 * 50, dtype=np.uint16).reshape(40, 50) * 30).astype(np.uint16)).save(
        tmp_path / "deep.png"
    )
    with pytest.raises(DataError, match=r"deep.png has 'I;16' pixels \(16-bit or float\); ait takes 8-bit images"):
        load_rgb(str(tmp_path / "deep.png"))
