"""Helpers shared by the ait.views tests: seeded generators and random uint8 batches."""

from __future__ import annotations

import torch


def gen(seed: int = 0) -> torch.Generator:
    """A CPU generator in a known state."""
    return torch.Generator().manual_seed(seed)


def rand_u8(n, c=3, h=8, w=8, seed=0, low=0) -> torch.Tensor:
    """(n, c, h, w) uint8 with values in [low, 255], seeded."""
    return torch.randint(low, 256, (n, c, h, w), generator=gen(seed), dtype=torch.uint8)
