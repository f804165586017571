"""Split BatchNorm (AugMix's, as timm's ``SplitBatchNorm2d``): in training, the first view's slice
of a batch is normalised by the main BatchNorm and every other view's slice by an auxiliary one with
its own affine parameters and statistics; evaluation uses the main one alone.

The trainer feeds a network its views view-major (all of view 0, then view 1, ...), so slice i of
the batch is view i. The main BatchNorm keeps the plain layer's names (``bn.weight``,
``bn.running_mean``, ...), the auxiliary ones sit under ``bn.aux_bn.K.``: a checkpoint of a split
model loads into the plain model once the ``aux_bn`` entries are left out, which the run's loaders
and ``ait export`` do (no cleaning script, unlike timm's ``clean_checkpoint.py``).

    >>> import torch
    >>> from ait import models
    >>> net = convert(models.create("resnet20", num_classes=10), num_splits=3)
    >>> out = net(torch.zeros(6, 3, 32, 32))  # 3 views of 2 samples, view-major
    >>> sorted(k for k in net.state_dict() if k.startswith("bn1.") or k.startswith("layer1.0.bn1.aux_bn.0."))[:2]
    ['layer1.0.bn1.aux_bn.0.bias', 'layer1.0.bn1.aux_bn.0.num_batches_tracked']
"""

from __future__ import annotations

import re

import torch
from torch import nn

from ait.models.errors import ModelError

AUX = ".aux_bn."


class SplitBatchNorm2d(nn.BatchNorm2d):
    """A BatchNorm2d whose training batch is ``num_splits`` equal slices, each with its own layer."""

    def __init__(self, num_features: int, num_splits: int, **kwargs):
        super().__init__(num_features, **kwargs)
        if num_splits < 2:
            raise ValueError(f"split BatchNorm needs at least 2 splits, got {num_splits}")
        self.num_splits = num_splits
        self.aux_bn = nn.ModuleList(nn.BatchNorm2d(num_features, **kwargs) for _ in range(num_splits - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        if x.shape[0] % self.num_splits:
            raise ValueError(f"split BatchNorm: a batch of {x.shape[0]} does not split into {self.num_splits} views")
        chunks = x.chunk(self.num_splits)
        return torch.cat([super().forward(chunks[0])] + [bn(c) for bn, c in zip(self.aux_bn, chunks[1:])])


def convert(module: nn.Module, num_splits: int) -> nn.Module:
    """``module`` with every plain ``nn.BatchNorm2d`` replaced by a split one (each split starting as a
    copy of the layer); subclasses (timm's BatchNormAct2d, ...) are left as they are."""
    for name, child in list(module.named_children()):
        if type(child) is nn.BatchNorm2d:
            options = {"eps": child.eps, "momentum": child.momentum, "affine": child.affine}
            split = SplitBatchNorm2d(
                child.num_features, num_splits, track_running_stats=child.track_running_stats, **options
            )
            state = child.state_dict()
            copies = {f"aux_bn.{i}.{k}": v for i in range(num_splits - 1) for k, v in state.items()}
            split.load_state_dict({**state, **copies})
            setattr(module, name, split)
        else:
            convert(child, num_splits)
    return module


def with_aux_copies(state: dict[str, torch.Tensor], wanted) -> dict[str, torch.Tensor]:
    """``state`` (a plain model's) with each auxiliary BatchNorm tensor that ``wanted`` (a split
    model's keys) holds and ``state`` lacks, copied from its main layer: how :func:`convert` starts
    them, so a plain checkpoint loads into a split model as it would before the split."""
    out = dict(state)
    for key in wanted:
        if key not in out and AUX in f".{key}":
            main = re.sub(r"(^|\.)aux_bn\.\d+\.", r"\1", key)
            if main in state:
                out[key] = state[main]
    return out


def check_split(module: nn.Module, name: str) -> None:
    """ModelError when :func:`convert` split nothing in ``module`` (its BatchNorms are subclasses such
    as timm's BatchNormAct2d, or it has none): ``models.NAME.split_bn`` would change nothing, silently."""
    if any(isinstance(m, SplitBatchNorm2d) for m in module.modules()):
        return
    kinds = sorted({type(m).__name__ for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)})
    found = f"its BatchNorm layers are {', '.join(kinds)}" if kinds else "it has no BatchNorm layer"
    raise ModelError(f"models.{name}.split_bn: nothing to split in {name!r} ({found}; only nn.BatchNorm2d splits)")


def main_only(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict without the auxiliary BatchNorms: what the plain model loads."""
    return {k: v for k, v in state.items() if AUX not in f".{k}"}
