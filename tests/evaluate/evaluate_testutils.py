"""Hand-built networks with known invariances, and a LoadedRun around them (no training needed)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ait.config import Config
from ait.data import ImageArrays
from ait.evaluate.loading import LoadedRun
from ait.models.base import Classifier
from ait.runtime.precision import Precision
from ait.runtime.rundata import RunData

LUMA = (0.299, 0.587, 0.114)


class _FixedConvNet(Classifier):
    """conv (fixed seeded weights) -> ReLU -> conv -> ReLU, on ``in_channels`` input planes."""

    def __init__(self, in_channels: int, num_classes: int = 10, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.num_classes, self.feature_dim = num_classes, 12
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 12, 3, stride=2, padding=1), nn.ReLU()
        )
        self.head = nn.Linear(12, num_classes)
        with torch.no_grad():
            self.head.weight.mul_(8.0)  # spread the logits so that predictions are far from uniform


class LumaNet(_FixedConvNet):
    """Sees only the luma of its input, so it ignores colour: a grayscale copy looks the same.

    With per-channel normalisation mean = std = 0.5 on every channel, the luma of the normalised
    input is (luma(x) - 0.5) / 0.5 because the luma weights sum to 1: still a function of luma only.
    """

    def __init__(self, num_classes: int = 10, seed: int = 0):
        super().__init__(1, num_classes, seed)
        self.register_buffer("luma", torch.tensor(LUMA).view(1, 3, 1, 1))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x * self.luma).sum(dim=1, keepdim=True))  # (N, 1, H, W) -> (N, 12, h, w)


class ColourNet(_FixedConvNet):
    """The same architecture on all input channels: sensitive to colour."""

    def __init__(self, num_classes: int = 10, seed: int = 0, in_channels: int = 3):
        super().__init__(in_channels, num_classes, seed)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ConstantNet(Classifier):
    """Ignores its input entirely: the same feature and logits for every image."""

    def __init__(self, num_classes: int = 10, favourite: int = 3):
        super().__init__()
        self.num_classes, self.feature_dim = num_classes, 4
        self.const = nn.Parameter(torch.tensor([1.0, -2.0, 0.5, 3.0]).view(1, 4, 1, 1))
        self.head = nn.Linear(4, num_classes)
        with torch.no_grad():
            self.head.weight.zero_()
            self.head.bias.zero_()
            self.head.bias[favourite] = 5.0  # always predicts class `favourite`

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.const.expand(x.shape[0], -1, 2, 2)


def colour_images(n: int = 40, seed: int = 0, channels: int = 3, size: int = 16) -> torch.Tensor:
    """uint8 (n, C, size, size): smooth random colour blobs plus noise (not constant, so shifts show)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, channels, 4, 4, generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    x = (x + 0.1 * torch.rand(n, channels, size, size, generator=g)).clamp(0, 1)
    return (x * 255).round().to(torch.uint8)


def loaded_run(
    networks,
    images: torch.Tensor,
    labels: torch.Tensor,
    run_dir: Path | str = ".",
    mean: float = 0.5,
    std: float = 0.5,
    num_classes: int = 10,
) -> LoadedRun:
    """A LoadedRun around hand-built networks and a test set; fp32 on the CPU."""
    classes = [f"c{i}" for i in range(num_classes)]
    arrays = ImageArrays(images, labels, classes, name="test")
    c = images.shape[1]
    data = RunData(arrays, arrays, (mean,) * c, (std,) * c)
    precision = Precision(torch.device("cpu"), None, False)
    return LoadedRun(Path(run_dir), Config(), [net.eval() for net in networks], data, precision)
