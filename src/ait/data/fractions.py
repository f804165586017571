"""Class-balanced training subsets (paper Table 4: training on a fraction of the data)."""

from __future__ import annotations

import math

import torch

__all__ = ["stratified_subset"]


def stratified_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Sorted int64 indices of a seeded subset with round(fraction * count) samples of each class.

    Every class present keeps at least one sample. labels: integer (N,). fraction in (0, 1].
    Rounding is half-up. fraction = 1 returns all indices.
    """
    if not 0.0 < float(fraction) <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    if labels.dim() != 1 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integers (N,), got {labels.dtype} {tuple(labels.shape)}")
    labels = labels.detach().cpu().to(torch.int64)
    # CPU generator, classes visited in sorted order: the subset depends only on (labels, seed).
    g = torch.Generator().manual_seed(int(seed))
    picked = []
    for c in torch.unique(labels).tolist():  # sorted
        members = (labels == c).nonzero().flatten()
        k = max(1, min(len(members), int(math.floor(float(fraction) * len(members) + 0.5))))
        picked.append(members[torch.randperm(len(members), generator=g)[:k]])
    if not picked:
        return torch.empty(0, dtype=torch.int64)
    return torch.cat(picked).sort().values
