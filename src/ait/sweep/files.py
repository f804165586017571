"""Sweep files: a YAML mapping with ``experiments:`` (and a top-level ``set:``), read into
:class:`ait.sweep.plan.Experiment` objects, every key checked with a one-line error naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ait.config import parse_yaml
from ait.sweep.errors import SweepError
from ait.sweep.plan import EvalSpec, Experiment

SWEEP_KEYS = ("experiments", "set")

EXPERIMENT_KEYS = ("config", "configs", "seeds", "grid", "set", "eval")

EVAL_KEYS = ("args", "baseline")


def is_sweep_file(path: str | Path) -> bool:
    """Whether ``path`` is a sweep file (a YAML mapping with ``experiments:``), not a run config."""
    try:
        data = parse_yaml(Path(path).read_text(encoding="utf-8"), path)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "experiments" in data


def read_sweep_file(path: str | Path) -> tuple[list[Experiment], list[str]]:
    """The experiments of a sweep file and its top-level ``set`` overrides; SweepError naming the key.

    ``experiments`` is a list; each entry names ``config`` (a path, relative to the working directory
    as on the command line) or ``configs`` (a list), and optionally ``seeds``, ``grid`` ({key: [values]})
    and ``set`` ([KEY=VALUE, ...])."""
    where = str(path)
    data = parse_yaml(Path(path).read_text(encoding="utf-8"), path)
    _known_keys(where, data, SWEEP_KEYS)
    entries = data["experiments"]
    if not isinstance(entries, list) or not entries:
        raise SweepError(f"{where}: experiments: expected a non-empty list of experiments")
    experiments = [_experiment(f"{where}: experiments[{i}]", entry) for i, entry in enumerate(entries)]
    return experiments, _string_list(f"{where}: set", data.get("set") or [])


def _known_keys(where: str, data: Any, keys: tuple[str, ...]) -> None:
    if not isinstance(data, dict):
        raise SweepError(f"{where}: expected a mapping with {', '.join(keys)}")
    for key in data:
        if key not in keys:
            raise SweepError(f"{where}: unknown key {key!r}; valid keys: {', '.join(keys)}")


def _string_list(where: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SweepError(f"{where}: expected a list of KEY=VALUE strings, got {value!r}")
    return list(value)


def _experiment(where: str, entry: Any) -> Experiment:
    _known_keys(where, entry, EXPERIMENT_KEYS)
    if ("config" in entry) == ("configs" in entry):
        raise SweepError(f"{where}: give config (one path) or configs (a list of paths)")
    configs = [entry["config"]] if "config" in entry else entry["configs"]
    if not isinstance(configs, list) or not configs or not all(isinstance(c, str) for c in configs):
        raise SweepError(f"{where}: config(s): expected paths of YAML configs, got {configs!r}")
    seeds = entry.get("seeds")
    if seeds is not None and (not isinstance(seeds, list) or not all(isinstance(x, int) for x in seeds)):
        raise SweepError(f"{where}: seeds: expected a list of integers, got {seeds!r}")
    grid = entry.get("grid")
    if grid is not None and not isinstance(grid, dict):
        raise SweepError(f"{where}: grid: expected a mapping of config keys to lists of values, got {grid!r}")
    evaluate = _eval_spec(f"{where}: eval", entry["eval"]) if "eval" in entry else None
    return Experiment(configs, seeds, grid, _string_list(f"{where}: set", entry.get("set") or []), evaluate)


def _eval_spec(where: str, entry: Any) -> EvalSpec:
    """``eval: {args: [...], baseline: CONFIG}``, its arguments checked by ``ait eval``'s parser."""
    _known_keys(where, entry, EVAL_KEYS)
    args = tuple(_string_list(f"{where}: args", entry.get("args") or []))
    baseline = entry.get("baseline")
    if baseline is not None and not isinstance(baseline, str):
        raise SweepError(f"{where}: baseline: expected the path of a config, got {baseline!r}")
    from ait.evaluate.cli import eval_arguments  # late: the evaluation imports torch

    try:
        eval_arguments(["RUN_DIR", *args, *(["--baseline", "BASELINE"] if baseline else [])])
    except ValueError as err:
        raise SweepError(f"{where}: args: {err}") from None
    return EvalSpec(args, baseline)
