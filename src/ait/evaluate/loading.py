"""Load a finished run for evaluation: its config, trained networks, data and numeric settings.

After ``ait train configs/smoke/synthetic_resnet20_ait.yaml``::

    >>> from ait.evaluate.loading import load_run
    >>> from ait.runtime.predict import predict_logits
    >>> run = load_run("runs/smoke_synthetic_resnet20_ait/seed0", device="cpu")
    >>> logits = predict_logits(run.networks, run.data.test.images, run.prepare, run.precision)
    >>> tuple(logits[0].shape), run.config.strategy.name  # one (N, num_classes) per network
    ((128, 10), 'ait')
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ait.config import RESUME_MAY_CHANGE, Config, ConfigError, UnknownModelError, config_differences, load_config
from ait.engine.checkpoint import CheckpointError, load_checkpoint, networks_from_checkpoint
from ait.engine.rundir import RunDirError, check_data_unchanged, import_hint, read_model_input
from ait.evaluate.folders import folder_run_data
from ait.models import ModelError
from ait.runtime.precision import Precision, resolve_device, resolve_precision
from ait.runtime.rundata import RunData, build_data


class RunLoadError(RunDirError):
    """A run directory that cannot be evaluated (missing, incomplete or damaged).

    A :class:`RunDirError` so that the CLI's existing error handling prints it as one line.
    """


@dataclass
class LoadedRun:
    """A trained run, ready for evaluation.

    networks: eval mode, on ``precision.device``, channels_last when the precision says so.
    data: the run's train / test sets exactly as training built them (same subsets, same limits):
        arrays, or for image-folder runs the folders' indexes with a streamed test set
        (:func:`ait.evaluate.folders.folder_run_data`); None when loaded with ``data=False``.
    summary: summary.json as a dict, or None when the run has not finished.
    normalisation: (mean, std) of the network input, as recorded in training; default the data's
        (runs recorded before env.json had it).
    """

    run_dir: Path
    config: Config
    networks: list[nn.Module]
    data: RunData | None
    precision: Precision
    summary: dict[str, Any] | None = None
    normalisation: tuple[Sequence[float], Sequence[float]] | None = None
    _mean: torch.Tensor = field(init=False, repr=False)
    _std: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        device = self.precision.device
        mean, std = self.normalisation or (self.data.mean, self.data.std)
        self._mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def eval_batch_size(self) -> int:
        return self.config.train.eval_batch_size

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) on the device -> normalised float32 network input, as in training."""
        x = images.float().div_(255.0)
        return self.precision.prepare_input((x - self._mean) / self._std)


def _require_file(path: Path, run_dir: Path, what: str) -> None:
    if not path.is_file():
        raise RunLoadError(
            f"run directory {str(run_dir)!r} has no {path.name} ({what}); is it a finished `ait train` run directory?"
        )


def check_run_dir(run_dir: str | Path) -> Path:
    """The run directory as a Path, after checking that it holds config.yaml and checkpoint.pt."""
    path = Path(run_dir).expanduser()
    if not path.exists():
        raise RunLoadError(f"run directory {str(path)!r} does not exist")
    if not path.is_dir():
        raise RunLoadError(f"run directory {str(path)!r} is not a directory")
    _require_file(path / "config.yaml", path, "the run's resolved config")
    _require_file(path / "checkpoint.pt", path, "the trained networks; was train.checkpoint off?")
    return path


def load_run(
    run_dir: str | Path, device: str | None = "auto", allow_data_change: bool = False, data: bool = True
) -> LoadedRun:
    """Load ``run_dir`` (config.yaml, checkpoint.pt, summary.json if present) for evaluation.

    device: "auto" (CUDA when available), "cpu", "cuda:1", ...; None uses the run's train.device.
    Precision and channels_last follow the run's train settings, resolved on that device. The
    checkpoint must have been trained with config.yaml's config, and the data must be the data it
    was trained on (the fingerprints the checkpoint recorded; ``allow_data_change`` lets changed
    data through). data=False loads the networks alone, from what the run recorded of its input
    (env.json), without reading the data. Raises :class:`RunLoadError` naming the path and what differs.
    """
    path = check_run_dir(run_dir)
    config, state = read_config_and_checkpoint(path)
    spec = config.train.device if device is None else device
    try:
        torch_device = resolve_device(spec)
    except (ValueError, RuntimeError) as err:
        raise RunLoadError(f"cannot evaluate run directory {str(path)!r} on device {spec!r}: {err}") from None
    precision = resolve_precision(torch_device, config.train.precision, config.train.channels_last)
    if not data:
        record = read_model_input(path)
        if record is None:
            raise RunLoadError(f"run directory {str(path)!r} records no model input (env.json); load it with its data")
        shape, normalisation = record["input_shape"], (record["mean"], record["std"])
        networks = _networks(path, state, len(record["classes"]), shape[0], torch_device, precision)
        return LoadedRun(path, config, networks, None, precision, _read_summary(path, state), normalisation)
    run_data = evaluation_data(config)  # the same test set (and limits) as in training
    try:
        hint = "pass --allow-data-change to evaluate on the data as it is now"
        saved = state.get("fingerprints", {}).get("data") or {}
        where = f"run directory {str(path)!r}"
        noise = config.data.label_noise
        check_data_unchanged(saved, run_data.info["fingerprint"], where, allow_data_change, hint, noise)
    except RunDirError as err:
        raise RunLoadError(str(err)) from None
    test = run_data.test
    networks = _networks(path, state, test.num_classes, test.image_shape[0], torch_device, precision)
    # The normalisation the networks were trained with (env.json), not one recomputed from the data
    # as it is now: they differ when the data changed (allow_data_change).
    record = read_model_input(path) or {}
    trained = (record["mean"], record["std"]) if "mean" in record and "std" in record else None
    return LoadedRun(path, config, networks, run_data, precision, _read_summary(path, state), trained)


def evaluation_data(config: Config) -> RunData:
    """The run's data as training built it: arrays in memory, or an image folder's indexes (whose
    test set :mod:`ait.evaluate.folders` streams from disk)."""
    if config.data.dataset == "imagefolder":
        return folder_run_data(config)
    return build_data(config.data, config.seed)


def read_config_and_checkpoint(path: Path) -> tuple[Config, dict[str, Any]]:
    """config.yaml and checkpoint.pt, refused unless the checkpoint was trained with that config."""
    try:
        config = load_config(path / "config.yaml")
    except ConfigError as err:
        hint = import_hint(path, err.model) if isinstance(err, UnknownModelError) else ""
        raise RunLoadError(f"run directory {str(path)!r}: config.yaml is not a valid config: {err}{hint}") from None
    try:
        state = load_checkpoint(path / "checkpoint.pt", map_location="cpu")
    except CheckpointError as err:
        raise RunLoadError(f"run directory {str(path)!r}: {err}") from None
    diffs = config_differences(state.get("config", {}), config.to_dict(), ignore=RESUME_MAY_CHANGE)
    if diffs:
        raise RunLoadError(
            f"run directory {str(path)!r}: checkpoint.pt was trained with another config than config.yaml "
            f"(checkpoint -> config.yaml: {'; '.join(diffs[:5])}{'; ...' if len(diffs) > 5 else ''}); "
            "copy the checkpoint together with its own config.yaml"
        )
    return config, state


def _networks(
    path: Path, state: dict[str, Any], num_classes: int, in_channels: int, device: torch.device, precision: Precision
):
    """The trained networks, eval mode, on ``device`` in the run's memory format."""
    try:
        _, networks = networks_from_checkpoint(state, num_classes, in_channels, device)
    except ModelError as err:  # e.g. an import-path model whose module was not named with --import
        raise RunLoadError(f"run directory {str(path)!r}: {err}") from None
    except (RuntimeError, KeyError, ValueError) as err:  # shape mismatch, unknown model name
        raise RunLoadError(
            f"run directory {str(path)!r}: cannot rebuild the networks from checkpoint.pt "
            f"({type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''})"
        ) from None
    if precision.channels_last:
        networks = [net.to(memory_format=torch.channels_last) for net in networks]
    return [net.eval() for net in networks]


def _read_summary(path: Path, state: dict[str, Any]) -> dict[str, Any] | None:
    """summary.json, or None (with a warning) for an unfinished run."""
    summary_path = path / "summary.json"
    if summary_path.is_file():
        try:
            return json.loads(summary_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise RunLoadError(f"run directory {str(path)!r}: summary.json is unreadable ({err})") from None
    # A checkpoint without a summary is an interrupted run: still worth evaluating, but say so.
    pos = state.get("position")
    where = f" (saved at epoch {pos.get('epoch', 0) + 1}, step {pos.get('step', 0)})" if isinstance(pos, dict) else ""
    warnings.warn(
        f"run directory {str(path)!r} has no summary.json (unfinished run?); evaluating its last checkpoint{where}",
        RuntimeWarning,
        stacklevel=3,
    )
    return None
