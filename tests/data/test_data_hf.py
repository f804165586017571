"""Hugging Face datasets on disk (ait.data.hf): saved DatasetDicts and parquet folders, built here.

Every dataset is made in the test with the real ``datasets`` library, so what is read back is what
``save_to_disk`` and ``to_parquet`` write; pixels are compared exactly with the arrays they came from.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import torch
import yaml

import ait
from ait import budget
from ait.cli import main
from ait.config import config_from_dict
from ait.data import DataError, load_dataset, load_hf, load_hf_splits
from ait.data.hf import hf_split_size
from ait_testutils import REPO, one_torch_thread, tiny_config

datasets = pytest.importorskip("datasets")
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, Value  # noqa: E402

NAMES = ["cat", "dog", "emu"]


def make_images(n: int, seed: int, shape=(8, 8, 3)) -> np.ndarray:
    """uint8 (n, H, W, C) of distinct random content."""
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def image_split(images, labels, names=NAMES, column="img") -> Dataset:
    features = Features({column: Image(), "label": ClassLabel(names=names) if names else Value("int64")})
    return Dataset.from_dict({column: list(images), "label": list(labels)}, features=features)


@pytest.fixture
def source():
    """Train and test arrays: ((images (N, H, W, 3), labels (N,)), ...)."""
    return (make_images(9, 0), np.arange(9) % 3), (make_images(4, 1), np.array([2, 0, 1, 2]))


@pytest.fixture
def saved(tmp_path, source):
    """A DatasetDict with "train" and "test", saved with save_to_disk."""
    (xtr, ytr), (xte, yte) = source
    root = tmp_path / "saved"
    DatasetDict(train=image_split(xtr, ytr), test=image_split(xte, yte)).save_to_disk(str(root))
    return root


def assert_same(arrays, images: np.ndarray, labels: np.ndarray) -> None:
    """arrays holds exactly these (N, H, W, C) images and labels, as uint8 (N, C, H, W) and int64."""
    assert arrays.images.dtype == torch.uint8 and arrays.labels.dtype == torch.int64
    np.testing.assert_array_equal(arrays.images.permute(0, 2, 3, 1).numpy(), images)
    np.testing.assert_array_equal(arrays.labels.numpy(), labels)


def test_a_saved_datasetdict_loads_exact_pixels_labels_and_class_names(saved, source):
    train, test = load_hf_splits(saved, ["train", "test"])
    for arrays, (images, labels) in zip((train, test), source):
        assert_same(arrays, images, labels)
        assert arrays.classes == NAMES and arrays.image_shape == (3, 8, 8)
    assert train.source == f"{saved} [train]" and train.name == "saved"
    assert_same(load_hf(saved, "test"), *source[1])
    assert_same(load_dataset("hf", saved, train=False), *source[1])  # the registry's splits: train / test


@pytest.mark.parametrize(
    "layout",
    [
        ["data/{split}-00000-of-00001.parquet"],  # the hub's layout
        ["{split}-00000-of-00002.parquet", "{split}-00001-of-00002.parquet"],  # shards, read in order
        ["{split}/0000.parquet"],
        ["{split}.parquet"],
    ],
)
def test_a_folder_of_parquet_files_loads_like_the_saved_dataset(tmp_path, source, layout):
    for split, (images, labels) in zip(("train", "test"), source):
        ds = image_split(images, labels)
        shards = len(layout)
        for k, name in enumerate(layout):
            path = tmp_path / name.format(split=split)
            path.parent.mkdir(parents=True, exist_ok=True)
            ds.shard(shards, k, contiguous=True).to_parquet(str(path))
    train, test = load_hf_splits(tmp_path, ["train", "test"])
    for arrays, (images, labels) in zip((train, test), source):
        assert_same(arrays, images, labels)
        assert arrays.classes == NAMES  # from the Hugging Face metadata the files carry
    assert hf_split_size(tmp_path, "train") == 9  # from the files' metadata


def test_grayscale_stays_one_channel_and_other_modes_become_rgb(tmp_path):
    gray = make_images(3, 2, (8, 8))
    rgba = make_images(3, 3, (8, 8, 4))
    palette = [PIL.Image.fromarray(x).convert("P") for x in make_images(3, 4)]
    splits = {
        "gray": image_split(gray, [0, 1, 2]),
        "rgba": image_split([PIL.Image.fromarray(x, "RGBA") for x in rgba], [0, 1, 2]),
        "palette": image_split(palette, [0, 1, 2]),
    }
    DatasetDict(splits).save_to_disk(str(tmp_path / "d"))
    assert_same(load_hf(tmp_path / "d", "gray"), gray[..., None], np.arange(3))
    a, p = load_hf_splits(tmp_path / "d", ["rgba", "palette"])
    assert_same(a, rgba[..., :3], np.arange(3))  # PIL's RGBA -> RGB drops alpha
    assert_same(p, np.stack([np.asarray(x.convert("RGB")) for x in palette]), np.arange(3))


def test_gray_images_beside_colour_ones_are_repeated_into_rgb(tmp_path):
    gray, colour = make_images(2, 5, (8, 8)), make_images(2, 6)
    mixed = [PIL.Image.fromarray(gray[0]), PIL.Image.fromarray(colour[0]), PIL.Image.fromarray(gray[1])]
    DatasetDict(train=image_split(mixed, [0, 1, 2]), test=image_split(gray, [1, 0])).save_to_disk(str(tmp_path / "d"))
    train, test = load_hf_splits(tmp_path / "d", ["train", "test"])
    as_rgb = np.repeat(gray[..., None], 3, axis=3)  # what PIL's convert("RGB") makes of gray
    assert_same(train, np.stack([as_rgb[0], colour[0], as_rgb[1]]), np.arange(3))
    assert_same(test, as_rgb, [1, 0])  # a gray split beside a colour one gets its channels too


def test_uint8_array_columns_and_plain_integer_labels(tmp_path):
    xtr, xte = make_images(5, 7, (6, 6, 3)), make_images(2, 8, (6, 6, 3))
    splits = {
        "train": Dataset.from_dict({"pixels": list(xtr), "y": [0, 1, 4, 1, 0]}),
        "validation": Dataset.from_dict({"pixels": list(xte), "y": [1, 2]}),
    }
    DatasetDict(splits).save_to_disk(str(tmp_path / "d"))
    train, test = load_hf_splits(tmp_path / "d", ["train", "validation"], image_column="pixels", label_column="y")
    assert_same(train, xtr, [0, 1, 4, 1, 0])
    assert_same(test, xte, [1, 2])
    assert train.classes == test.classes == ["0", "1", "2", "3", "4"]  # the largest label of any split


def test_bad_columns_and_splits_are_named_with_what_is_there(saved, tmp_path):
    with pytest.raises(DataError, match=r"saved \[train\]: no column 'image' \(data.image_column\); its columns are "):
        load_hf(saved, "train", image_column="image")
    with pytest.raises(
        DataError, match=r"no column 'labels' \(data.label_column\); .*img \(Image\), label \(ClassLabel"
    ):
        load_hf(saved, "train", label_column="labels")
    with pytest.raises(DataError, match=r"saved: no split 'validation'; its splits are \['test', 'train'\]"):
        load_hf(saved, "validation")
    image_split(make_images(2, 0), [0, 1]).to_parquet(str(tmp_path / "pq" / "data" / "train-00000-of-00001.parquet"))
    with pytest.raises(DataError, match=r"pq: no parquet files of split 'test'; its splits are \['train'\]"):
        load_hf(tmp_path / "pq", "test")
    with pytest.raises(DataError, match="not a folder"):
        load_hf(tmp_path / "missing", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no dataset_dict.json and no parquet files"):
        load_hf(tmp_path / "empty", "train")


def test_images_of_different_sizes_are_refused_naming_the_first_misfit(tmp_path):
    images = [*make_images(2, 0), make_images(1, 1, (8, 6, 3))[0]]
    DatasetDict(train=image_split(images, [0, 1, 2])).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(
        DataError, match=r"d \[train\]: image 2 is 8x6 with 3 channel\(s\) but image 0 is 8x8 .*one size"
    ):
        load_hf(tmp_path / "d", "train")


def test_unusable_labels_and_image_columns_are_refused(tmp_path):
    images = make_images(2, 0)
    splits = {
        "strings": Dataset.from_dict(
            {"img": list(images), "label": ["a", "b"]}, features=Features(img=Image(), label=Value("string"))
        ),
        "unlabelled": image_split(images, [0, -1]),  # ClassLabel's -1: no label
        "two_images": Dataset.from_dict(
            {"a": list(images), "b": list(images), "label": [0, 1]},
            features=Features(a=Image(), b=Image(), label=Value("int64")),
        ),
        "floats": Dataset.from_dict({"img": list(images.astype(np.float32)), "label": [0, 1]}),
    }
    DatasetDict(splits).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(DataError, match=r"labels in 'label' are strings; .*class_encode_column\('label'\)"):
        load_hf(tmp_path / "d", "strings")
    with pytest.raises(DataError, match="found -1 at index 1 .*no label"):
        load_hf(tmp_path / "d", "unlabelled")
    with pytest.raises(DataError, match=r"2 image columns; name .* data.image_column. Its columns are a \(Image\)"):
        load_hf(tmp_path / "d", "two_images")
    with pytest.raises(DataError, match="no image column"):
        load_hf(tmp_path / "d", "floats")
    with pytest.raises(DataError, match=r"column 'img' holds float32, expected an Image feature or uint8 arrays"):
        load_hf(tmp_path / "d", "floats", image_column="img")


def test_a_single_saved_dataset_asks_for_splits(tmp_path, saved):
    image_split(make_images(2, 0), [0, 1]).save_to_disk(str(tmp_path / "one"))
    with pytest.raises(
        DataError, match=r"one: a single Dataset saved with save_to_disk, without splits; .*train_test_split"
    ):
        load_hf(tmp_path / "one", "train")
    with pytest.raises(DataError, match="one split of the DatasetDict in its parent folder"):
        load_hf(saved / "train", "train")


def test_splits_with_different_class_names_are_refused(tmp_path):
    images = make_images(2, 0)
    splits = {"train": image_split(images, [0, 1]), "test": image_split(images, [0, 1], names=["cat", "cow", "emu"])}
    DatasetDict(splits).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(DataError, match=r"d \[test\]: its ClassLabel names .* differ from those of .*d \[train\]"):
        load_hf_splits(tmp_path / "d", ["train", "test"])


def test_loading_opens_no_network_connection(saved, tmp_path, monkeypatch):
    image_split(make_images(2, 0), [0, 1]).to_parquet(str(tmp_path / "pq" / "train.parquet"))

    def refuse(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert len(load_hf(saved, "train")) == 9 and len(load_hf(tmp_path / "pq", "train")) == 2


def test_without_the_datasets_package_the_error_gives_the_install_line(saved):
    # A fresh interpreter in which `import datasets` fails, as it does where the extra is not installed.
    code = (
        "import sys; sys.modules['datasets'] = None\n"
        "from ait.data import DataError, load_hf\n"
        f"try:\n    load_hf({str(saved)!r}, 'train')\nexcept DataError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{saved}: data.dataset=hf needs the datasets package: pip install 'ait-train[hf]'"


def hf_config(tmp_path, root, **data) -> dict:
    cfg = tiny_config(tmp_path, "ait", train={"epochs": 1, "batch_size": 4}, data={"dataset": "hf", "root": str(root)})
    cfg["data"].pop("synthetic_size")
    cfg["data"].update(data)
    return cfg


@pytest.mark.slow
def test_a_run_trains_on_a_saved_dataset_and_records_its_classes(tmp_path, saved, source):
    with one_torch_thread():
        summary = ait.train(hf_config(tmp_path, saved), run_dir=tmp_path / "run")
    run = tmp_path / "run"
    assert (run / "summary.json").is_file() and summary["epochs"] == 1
    data = summary["data"]
    assert (data["train_size"], data["test_size"], data["num_classes"]) == (9, 4, 3)
    assert data["train_source"] == f"{saved} [train]" and data["image_shape"] == [3, 8, 8]
    env = json.loads((run / "env.json").read_text())
    assert env["model_input"]["classes"] == NAMES and env["model_input"]["input_shape"] == [3, 8, 8]
    assert budget.train_size(config_from_dict(hf_config(tmp_path, saved))) == 9  # without decoding


def test_bad_hf_data_ends_the_command_with_one_line(tmp_path, saved, capsys):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(hf_config(tmp_path, saved, test_split="validation")))
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"ait train: error: {saved}: no split 'validation'; its splits are ['test', 'train']"
    assert not (tmp_path / "runs").exists()
