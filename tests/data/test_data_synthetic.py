import pytest
import torch

from ait.data import make_synthetic_split


def test_shapes_balance_and_determinism():
    train, test = make_synthetic_split(100, 30, seed=3)
    assert train.images.shape == (100, 3, 32, 32) and train.images.dtype == torch.uint8
    assert len(test) == 30 and train.num_classes == test.num_classes == 10
    assert torch.bincount(train.labels).tolist() == [10] * 10
    again, _ = make_synthetic_split(100, 30, seed=3)
    assert torch.equal(again.images, train.images) and torch.equal(again.labels, train.labels)
    other, _ = make_synthetic_split(100, 30, seed=4)
    assert not torch.equal(other.images, train.images)
    gray, _ = make_synthetic_split(8, 4, seed=0, num_classes=4, image_size=28, channels=1)
    assert gray.images.shape == (8, 1, 28, 28) and gray.num_classes == 4


def test_learnable_by_nearest_class_mean():
    train, test = make_synthetic_split(200, 100, seed=0)
    x_train = train.images.float().flatten(1)
    means = torch.stack([x_train[train.labels == c].mean(0) for c in range(10)])
    pred = torch.cdist(test.images.float().flatten(1), means).argmin(1)
    assert (pred == test.labels).float().mean() > 0.9


def test_bad_sizes():
    with pytest.raises(ValueError):
        make_synthetic_split(0, 5)
