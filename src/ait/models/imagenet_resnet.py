"""ImageNet ResNets: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016
(https://arxiv.org/abs/1512.03385), Table 1, in torchvision's layout.

A 7x7 stride-2 conv stem with 64 channels, 3x3 stride-2 max pooling, then four stages with widths
64/128/256/512 and strides 1/2/2/2. ResNet-18 uses [2, 2, 2, 2] BasicBlocks, ResNet-50 [3, 4, 6, 3]
Bottlenecks (expansion 4) with the stride on the 3x3 conv ("ResNet v1.5", as torchvision). Where a
block changes shape the shortcut is a strided 1x1 conv + BN. Kaiming-normal (fan_out) conv init,
BN gamma 1 / beta 0; ``zero_init_residual=True`` zeroes the last BN gamma of every block (Goyal et
al. 2017), off by default like torchvision.

Parameter counts with 1000 classes and 3 input channels equal torchvision's: ResNet-18
11,689,512, ResNet-50 25,557,032. Module names match torchvision's (conv1, bn1, layer1..4, with
blocks' conv1/bn1/.../downsample) except that the classifier is ``head`` instead of ``fc``.

Shapes (N = batch): (N, C, 224, 224) -> feature map (N, 512 | 2048, 7, 7); (N, C, 64, 64) ->
(N, 512 | 2048, 2, 2). The feature map is the output of layer4 (after its final ReLU).
"""

from __future__ import annotations

import torch
from torch import nn

from ait.models.base import Classifier, init_conv_bn
from ait.models.registry import check_positive_int, register

__all__ = ["Bottleneck", "ImageNetBasicBlock", "ImageNetResNet", "resnet18", "resnet50"]


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    # Projection only where the identity cannot be added (torchvision's "downsample").
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class ImageNetBasicBlock(nn.Module):
    """Two 3x3 conv-BN layers plus a shortcut: (N, c_in, H, W) -> (N, width, H/s, W/s)."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, width, stride)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided, v1.5), 1x1 expand, each with BN, plus a shortcut:
    (N, c_in, H, W) -> (N, 4 * width, H/s, W/s)."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, out_channels, stride)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


_BLOCKS = {"basic": ImageNetBasicBlock, "bottleneck": Bottleneck}


class ImageNetResNet(Classifier):
    """ResNet for 224x224 images. ``block``: "basic" or "bottleneck"; ``layers``: blocks per stage
    (4 ints). ``feature_dim`` is 512 * expansion; the feature map is 1/32 of the input resolution."""

    def __init__(
        self,
        block: str,
        layers: tuple[int, int, int, int],
        num_classes: int = 1000,
        in_channels: int = 3,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if block not in _BLOCKS:
            raise ValueError(f"block must be one of {sorted(_BLOCKS)}, got {block!r}")
        layers = tuple(check_positive_int("layers[i]", n) for n in layers)  # type: ignore[assignment]
        if len(layers) != 4:
            raise ValueError(f"layers must have 4 entries, got {layers!r}")
        num_classes = check_positive_int("num_classes", num_classes)
        in_channels = check_positive_int("in_channels", in_channels)
        block_cls = _BLOCKS[block]
        self.num_classes = num_classes
        self.feature_dim = 512 * block_cls.expansion

        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages = []
        width_in = 64
        for width, stride, n in zip((64, 128, 256, 512), (1, 2, 2, 2), layers):
            blocks = [block_cls(width_in, width, stride)]
            width_in = width * block_cls.expansion
            blocks += [block_cls(width_in, width) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        # nn.Linear keeps PyTorch's default init, as torchvision does.
        self.head = nn.Linear(self.feature_dim, num_classes)

        init_conv_bn(self)
        if zero_init_residual:
            # Each residual branch starts as zero, so every block starts as the identity.
            for m in self.modules():
                if isinstance(m, (ImageNetBasicBlock, Bottleneck)):
                    nn.init.zeros_(m.last_bn.weight)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> layer4 output (N, feature_dim, ~H/32, ~W/32)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def resnet18(num_classes: int = 1000, in_channels: int = 3, zero_init_residual: bool = False) -> ImageNetResNet:
    """ResNet-18: BasicBlocks [2, 2, 2, 2], feature_dim 512 (11,689,512 parameters at 1000 classes)."""
    return ImageNetResNet("basic", (2, 2, 2, 2), num_classes, in_channels, zero_init_residual)


def resnet50(num_classes: int = 1000, in_channels: int = 3, zero_init_residual: bool = False) -> ImageNetResNet:
    """ResNet-50: Bottlenecks [3, 4, 6, 3], feature_dim 2048 (25,557,032 parameters at 1000 classes)."""
    return ImageNetResNet("bottleneck", (3, 4, 6, 3), num_classes, in_channels, zero_init_residual)


@register("resnet18")
def _resnet18_factory(num_classes: int, in_channels: int) -> Classifier:
    """ResNet-18 (ImageNet, He et al. 2016)."""
    return resnet18(num_classes, in_channels)


@register("resnet50")
def _resnet50_factory(num_classes: int, in_channels: int) -> Classifier:
    """ResNet-50 v1.5 (ImageNet, He et al. 2016; stride on the 3x3 conv as torchvision)."""
    return resnet50(num_classes, in_channels)
