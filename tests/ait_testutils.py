"""Helpers for the engine and CLI tests: a tiny registered network and a config that uses it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from ait import models
from ait.models.base import Classifier


@contextmanager
def one_torch_thread():
    """Run with one torch thread: on 2 shared cores, multi-threaded kernels oversubscribe and run
    many times slower at the tiny sizes of the tests."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def stop_after_first_epoch(config, run_dir: Path, monkeypatch, **kwargs) -> None:
    """Train ``config`` (one torch thread) until Ctrl-C arrives at the end of epoch 1: the run saves
    its checkpoint and stops with RunInterrupted. kwargs: those of ait.train."""
    import os
    import signal

    import pytest

    import ait
    from ait.engine.run import RunInterrupted, RunLoop

    end_epoch = RunLoop.end_epoch

    def end_and_interrupt(loop):
        end_epoch(loop)
        os.kill(os.getpid(), signal.SIGINT)

    with monkeypatch.context() as patch, one_torch_thread():
        patch.setattr(RunLoop, "end_epoch", end_and_interrupt)
        with pytest.raises(RunInterrupted):
            ait.train(config, run_dir=run_dir, **kwargs)


REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


class TinyNet(Classifier):
    """Two conv layers; enough to learn the synthetic data, fast enough for many test runs."""

    def __init__(self, num_classes: int, in_channels: int):
        super().__init__()
        self.num_classes, self.feature_dim = num_classes, 16
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, stride=2, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
        )
        self.head = nn.Linear(16, num_classes)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


if "test_tiny" not in models.available():
    models.register("test_tiny")(lambda num_classes, in_channels: TinyNet(num_classes, in_channels))


def make_image_folder(
    root: Path, train_per_class: int = 4, val_per_class: int = 2, classes: str = "abc", size: tuple[int, int] = (40, 48)
) -> Path:
    """An ImageNet-layout folder root/{train,val}/<class>/<image> of small noise images, PNG and JPEG
    alternating, each class with its own mean colour (so there is something to learn). Returns root."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    w, h = size
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for c, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(count):
                base = np.zeros(3)
                base[c % 3] = 150
                pixels = np.clip(base + rng.normal(60, 40, (h, w, 3)), 0, 255).astype(np.uint8)
                if k % 2:
                    Image.fromarray(pixels).save(folder / f"img{k}.png")
                else:
                    Image.fromarray(pixels).save(folder / f"img{k}.JPEG", quality=90)
    return root


def tiny_config(tmp_path: Path, strategy_name: str = "ait", **sections) -> dict:
    """A run config on synthetic data with the tiny network; sections override parts of it."""
    views = {"baseline": ["rp"], "ait": ["rp", "rp"], "dml": ["rp"], "multi_ait": ["rp", "rp"]}[strategy_name]
    nets = ["test_tiny"] if strategy_name in ("baseline", "ait") else ["test_tiny", "test_tiny"]
    cfg = {
        "name": f"tiny_{strategy_name}",
        "seed": 0,
        "out_dir": str(tmp_path / "runs"),
        "data": {"dataset": "synthetic", "synthetic_size": 320},
        "strategy": {"name": strategy_name, "networks": nets, "views": views},
        "optim": {"lr": 0.1, "schedule": "cosine"},
        "train": {"epochs": 6, "batch_size": 32, "progress": "none", "precision": "fp32"},
    }
    for key, value in sections.items():
        cfg[key] = {**cfg.get(key, {}), **value} if isinstance(value, dict) else value
    return cfg


class TinyGroupNormNet(TinyNet):
    """TinyNet with GroupNorm: no batch statistics, so data-parallel training equals one process."""

    def __init__(self, num_classes: int, in_channels: int):
        super().__init__(num_classes, in_channels)
        self.body[1] = nn.GroupNorm(2, 8)
        self.body[4] = nn.GroupNorm(4, 16)


class NaNAtThirdStep(TinyNet):
    """Returns NaN logits on its third training forward pass (a non-finite loss to guard against)."""

    def __init__(self, num_classes: int, in_channels: int):
        super().__init__(num_classes, in_channels)
        self.calls = 0

    def forward_all(self, x):
        out = super().forward_all(x)
        if self.training:
            self.calls += 1
            if self.calls == 3:
                return out._replace(logits=out.logits * float("nan"))
        return out


for _name, _cls in (("test_tiny_gn", TinyGroupNormNet), ("test_nan_step3", NaNAtThirdStep)):
    if _name not in models.available():
        models.register(_name)(lambda num_classes, in_channels, _cls=_cls: _cls(num_classes, in_channels))


def launch(config_path: Path, run_dir: Path, *extra: str) -> subprocess.Popen:
    """``ait train CONFIG --run-dir RUN_DIR ...`` in a new Python process (with the test networks)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import ait_testutils; from ait.cli import main; "
        "sys.exit(main(sys.argv[2:]))"
    )
    tests = Path(__file__).resolve().parent
    return subprocess.Popen(
        [sys.executable, "-c", code, str(tests), "train", str(config_path), "--run-dir", str(run_dir), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def load_script(path: Path, name: str):
    """A script of the repository (benchmarks/, configs/) imported as module ``name``; registered in
    sys.modules, where dataclasses look their module up."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
