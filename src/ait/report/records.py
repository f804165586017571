"""Finding run directories and reading them: summary, resolved config, metrics and evaluations."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ait.config import InvalidYAMLError, parse_yaml

# The files of a run directory that a report reads (besides eval/<EVAL_NAMES>.json); a run's
# record, as ait.report.archive keeps it.
RECORD_FILES = ("summary.json", "config.yaml", "env.json", "metrics.jsonl")
EVAL_NAMES = ("transfer", "variation", "tsne", "corruptions")


class ReportError(RuntimeError):
    """Bad input to a report: no readable run under the given paths, or a destination it may not write."""

    exit_status = 2  # `ait` ends with this status and a one-line message (ait.cli.run_handler)


@dataclass
class RunRecord:
    """One finished run: its summary, resolved config and whatever optional files it has."""

    path: Path
    summary: dict[str, Any]
    config: dict[str, Any]
    metrics: list[dict[str, Any]] = field(default_factory=list)
    transfer: dict[str, Any] | None = None
    variation: dict[str, Any] | None = None
    tsne: dict[str, Any] | None = None
    corruptions: dict[str, Any] | None = None
    env: dict[str, Any] | None = None  # env.json: the machine, the data's fingerprint
    notes: list[str] = field(default_factory=list)  # problems with optional files

    @property
    def seed(self) -> int:
        return int(self.summary.get("seed", self.config.get("seed", 0)))

    def network(self, key: str) -> dict[str, Any] | None:
        if key == "ensemble":
            return self.summary.get("ensemble")
        return next((n for n in self.summary["networks"] if n.get("key") == key), None)


def discover_run_dirs(paths: Iterable[str | Path]) -> tuple[list[Path], list[Path]]:
    """(run dirs with summary.json, incomplete run dirs with config.yaml but no summary.json).

    Each path may be a run directory, any parent of run directories or one of a run's RECORD_FILES
    (summary.json, config.yaml, ...: its folder); any other file is a ReportError. Hidden folders are skipped.
    Symbolic links are followed (a results folder of links to runs is common), and a run reached
    by two paths counts once, under the first.
    """
    found: dict[Path, Path] = {}  # resolved -> as reached
    incomplete: dict[Path, Path] = {}
    visited: set[Path] = set()  # resolved folders walked: a link back up is not walked again
    for raw in paths:
        root = Path(raw)
        if not root.exists():
            raise ReportError(f"{root}: no such file or directory")
        if not root.is_dir():
            if root.name not in RECORD_FILES:  # walking its folder would report runs never asked for
                raise ReportError(_not_a_run(root))
            root = root.parent  # a run's own file (summary.json, config.yaml, ...) given directly
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            here = Path(dirpath)
            if here.resolve() in visited:
                dirnames[:] = []
                continue
            visited.add(here.resolve())
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            if "summary.json" in filenames:
                found.setdefault(here.resolve(), here)
            elif "config.yaml" in filenames and ("metrics.jsonl" in filenames or "env.json" in filenames):
                incomplete.setdefault(here.resolve(), here)
    return sorted(found.values()), sorted(incomplete.values())


def _defaults() -> dict[str, Any]:
    from ait.config import Config  # light: config imports no torch

    return Config().to_dict()


def _merge(defaults: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(defaults.get(key), dict):
            out[key] = _merge(defaults[key], value)
        else:
            out[key] = value
    return out


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot be read ({err})") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def _check_summary(path: Path, summary: Any) -> None:
    if not isinstance(summary, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(summary).__name__}")
    nets = summary.get("networks")
    if not isinstance(nets, list) or not nets:
        raise ValueError(f"{path}: missing or empty 'networks' list")
    for i, net in enumerate(nets):
        if not isinstance(net, dict):
            raise ValueError(f"{path}: networks[{i}] is not an object")
        for key in ("key", "final_top1"):
            if key not in net:
                raise ValueError(f"{path}: networks[{i}] has no {key!r}")
        if not isinstance(net["final_top1"], (int, float)) or not math.isfinite(net["final_top1"]):
            raise ValueError(f"{path}: networks[{i}].final_top1 is not a finite number: {net['final_top1']!r}")


def load_run(path: str | Path) -> RunRecord:
    """Read one run directory; ValueError naming the file for a missing or malformed summary/config.

    Optional files (metrics.jsonl, eval/*.json) that are malformed are noted, not fatal.
    """
    path = Path(path)
    summary_path, config_path = path / "summary.json", path / "config.yaml"
    summary = _read_json(summary_path)
    _check_summary(summary_path, summary)
    if not config_path.is_file():
        raise ValueError(f"{config_path}: missing (needed to group runs by configuration)")
    try:
        config = parse_yaml(config_path.read_text(), config_path) or {}
    except InvalidYAMLError as err:  # it names the file, the line and the column already
        raise ValueError(str(err)) from None
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{config_path}: not valid YAML ({err})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{config_path}: expected a mapping at the top level")
    record = RunRecord(path, summary, _merge(_defaults(), config))
    _read_metrics(record, path / "metrics.jsonl")
    _read_env(record, path / "env.json")
    for name in EVAL_NAMES:
        _read_eval(record, name, path / "eval" / f"{name}.json")
    return record


def _read_metrics(record: RunRecord, metrics_path: Path) -> None:
    """The run's curve from metrics.jsonl, up to its first malformed line (noted)."""
    if not metrics_path.is_file():
        return
    for i, line in enumerate(metrics_path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record.metrics.append(json.loads(line))
        except json.JSONDecodeError:
            record.notes.append(f"{metrics_path}: line {i} is not valid JSON; curve cut there")
            return


def _read_env(record: RunRecord, env_path: Path) -> None:
    """The machine the run trained on, from env.json; a malformed file is noted and ignored."""
    if not env_path.is_file():
        return
    try:
        env = _read_json(env_path)
        record.env = env if isinstance(env, dict) else None
    except ValueError as err:
        record.notes.append(f"{err}; ignored")


def _read_eval(record: RunRecord, name: str, eval_path: Path) -> None:
    """One evaluation's results (eval/NAME.json) onto ``record.NAME``; a malformed file is noted and ignored."""
    if not eval_path.is_file():
        return
    try:
        data = _read_json(eval_path)
        key = "points" if name == "tsne" else "networks"
        if not isinstance(data, dict) or key not in data:
            raise ValueError(f"{eval_path}: unexpected layout")
        setattr(record, name, data)
    except ValueError as err:
        record.notes.append(f"{err}; ignored")


def _not_a_run(path: Path) -> str:
    return f"{path}: not a run directory or a folder of runs"


def load_runs(paths: Iterable[str | Path]) -> tuple[list[RunRecord], list[tuple[Path, str]], list[Path]]:
    """(readable runs, [(run dir or file, why skipped)], incomplete run dirs) under ``paths``.

    A file among ``paths`` that is no run's own file is left out, with why (a glob such as
    ``runs/gpu/*`` takes in a sweep's log beside its runs)."""
    paths = [Path(p) for p in paths]
    strays = [p for p in paths if p.is_file() and p.name not in RECORD_FILES]
    dirs, incomplete = discover_run_dirs([p for p in paths if p not in strays])
    runs, skipped = [], [(p, _not_a_run(p)) for p in strays]
    for d in dirs:
        try:
            runs.append(load_run(d))
        except ValueError as err:
            skipped.append((d, str(err)))
    return runs, skipped, incomplete


def load_finished_runs(paths: Iterable[str | Path]) -> tuple[list[RunRecord], list[tuple[Path, str]], list[Path]]:
    """:func:`load_runs`, with ReportError when no readable finished run is among them."""
    paths = list(paths)
    runs, skipped, incomplete = load_runs(paths)
    if not runs:
        where = ", ".join(map(str, paths))
        raise ReportError(f"no finished run (a directory with summary.json) under {where}{_skipped_text(skipped)}")
    return runs, skipped, incomplete


def _skipped_text(skipped: list[tuple[Path, str]]) -> str:
    """'; skipped: WHY' for one path, '; N skipped (malformed runs, or files of no run), the first: WHY' for more."""
    if len(skipped) < 2:
        return f"; skipped: {skipped[0][1]}" if skipped else ""
    return f"; {len(skipped)} skipped (malformed runs, or files of no run), the first: {skipped[0][1]}"
