"""Helpers for the engine and CLI tests: a tiny registered network and a config that uses it."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ait import models
from ait.models.base import Classifier

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


class TinyNet(Classifier):
    """Two conv layers; enough to learn the synthetic data, fast enough for many test runs."""

    def __init__(self, num_classes: int, in_channels: int):
        super().__init__()
        self.num_classes, self.feature_dim = num_classes, 16
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.head = nn.Linear(16, num_classes)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


if "test_tiny" not in models.available():
    models.register("test_tiny")(lambda num_classes, in_channels: TinyNet(num_classes, in_channels))


def tiny_config(tmp_path: Path, strategy: str = "ait", **sections) -> dict:
    """A run config on synthetic data with the tiny network; sections override parts of it."""
    views = {"baseline": ["rp"], "ait": ["rp", "rp"], "dml": ["rp"], "multi_ait": ["rp", "rp"]}[strategy]
    nets = ["test_tiny"] if strategy in ("baseline", "ait") else ["test_tiny", "test_tiny"]
    cfg = {
        "name": f"tiny_{strategy}",
        "seed": 0,
        "out_dir": str(tmp_path / "runs"),
        "data": {"dataset": "synthetic", "synthetic_size": 320},
        "strategy": {"name": strategy, "networks": nets, "views": views},
        "optim": {"lr": 0.1, "schedule": "cosine"},
        "train": {"epochs": 6, "batch_size": 32, "progress": "none", "precision": "fp32"},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return cfg
