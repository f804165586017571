import numpy as np
import pytest
import torch
from data_testutils import write_fake_cifar, write_fake_fashion, write_npz

from ait.data import (
    DATASETS,
    NORMALIZATION,
    DataError,
    ImageArrays,
    channel_stats,
    load_dataset,
    normalization_for,
)


def test_unknown_name_lists_names():
    with pytest.raises(ValueError) as e:
        load_dataset("imagenet", None, train=True)
    for name in DATASETS:
        assert name in str(e.value)


def test_npz_by_file_and_by_folder(tmp_path):
    images = np.zeros((4, 8, 8, 3), np.uint8)
    write_npz(tmp_path / "train-4.npz", images, np.array([0, 1, 0, 1]))
    write_npz(tmp_path / "test.npz", images[:2], np.array([1, 0]))
    assert len(load_dataset("npz", tmp_path / "test.npz", train=True)) == 2  # file: train ignored
    assert len(load_dataset("npz", str(tmp_path), train=True)) == 4
    assert len(load_dataset("npz", tmp_path, train=False)) == 2
    write_npz(tmp_path / "train-other.npz", images, np.array([0, 1, 0, 1]))
    with pytest.raises(DataError, match="exactly one train"):
        load_dataset("npz", tmp_path, train=True)
    with pytest.raises(DataError, match=r"missing\.npz: file not found"):
        load_dataset("npz", tmp_path / "missing.npz", train=True)
    with pytest.raises(DataError, match="data.root: npz needs the path"):
        load_dataset("npz", None, train=True)


def test_cifar_and_fashion_dispatch(tmp_path):
    write_fake_cifar(tmp_path / "c10", 10)
    write_fake_cifar(tmp_path / "c100", 100)
    write_fake_fashion(tmp_path / "fm")
    assert load_dataset("cifar10", tmp_path / "c10", train=True).num_classes == 10
    assert load_dataset("cifar100", tmp_path / "c100", train=False).num_classes == 100
    assert len(load_dataset("fashion_mnist", tmp_path / "fm", train=False)) == 5
    with pytest.raises(DataError, match="data.root: cifar10 needs a folder"):
        load_dataset("cifar10", None, train=True)
    with pytest.raises(DataError, match="cifar-100-python"):
        load_dataset("cifar100", tmp_path / "c10", train=True)


def test_channel_stats_matches_reference():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (37, 3, 5, 6), dtype=torch.uint8, generator=g)
    images[:, 2] //= 4  # a darker channel
    mean, std = channel_stats(images, chunk=8)
    x = images.double() / 255
    assert mean == pytest.approx(x.mean(dim=(0, 2, 3)).tolist(), abs=1e-12)
    assert std == pytest.approx(x.std(dim=(0, 2, 3), unbiased=False).tolist(), abs=1e-12)
    const = torch.full((2, 1, 3, 3), 51, dtype=torch.uint8)
    cmean, cstd = channel_stats(const)
    assert cmean == pytest.approx((0.2,)) and cstd == pytest.approx((0.0,), abs=1e-7)
    with pytest.raises(ValueError, match="uint8"):
        channel_stats(images.float())


def test_normalization_for():
    a = ImageArrays(torch.full((2, 3, 2, 2), 255, dtype=torch.uint8), torch.tensor([0, 1]), ["a", "b"], name="x")
    assert normalization_for("cifar10", a) == NORMALIZATION["cifar10"]
    mean, std = normalization_for("npz", a)
    assert mean == pytest.approx((1.0,) * 3) and std == pytest.approx((0.0,) * 3, abs=1e-7)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_real_cifar_stats_near_constants(shared_data, name):
    a = load_dataset("npz", shared_data / name, train=True)
    assert len(a) == 20000
    mean, std = channel_stats(a.images)
    assert mean == pytest.approx(NORMALIZATION[name][0], abs=0.005)
    assert std == pytest.approx(NORMALIZATION[name][1], abs=0.005)
