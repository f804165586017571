"""Reading what a run saved: its config and trained networks, safely.

Checkpoints are loaded with ``torch.load(weights_only=True)``, which refuses to run code, and a
damaged file gives an error naming it instead of a raw zip or pickle message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ait import models
from ait.config import Config, config_from_dict


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, damaged or not one of ours."""


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # zipfile, pickle and EOF errors all mean the same to the user
        raise CheckpointError(f"checkpoint {str(path)!r} is damaged or not a checkpoint "
                              f"({type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''})") from None
    if not isinstance(state, dict) or not str(state.get("format", "")).startswith("ait-checkpoint"):
        raise CheckpointError(f"checkpoint {str(path)!r} was not written by ait (no 'format' key)")
    return state


def networks_from_checkpoint(state: dict[str, Any], num_classes: int, in_channels: int,
                             device: torch.device | str = "cpu") -> tuple[Config, list[nn.Module]]:
    """The run's config and its networks with trained weights, in eval mode."""
    cfg = config_from_dict(state["config"])
    nets = []
    for name, weights in zip(cfg.strategy.networks, state["networks"]):
        net = models.create(name, num_classes=num_classes, in_channels=in_channels)
        net.load_state_dict(weights)
        nets.append(net.to(device).eval())
    return cfg, nets
