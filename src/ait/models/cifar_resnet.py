"""CIFAR ResNets: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
sec. 4.2 (https://arxiv.org/abs/1512.03385).

A 3x3 conv stem with 16 channels, then three stages of ``n`` BasicBlocks with widths 16/32/64 and
strides 1/2/2; depth = 6n + 2. Where a block changes shape the shortcut is a strided 1x1 conv + BN
projection (the paper's "option B"; the paper's CIFAR table uses the parameter-free "option A",
which has 2,752 fewer parameters: 0.27M/0.46M/0.66M/0.85M/1.7M for depths 20/32/44/56/110).

Shapes (N = batch): (N, C, 32, 32) -> feature map (N, 64, 8, 8); (N, C, 28, 28) -> (N, 64, 7, 7).
"""

from __future__ import annotations

import torch
from torch import nn

from ait.models.base import Classifier, init_conv_bn
from ait.models.registry import check_positive_int, register

__all__ = ["BasicBlock", "CifarResNet", "cifar_resnet"]


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers plus a shortcut: (N, c_in, H, W) -> (N, c_out, H/s, W/s)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        # Identity when the shape is unchanged; otherwise project (option B).
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class CifarResNet(Classifier):
    """ResNet-(6n+2) for small images. ``feature_dim`` is 64; the feature map is 1/4 of the input
    resolution, taken after the last block's final ReLU."""

    def __init__(self, depth: int, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        depth = check_positive_int("depth", depth)
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR ResNet depth must be 6n + 2 with n >= 1 (20, 32, ...), got {depth}")
        num_classes = check_positive_int("num_classes", num_classes)
        in_channels = check_positive_int("in_channels", in_channels)
        n = (depth - 2) // 6
        self.depth = depth
        self.num_classes = num_classes
        self.feature_dim = 64

        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
        )
        stages = []
        width_in = 16
        for width, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = [BasicBlock(width_in, width, stride)]
            blocks += [BasicBlock(width, width) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            width_in = width
        self.layer1, self.layer2, self.layer3 = stages
        self.head = nn.Linear(self.feature_dim, num_classes)

        init_conv_bn(self)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> (N, 64, ceil(H/4), ceil(W/4))."""
        return self.layer3(self.layer2(self.layer1(self.stem(x))))


def cifar_resnet(depth: int, num_classes: int, in_channels: int = 3) -> CifarResNet:
    """ResNet-``depth`` (depth = 6n + 2, else ValueError) for ``num_classes`` classes."""
    return CifarResNet(depth, num_classes, in_channels)


def _registered(depth: int) -> None:
    # A function per depth so each factory closes over its own depth.
    @register(f"resnet{depth}")
    def factory(num_classes: int, in_channels: int) -> Classifier:
        return CifarResNet(depth, num_classes, in_channels)

    factory.__doc__ = f"ResNet-{depth} (CIFAR, He et al. 2016)."


for _depth in (20, 32, 44, 56, 110):
    _registered(_depth)
del _depth
