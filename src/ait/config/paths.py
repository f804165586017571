"""The paths of a config: its data paths, resolved against ``$AIT_DATA`` (or the working directory)
when a run starts, so that it can be evaluated and resumed from anywhere, and its run directory's
place under ``out_dir``."""

from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path

if typing.TYPE_CHECKING:
    from ait.config.schema import Config

# The data keys that name files or folders: a run resolves them when it starts (resolve_data_paths).
DATA_PATH_KEYS = ("root", "train_file", "test_file")
DATA_ROOT_VARIABLE = "AIT_DATA"


def run_dir_under(out_dir: str | Path, name: str, seed: int) -> Path:
    """Where a run of config ``name`` and ``seed`` lives under ``out_dir``: ``out_dir/<name>/seed<k>``,
    the layout ``ait train`` writes, ``ait sweep`` counts done runs in and records are kept in."""
    return Path(out_dir) / name / f"seed{seed}"


def resolve_data_path(path: str) -> str:
    """``path`` as an absolute path: ``~`` expanded, a relative path taken under ``$AIT_DATA`` when
    that is set and under the working directory otherwise (no symlink is followed)."""
    path = os.path.expanduser(path)
    if os.path.isabs(path):
        return os.path.normpath(path)
    return os.path.abspath(os.path.join(os.environ.get(DATA_ROOT_VARIABLE) or os.getcwd(), path))


def resolve_data_paths(config: Config) -> Config:
    """The config with every data path absolute (:func:`resolve_data_path`), so that its run can be
    evaluated and resumed from any folder, and a relative path and its absolute form are one run."""
    resolved = {k: resolve_data_path(v) for k in DATA_PATH_KEYS if (v := getattr(config.data, k))}
    return dataclasses.replace(config, data=dataclasses.replace(config.data, **resolved))


def data_paths_written(config: Config) -> dict[str, dict[str, str]]:
    """{"data.KEY": {"written": as in the config, "resolved": absolute}} for each data path: what
    env.json records of a run's paths."""
    return {
        f"data.{k}": {"written": v, "resolved": resolve_data_path(v)}
        for k in DATA_PATH_KEYS
        if (v := getattr(config.data, k))
    }
