"""Checkpoints: everything a run needs to continue exactly, saved safely, loaded safely.

A checkpoint holds every network, optimiser and schedule, the position (epoch, next step), the
partial sums of the epoch in progress, the RNG states (torch, CUDA, numpy, Python) and the
config. It is written to a temporary file and renamed, so an interruption during a save leaves
the previous checkpoint intact, and it is read with ``torch.load(weights_only=True)``, which
refuses to run code: everything in it is tensors and plain data.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ait import models
from ait.config import Config, config_from_dict
from ait.models.weights import load_error
from ait.runtime.files import atomic_write

FORMAT = "ait-checkpoint-2"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, damaged or not one of ours."""

    exit_status = 2  # `ait` ends with this status and a one-line message (ait.cli.run_handler)


def capture_rng() -> dict[str, Any]:
    """RNG states as tensors and plain data (loadable with weights_only=True)."""
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": np_name,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_gauss),
        },
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class CheckpointWriteError(CheckpointError):
    """A checkpoint could not be written (disk full, read-only, ...); the previous one is kept."""

    exit_status, exit_label = 1, "run failed: "


class NonFiniteStateError(CheckpointError):
    """The state to save holds NaN or infinite values, so it is not written."""

    exit_status, exit_label = 1, "run failed: "


def nonfinite_tensors(state: dict[str, Any]) -> list[str]:
    """Names ("net0.conv1.weight", "optimizer0.state.3.momentum_buffer") of the floating tensors of
    ``state["networks"]`` and ``state["optimizers"]`` that hold a NaN or infinite value."""
    bad = []
    for k, weights in enumerate(state.get("networks", [])):
        bad += [f"net{k}.{name}" for name, t in weights.items() if t.is_floating_point() and not t.isfinite().all()]
    for k, opt in enumerate(state.get("optimizers", [])):
        for index, entries in opt.get("state", {}).items():
            bad += [
                f"optimizer{k}.state.{index}.{name}"
                for name, t in entries.items()
                if isinstance(t, torch.Tensor) and t.is_floating_point() and not t.isfinite().all()
            ]
    return bad


def _kept(path: Path) -> str:
    return f"the previous checkpoint {path} is kept" if path.exists() else "no checkpoint of this run exists yet"


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` atomically: a uniquely named temporary file in the same directory, synced to
    the disk, then a rename. A state holding NaN or infinite values is never written
    (NonFiniteStateError); a failed write (disk full, read-only) raises CheckpointWriteError with
    the free space and what to do, and leaves the previous checkpoint and no temporary file."""
    bad = nonfinite_tensors(state)
    if bad:
        raise NonFiniteStateError(
            f"checkpoint {path} not written: {len(bad)} tensor(s) hold NaN or infinite values "
            f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); {_kept(path)}"
        )
    try:
        atomic_write(path, lambda f: torch.save({"format": FORMAT, **state}, f))
    except (OSError, RuntimeError) as err:  # torch.save reports a full disk as a RuntimeError
        reason = (err.strerror if isinstance(err, OSError) and err.strerror else str(err)).splitlines()[0][:200]
        free = shutil.disk_usage(path.parent).free / 2**20
        need = state_bytes(state) / 2**20
        raise CheckpointWriteError(
            f"could not write checkpoint {path}: {reason}; {free:.0f} MiB free on its disk, the checkpoint needs "
            f"about {need:.0f} MiB; {_kept(path)}. Free some space, then continue with "
            f"`ait train --resume {path.parent}`"
        ) from None


def state_bytes(state: dict[str, Any]) -> int:
    """Bytes of the tensors a checkpoint holds (networks and optimiser states), plus 1 MiB."""
    total = sum(t.numel() * t.element_size() for w in state.get("networks", []) for t in w.values())
    for opt in state.get("optimizers", []):
        for entries in opt.get("state", {}).values():
            total += sum(t.numel() * t.element_size() for t in entries.values() if isinstance(t, torch.Tensor))
    return total + (1 << 20)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint without running code; a damaged file gives an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # zip, pickle and EOF errors all mean the same thing to the user
        raise CheckpointError(f"checkpoint {str(path)!r} is damaged or not a checkpoint ({load_error(err)})") from None
    if not isinstance(state, dict) or not str(state.get("format", "")).startswith("ait-checkpoint"):
        raise CheckpointError(f"checkpoint {str(path)!r} was not written by ait (no 'format' key)")
    return state


def networks_from_checkpoint(
    state: dict[str, Any], num_classes: int, in_channels: int, device: torch.device | str = "cpu"
) -> tuple[Config, list[nn.Module]]:
    """The run's config and its networks with trained weights, in eval mode. A module named by
    the config is not imported here (a received run must not run code): --import does that."""
    cfg = config_from_dict(state["config"])
    nets = []
    for name, weights in zip(cfg.strategy.networks, state["networks"]):
        kwargs = cfg.models[name].kwargs if name in cfg.models else {}
        net = models.create(name, num_classes=num_classes, in_channels=in_channels, kwargs=kwargs, allow_import=False)
        net.load_state_dict(models.split_bn.main_only(weights))  # a split-BatchNorm model evaluates as the plain one
        nets.append(net.to(device).eval())
    return cfg, nets
