"""Wide ResNets (Zagoruyko & Komodakis 2016): sizes, validation, dropout, pre-activation layout."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ait import models
from ait.models.wide_resnet import PreActBlock, WideResNet, wide_resnet

# Zagoruyko & Komodakis 2016, Tables 1 and 4 (CIFAR-10).
PUBLISHED = {"wrn28_10": 36.5e6, "wrn16_4": 2.7e6, "wrn16_8": 11.0e6, "wrn40_2": 2.2e6}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def counted_by_hand(depth: int, k: int, num_classes: int) -> int:
    """The parameters of WRN-depth-k, layer by layer: a 3x3 stem conv 3->16, (depth - 4) / 6
    pre-activation blocks per stage at widths 16k, 32k, 64k (BN, 3x3 conv, BN, 3x3 conv; a 1x1
    projection where the width changes; no conv biases), the final BN and the linear head."""
    total, width_in = 3 * 16 * 9, 16
    for width in (16 * k, 32 * k, 64 * k):
        for _ in range((depth - 4) // 6):
            total += 2 * width_in + width_in * width * 9 + 2 * width + width * width * 9
            total += width_in * width if width_in != width else 0
            width_in = width
    return total + 2 * 64 * k + 64 * k * num_classes + num_classes


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_counts(name):
    depth, k = (int(v) for v in name[3:].split("_"))
    for num_classes in (10, 100):
        model = models.create(name, num_classes=num_classes)
        assert isinstance(model, WideResNet)
        assert (model.depth, model.widen_factor, model.feature_dim) == (depth, k, 64 * k)
        assert n_params(model) == counted_by_hand(depth, k, num_classes)
    assert abs(counted_by_hand(depth, k, 10) / PUBLISHED[name] - 1) < 0.02


def test_general_constructor_matches_registry():
    model = wide_resnet(16, 4, num_classes=100)
    assert n_params(model) == counted_by_hand(16, 4, 100)
    assert all(len(stage) == 2 for stage in (model.layer1, model.layer2, model.layer3))


@pytest.mark.parametrize("k,projected", [(1, [False, True, True]), (4, [True, True, True])])
def test_projection_only_where_shape_changes(k, projected):
    model = wide_resnet(10, k, num_classes=10)
    firsts = [stage[0] for stage in (model.layer1, model.layer2, model.layer3)]
    assert [b.projection is not None for b in firsts] == projected
    assert [b.conv1.stride for b in firsts] == [(1, 1), (2, 2), (2, 2)]
    # pre-activation: each block starts with BN over its input channels
    blocks = [m for m in model.modules() if isinstance(m, PreActBlock)]
    assert all(b.bn1.num_features == b.conv1.in_channels for b in blocks)
    assert isinstance(model.final[0], nn.BatchNorm2d) and isinstance(model.final[1], nn.ReLU)


@pytest.mark.parametrize("depth", [14, 26, 28 + 1, 4])
def test_invalid_depth(depth):
    with pytest.raises(ValueError, match=rf"6n \+ 4 .*got {depth}"):
        wide_resnet(depth, 2, num_classes=10)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"widen_factor": 0}, "widen_factor must be an integer >= 1, got 0"),
        ({"widen_factor": 1.5}, "widen_factor must be an integer >= 1, got 1.5"),
        ({"dropout": -0.1}, r"dropout must be in \[0, 1\), got -0.1"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
        ({"in_channels": 0}, "in_channels must be an integer >= 1, got 0"),
    ],
)
def test_invalid_arguments(kwargs, match):
    args = {"depth": 10, "widen_factor": 1, "num_classes": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        wide_resnet(**args)


def test_dropout_option():
    assert not any(isinstance(m, nn.Dropout) for m in models.create("wrn16_4", 10).modules())
    model = wide_resnet(10, 1, num_classes=10, in_channels=1, dropout=0.3)
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 3 and all(d.p == 0.3 for d in drops)
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(model(x), model(x))
        model.train()
        torch.manual_seed(0)
        a = model(x)
        b = model(x)
    assert not torch.allclose(a, b)
