"""Wide Residual Networks: Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016
(https://arxiv.org/abs/1605.07146).

WRN-d-k: a 3x3 conv stem with 16 channels, then three stages of n = (d - 4) / 6 pre-activation
blocks (BN-ReLU-conv3x3-BN-ReLU-[dropout]-conv3x3) with widths 16k/32k/64k and strides 1/2/2, and
a final BN-ReLU. A block that changes shape has a 1x1 conv shortcut applied to its pre-activated
input, as in the authors' code. Published sizes: WRN-28-10 36.5M, WRN-16-4 2.7M, WRN-40-2 2.2M.

Shapes (N = batch): (N, C, 32, 32) -> feature map (N, 64k, 8, 8); (N, C, 28, 28) -> (N, 64k, 7, 7).
"""

from __future__ import annotations

import torch
from torch import nn

from ait.models.base import Classifier, init_conv_bn
from ait.models.registry import check_positive_int, register

__all__ = ["PreActBlock", "WideResNet", "wide_resnet"]


class PreActBlock(nn.Module):
    """Pre-activation wide basic block: (N, c_in, H, W) -> (N, c_out, H/s, W/s)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.projection: nn.Conv2d | None = None
        if stride != 1 or in_channels != out_channels:
            self.projection = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Not in-place: with an identity shortcut the raw input x is still needed for the sum.
        act = torch.relu(self.bn1(x))
        out = self.conv1(act)
        out = self.conv2(self.dropout(self.relu(self.bn2(out))))
        # The projection sees the pre-activated input (the authors' code does the same), so
        # the first block of every stage starts from a normalised signal.
        shortcut = x if self.projection is None else self.projection(act)
        return out + shortcut


class WideResNet(Classifier):
    """WRN-``depth``-``widen_factor``. ``feature_dim`` is 64 * widen_factor; the feature map is
    1/4 of the input resolution, after the final BN-ReLU."""

    def __init__(
        self,
        depth: int,
        widen_factor: int,
        num_classes: int = 10,
        in_channels: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        depth = check_positive_int("depth", depth)
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(f"Wide ResNet depth must be 6n + 4 with n >= 1 (10, 16, 28, ...), got {depth}")
        widen_factor = check_positive_int("widen_factor", widen_factor)
        num_classes = check_positive_int("num_classes", num_classes)
        in_channels = check_positive_int("in_channels", in_channels)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        n = (depth - 4) // 6
        self.depth = depth
        self.widen_factor = widen_factor
        self.num_classes = num_classes
        self.feature_dim = 64 * widen_factor

        self.stem = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        stages = []
        width_in = 16
        for base, stride in ((16, 1), (32, 2), (64, 2)):
            width = base * widen_factor
            blocks = [PreActBlock(width_in, width, stride, dropout)]
            blocks += [PreActBlock(width, width, 1, dropout) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            width_in = width
        self.layer1, self.layer2, self.layer3 = stages
        # Pre-activation blocks end in a bare sum, so the trunk closes with BN-ReLU.
        self.final = nn.Sequential(nn.BatchNorm2d(self.feature_dim), nn.ReLU(inplace=True))
        self.head = nn.Linear(self.feature_dim, num_classes)

        init_conv_bn(self)
        nn.init.zeros_(self.head.bias)  # as in the reference implementations

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) -> (N, 64 * widen_factor, ceil(H/4), ceil(W/4))."""
        out = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.final(out)


def wide_resnet(
    depth: int, widen_factor: int, num_classes: int, in_channels: int = 3, dropout: float = 0.0
) -> WideResNet:
    """WRN-``depth``-``widen_factor`` (depth = 6n + 4); ValueError for other depths."""
    return WideResNet(depth, widen_factor, num_classes, in_channels, dropout)


def _registered(depth: int, widen_factor: int) -> None:
    # A function per configuration so each factory closes over its own depth and width.
    @register(f"wrn{depth}_{widen_factor}")
    def factory(num_classes: int, in_channels: int) -> Classifier:
        return WideResNet(depth, widen_factor, num_classes, in_channels)

    factory.__doc__ = f"WRN-{depth}-{widen_factor} (Zagoruyko & Komodakis 2016), no dropout."


for _depth, _k in ((28, 10), (16, 4), (16, 8), (40, 2)):
    _registered(_depth, _k)
del _depth, _k
