"""The interface every model in the registry implements.

A classifier is a trunk that ends in a spatial feature map, global average pooling, and a linear
head. AiLoss can be applied at each of the three (paper sec. 4.2.1), so one forward pass exposes all
of them without hooks::

    >>> import torch
    >>> from ait import models
    >>> model, x = models.create("resnet20", num_classes=10), torch.zeros(2, 3, 32, 32)  # x: (N, C, H, W)
    >>> out = model.forward_all(x)
    >>> tuple(out.feature_map.shape)  # (N, F, h, w): last spatial feature map, before pooling
    (2, 64, 8, 8)
    >>> tuple(out.feature.shape)  # (N, F): pooled feature
    (2, 64)
    >>> tuple(out.logits.shape), tuple(model(x).shape)  # (N, num_classes); model(x) gives the logits only
    ((2, 10), (2, 10))
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class ModelOutputs(NamedTuple):
    """The three layers a consistency loss can be applied to, for one forward pass."""

    feature_map: torch.Tensor  # (N, F, h, w)
    feature: torch.Tensor  # (N, F)
    logits: torch.Tensor  # (N, num_classes)


def init_conv_bn(module: nn.Module) -> None:
    """He (fan_out) init for every conv, identity for every BatchNorm: the ResNet family's scheme."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class Classifier(nn.Module):
    """Base class: subclasses build ``self.head`` (nn.Linear) and implement :meth:`trunk`."""

    num_classes: int
    feature_dim: int
    head: nn.Linear

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> last spatial feature map (N, feature_dim, h, w)."""
        raise NotImplementedError

    def forward_all(self, x: torch.Tensor) -> ModelOutputs:
        feature_map = self.trunk(x)
        feature = feature_map.mean(dim=(2, 3))  # global average pooling, (N, F)
        return ModelOutputs(feature_map, feature, self.head(feature))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x).logits
