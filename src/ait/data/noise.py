"""Symmetric label noise (paper Table 3)."""

from __future__ import annotations

import math

import torch

__all__ = ["corrupt_labels"]


def corrupt_labels(labels: torch.Tensor, fraction: float, num_classes: int, seed: int) -> tuple[torch.Tensor, float]:
    """Give a seeded random subset of round(fraction * N) samples a uniformly random label.

    The new label is drawn from all `num_classes` classes, so about 1/K of the chosen samples keep
    their label by chance: the expected changed fraction is fraction * (1 - 1/K).
    labels: int64 (N,). Returns (new labels (N,) on labels' device, fraction actually changed).
    The input is not modified.
    """
    if not 0.0 <= float(fraction) <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes!r}")
    if labels.dim() != 1 or labels.dtype != torch.int64:
        raise ValueError(f"labels must be int64 (N,), got {labels.dtype} {tuple(labels.shape)}")
    n = labels.shape[0]
    if n == 0:
        return labels.clone(), 0.0
    if bool(((labels < 0) | (labels >= num_classes)).any()):
        raise ValueError(f"labels must be in [0, {num_classes})")
    # Half-up rounding (Python's round() rounds halves to even, which surprises at e.g. 2.5).
    count = min(n, int(math.floor(float(fraction) * n + 0.5)))
    # Generated on the CPU so the same seed gives the same noise on every device.
    g = torch.Generator().manual_seed(int(seed))
    chosen = torch.randperm(n, generator=g)[:count]
    new_values = torch.randint(0, int(num_classes), (count,), generator=g)
    out = labels.detach().cpu().clone()
    out[chosen] = new_values
    changed = int((out != labels.detach().cpu()).sum()) / n
    return out.to(labels.device), changed
