"""CIFAR ResNets (He et al. 2016, sec. 4.2): sizes, depth validation, structure, initialisation."""

from __future__ import annotations

import math

import pytest
from torch import nn

from ait import models
from ait.models.cifar_resnet import BasicBlock, CifarResNet, cifar_resnet

# He et al. 2016, Table 6 (CIFAR-10, option A shortcuts).
PUBLISHED = {20: 0.27e6, 32: 0.46e6, 44: 0.66e6, 56: 0.85e6, 110: 1.7e6}
# Option B's two projections: 1x1 convs 16->32 and 32->64 plus their BNs.
PROJECTION_PARAMS = 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64


def counted_by_hand(depth: int, num_classes: int) -> int:
    """The parameters of He et al.'s CIFAR ResNet with option-B shortcuts, layer by layer: a 3x3
    stem conv 3->16 with its BN, (depth - 2) / 6 blocks of two 3x3 convs with BNs (no conv biases)
    at widths 16, 32, 64, the two projections, and the linear head."""
    total, width_in = 3 * 16 * 9 + 2 * 16, 16
    for width in (16, 32, 64):
        for _ in range((depth - 2) // 6):
            total += width_in * width * 9 + width * width * 9 + 2 * (2 * width)
            width_in = width
    return total + PROJECTION_PARAMS + 64 * num_classes + num_classes


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("depth", sorted(PUBLISHED))
def test_parameter_counts(depth):
    for num_classes in (10, 100):
        model = models.create(f"resnet{depth}", num_classes=num_classes)
        assert isinstance(model, CifarResNet) and model.depth == depth
        assert n_params(model) == counted_by_hand(depth, num_classes)
    # Within 2% of the paper's CIFAR-10 sizes although those are for parameter-free shortcuts.
    assert abs(counted_by_hand(depth, 10) / PUBLISHED[depth] - 1) < 0.02


def test_projection_shortcuts_are_the_only_difference_from_option_a():
    model = cifar_resnet(20, num_classes=10)
    projections = [b.shortcut for b in model.modules() if isinstance(b, BasicBlock)]
    projections = [s for s in projections if not isinstance(s, nn.Identity)]
    assert [s[0].stride for s in projections] == [(2, 2), (2, 2)]
    assert [s[0].kernel_size for s in projections] == [(1, 1), (1, 1)]
    assert sum(n_params(s) for s in projections) == PROJECTION_PARAMS == 2_752


@pytest.mark.parametrize("depth", [8, 20, 26, 110])
def test_general_constructor_builds_3n_blocks(depth):
    model = cifar_resnet(depth, num_classes=3, in_channels=1)
    n = (depth - 2) // 6
    assert [len(stage) for stage in (model.layer1, model.layer2, model.layer3)] == [n, n, n]
    # depth counts the stem conv, 2 convs per block and the head
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) + 1 == depth


@pytest.mark.parametrize("depth", [2, 19, 21, 100])
def test_invalid_depth(depth):
    with pytest.raises(ValueError, match=rf"6n \+ 2 .*got {depth}"):
        cifar_resnet(depth, num_classes=10)


@pytest.mark.parametrize("depth", [0, -20, 20.0])
def test_non_positive_or_non_integer_depth(depth):
    with pytest.raises(ValueError, match="depth must be an integer >= 1"):
        cifar_resnet(depth, num_classes=10)


def test_invalid_num_classes_in_direct_constructor():
    with pytest.raises(ValueError, match="num_classes must be an integer >= 1, got 0"):
        cifar_resnet(20, num_classes=0)


def test_initialisation():
    model = cifar_resnet(20, num_classes=10)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert (m.weight == 1).all() and (m.bias == 0).all()
    # Kaiming normal, fan_out, ReLU gain: std = sqrt(2 / (out_channels * k * k)).
    conv = model.layer3[1].conv1  # 36,864 weights: the sample std is within a few percent
    expected = math.sqrt(2.0 / (64 * 9))
    assert abs(conv.weight.std().item() / expected - 1) < 0.05
