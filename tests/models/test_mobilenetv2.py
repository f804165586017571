"""MobileNetV2 (Sandler et al. 2018) with CIFAR strides: size and layout."""

from __future__ import annotations

import pytest
import torchvision
from torch import nn

from ait import models
from ait.models.mobilenetv2 import InvertedResidual, MobileNetV2

# Published CIFAR figures: about 2.24M (10 classes) and 2.35M (100 classes).
PUBLISHED = {10: 2.24e6, 100: 2.35e6}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("num_classes", [10, 100])
def test_parameter_counts(num_classes):
    model = models.create("mobilenetv2", num_classes=num_classes)
    assert isinstance(model, MobileNetV2) and model.feature_dim == 1280
    # torchvision's ImageNet layout has the same layers: the CIFAR strides add no parameters.
    assert n_params(model) == n_params(torchvision.models.mobilenet_v2(num_classes=num_classes))
    assert abs(n_params(model) / PUBLISHED[num_classes] - 1) < 0.02


def test_layout():
    model = MobileNetV2(num_classes=10, in_channels=1)
    stem, *blocks, last = model.features
    assert stem[0].stride == (1, 1) and stem[0].in_channels == 1 and stem[0].out_channels == 32
    assert all(isinstance(b, InvertedResidual) for b in blocks) and len(blocks) == 17
    depthwise = [b.conv[-3][0] for b in blocks]  # the conv in the block's depthwise triple
    assert all(c.groups == c.in_channels == c.out_channels for c in depthwise)
    # Paper strides except the 24-channel stage (stride 1 for 32x32 inputs): 32x32 -> 4x4.
    strides = [c.stride[0] for c in depthwise]
    assert strides == [1, 1, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1]
    # Residuals only where a block keeps its shape.
    assert sum(b.use_residual for b in blocks) == 10
    # t = 1: no expansion conv, so depthwise (3 modules) + projection conv + BN.
    assert len(blocks[0].conv) == 3
    # The last projection is linear (paper sec. 3.2): its block ends in BN, not an activation.
    assert all(isinstance(b.conv[-1], nn.BatchNorm2d) for b in blocks)
    assert last[0].in_channels == 320 and last[0].out_channels == 1280
    assert isinstance(last[1], nn.BatchNorm2d) and isinstance(last[2], nn.ReLU6)


@pytest.mark.parametrize("kwargs", [{"num_classes": 0}, {"num_classes": 10, "in_channels": -1}])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match="must be an integer >= 1"):
        MobileNetV2(**kwargs)
