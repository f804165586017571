"""MobileNetV2: Sandler, Howard, Zhu, Zhmoginov, Chen, "MobileNetV2: Inverted Residuals and
Linear Bottlenecks", CVPR 2018 (https://arxiv.org/abs/1801.04381), adapted to 32x32 inputs.

The blocks and widths are the paper's (Table 2, width multiplier 1.0): inverted residual
bottlenecks (1x1 expand, ReLU6, 3x3 depthwise, ReLU6, linear 1x1 project), a residual only where
the block keeps its shape, and no expansion conv where t = 1. As in common CIFAR implementations
(e.g. kuangliu/pytorch-cifar) the stem conv and the first stride-2 stage (24 channels) use stride 1,
so a 32x32 input reaches the last stages at 4x4 rather than 1x1. The feature map is the last 1x1
conv to 1280 channels + BN + ReLU6. With 10 classes this has 2,236,682 parameters (the same as
torchvision's ``mobilenet_v2(num_classes=10)``, strides not affecting the count).

Shapes (N = batch): (N, C, 32, 32) -> feature map (N, 1280, 4, 4);
(N, C, 28, 28) -> (N, 1280, 4, 4).
"""

from __future__ import annotations

import torch
from torch import nn

from ait.models.base import Classifier
from ait.models.registry import check_positive_int, register

__all__ = ["InvertedResidual", "MobileNetV2"]

# (expansion t, output channels c, repeats n, first stride s), paper Table 2 with the 24-channel
# stage's stride 2 -> 1 for 32x32 inputs (the stem's stride is also 1, see MobileNetV2.__init__).
CIFAR_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _conv_bn_relu6(in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Conv (same padding) + BN + ReLU6: (N, c_in, H, W) -> (N, c_out, H/s, W/s)."""
    padding = kernel // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride, padding, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """Inverted residual bottleneck: (N, c_in, H, W) -> (N, c_out, H/s, W/s)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:  # with t = 1 the expansion conv would be a plain c -> c mixing layer
            layers.append(_conv_bn_relu6(in_channels, hidden, 1))
        layers += [
            _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),  # depthwise
            # Linear bottleneck: no activation after the projection (paper sec. 3.2).
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class MobileNetV2(Classifier):
    """MobileNetV2 (width 1.0) for small images. ``feature_dim`` is 1280; the feature map is 1/8 of
    the input resolution (rounded up), after the last conv's BN-ReLU6."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        num_classes = check_positive_int("num_classes", num_classes)
        in_channels = check_positive_int("in_channels", in_channels)
        self.num_classes = num_classes
        self.feature_dim = 1280

        # Stride 1 instead of the paper's 2: at 32x32 an extra halving would leave too little
        # spatial extent for the three remaining stride-2 stages.
        layers: list[nn.Module] = [_conv_bn_relu6(in_channels, 32, 3, 1)]
        width_in = 32
        for t, c, n, s in CIFAR_SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(width_in, c, s if i == 0 else 1, t))
                width_in = c
        layers.append(_conv_bn_relu6(width_in, self.feature_dim, 1))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(self.feature_dim, num_classes)

        # Initialisation as in torchvision's MobileNetV2.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> (N, 1280, ceil(H/8), ceil(W/8))."""
        return self.features(x)


@register("mobilenetv2")
def _mobilenetv2(num_classes: int, in_channels: int) -> Classifier:
    """MobileNetV2 (Sandler et al. 2018), width 1.0, CIFAR strides."""
    return MobileNetV2(num_classes, in_channels)
