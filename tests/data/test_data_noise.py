import pytest
import torch

from ait.data import corrupt_labels


def _labels(n=10000, k=10):
    return torch.arange(n) % k


@pytest.mark.parametrize("fraction", [0.2, 0.4, 0.8, 1.0])
def test_changed_fraction_close_to_expected(fraction):
    labels = _labels()
    new, changed = corrupt_labels(labels, fraction, 10, seed=0)
    assert new.dtype == torch.int64 and new.shape == labels.shape
    assert abs(changed - fraction * (1 - 1 / 10)) < 0.015
    assert changed == pytest.approx((new != labels).float().mean().item())
    assert int(new.min()) >= 0 and int(new.max()) < 10


def test_only_round_fraction_n_positions_touched():
    labels = _labels(n=1000)
    new, changed = corrupt_labels(labels, 0.3, 10, seed=3)
    assert (new != labels).sum() <= 300
    # With 2 classes the chosen samples keep their label half the time: changed < fraction.
    _, changed2 = corrupt_labels(torch.arange(1000) % 2, 0.3, 2, seed=3)
    assert 0.1 < changed2 < 0.2


def test_zero_fraction_is_identity_and_input_untouched():
    labels = _labels(n=100)
    before = labels.clone()
    new, changed = corrupt_labels(labels, 0.0, 10, seed=1)
    assert torch.equal(new, labels) and changed == 0.0
    corrupt_labels(labels, 0.5, 10, seed=1)
    assert torch.equal(labels, before)


def test_seeded():
    labels = _labels(n=500)
    a, fa = corrupt_labels(labels, 0.4, 10, seed=7)
    b, fb = corrupt_labels(labels, 0.4, 10, seed=7)
    c, _ = corrupt_labels(labels, 0.4, 10, seed=8)
    assert torch.equal(a, b) and fa == fb
    assert not torch.equal(a, c)


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_bad_fraction(fraction):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        corrupt_labels(_labels(n=10), fraction, 10, seed=0)


def test_bad_labels():
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        corrupt_labels(torch.tensor([0, 5]), 0.5, 3, seed=0)
    with pytest.raises(ValueError, match="int64"):
        corrupt_labels(torch.tensor([0.0, 1.0]), 0.5, 3, seed=0)
