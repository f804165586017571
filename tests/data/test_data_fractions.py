import pytest
import torch

from ait.data import stratified_subset


def _labels():
    # class 0: 100, class 1: 50, class 2: 7, class 4: 1 (class 3 absent); shuffled.
    labels = torch.cat([torch.full((100,), 0), torch.full((50,), 1), torch.full((7,), 2), torch.tensor([4])])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]


@pytest.mark.parametrize(
    "fraction, expected",
    [
        (0.1, {0: 10, 1: 5, 2: 1, 4: 1}),  # 0.7 rounds to 1
        (0.5, {0: 50, 1: 25, 2: 4, 4: 1}),  # 3.5 rounds half up to 4
        (0.01, {0: 1, 1: 1, 2: 1, 4: 1}),  # at least one per class
        (1.0, {0: 100, 1: 50, 2: 7, 4: 1}),
    ],
)
def test_per_class_counts_exact(fraction, expected):
    labels = _labels()
    idx = stratified_subset(labels, fraction, seed=0)
    assert idx.dtype == torch.int64
    counts = {c: int((labels[idx] == c).sum()) for c in expected}
    assert counts == expected and len(idx) == sum(expected.values())


def test_sorted_unique_and_seeded():
    labels = _labels()
    a = stratified_subset(labels, 0.3, seed=1)
    assert torch.equal(a, a.sort().values) and len(a.unique()) == len(a)
    assert torch.equal(a, stratified_subset(labels, 0.3, seed=1))
    assert not torch.equal(a, stratified_subset(labels, 0.3, seed=2))
    assert torch.equal(stratified_subset(labels, 1.0, seed=5), torch.arange(len(labels)))


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.01])
def test_bad_fraction(fraction):
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        stratified_subset(_labels(), fraction, seed=0)
