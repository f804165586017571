"""How long a planned run will take, for ``ait sweep --budget-s``: its work in images through the
networks, divided by a rate measured on this machine.

The work of a run is ``epochs x steps per epoch x networks x train.batch_size`` images through a
network (every network sees ``batch_size`` images a step, whatever the strategy), so one rate in
images/s holds across strategies, models of a similar cost, and schedules. The rate comes from the
sweep's finished runs (their work over their ``train_seconds``), or else from a short calibration
run of the first run to do (a few steps, in a temporary directory). Each run also pays a start-up
(imports, data, the first evaluation): the finished runs' wall time beyond their training, or the
calibration's.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ait.config import Config, resolve_data_paths

KNOWN_SIZES = {"cifar10": 50_000, "cifar100": 50_000, "fashion_mnist": 60_000}
CALIBRATION_STEPS = 20


def train_size(config: Config) -> int:
    """The training samples a run will use, from the data's files without loading its images."""
    d = resolve_data_paths(config).data  # as the run will find them: relative paths under $AIT_DATA
    if d.dataset == "synthetic":
        size = d.synthetic_size
    elif d.dataset in KNOWN_SIZES:
        size = KNOWN_SIZES[d.dataset]
    elif d.dataset == "npz":
        import numpy as np

        if not Path(d.train_file).is_file():
            from ait.data.errors import DataError

            raise DataError(f"{d.train_file}: file not found (data.train_file)")
        with np.load(d.train_file, allow_pickle=False) as data:
            size = int(data["labels"].shape[0])  # the labels alone: the images stay on disk
    elif d.dataset == "hf":
        from ait.data.hf import hf_split_size

        size = hf_split_size(d.root, d.train_split)  # from the files' metadata: nothing is decoded
    else:  # imagefolder: one entry per file of train/<class>/
        size = sum(1 for c in (Path(d.root) / "train").iterdir() if c.is_dir() for _ in c.iterdir())
    if d.train_limit:
        size = min(size, d.train_limit)
    kept = math.floor(size * d.train_fraction)
    # The validation split is carved from those (per class, rounded: within a few samples).
    return max(1, kept - math.floor(kept * d.val_fraction + 0.5))


def work(config: Config) -> float:
    """Images through the networks over the whole run (see the module docstring)."""
    s, t = config.strategy, config.train
    steps = math.ceil(train_size(config) / s.samples_per_step(t.batch_size))
    if t.max_steps_per_epoch:
        steps = min(steps, t.max_steps_per_epoch)
    return float(t.epochs * steps * len(s.networks) * t.batch_size)


@dataclass(frozen=True)
class Rate:
    """Images through the networks per second, and the start-up seconds of a run, as measured."""

    images_per_s: float
    startup_s: float
    source: str  # "N finished runs" or "a calibration of RUN"

    def predict(self, config: Config) -> float:
        return self.startup_s + work(config) / self.images_per_s


def from_finished(runs: Sequence[tuple[Config, Path]]) -> Rate | None:
    """The median rate of the finished runs (config, run directory); None without any."""
    rates, startups = [], []
    for config, run_dir in runs:
        try:
            summary = json.loads((run_dir / "summary.json").read_text())
            seconds = float(summary["train_seconds"])
            rates.append(work(config) / seconds)
            startups.append(max(0.0, float(summary.get("wall_seconds", seconds)) - seconds))
        except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
            continue
    if not rates:
        return None
    return Rate(statistics.median(rates), statistics.median(startups), f"{len(rates)} finished runs")


def calibrate(config: Config, train_fn: Callable[..., dict]) -> Rate:
    """Train ``config`` for a few steps of one epoch in a temporary directory, and time it."""
    import dataclasses

    t = config.train
    steps = min(CALIBRATION_STEPS, t.max_steps_per_epoch or CALIBRATION_STEPS)
    short = dataclasses.replace(
        config,
        name=f"{config.name}_calibration",
        train=dataclasses.replace(t, epochs=1, max_steps_per_epoch=steps, checkpoint=False, loggers=[]),
    )
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ait-calibration-") as folder:
        summary = train_fn(short, run_dir=Path(folder) / "run")
    wall = time.perf_counter() - start
    seconds = max(float(summary["train_seconds"]), 1e-6)
    return Rate(work(short) / seconds, max(0.0, wall - seconds), f"a calibration of {config.name} ({steps} steps)")
