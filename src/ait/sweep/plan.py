"""Planning: configs x (the grid's cartesian product) x seeds, or a sweep file's experiments, as
an ordered list of :class:`PlannedRun`, each with its run directory and that directory's state;
and the shards of a plan for job arrays."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ait.config import Config, load_config
from ait.sweep.errors import SweepError
from ait.sweep.state import run_state


@dataclass
class PlannedRun:
    """One run of a sweep: its source, overrides, resolved config, directory and state."""

    source: str  # the config file (or "<dict>"/"<Config>" from Python)
    overrides: list[str]  # --set overrides, then the grid point's, then seed=N
    grid_point: dict[str, str]  # grid key -> canonical value text ({} without --grid)
    config: Config
    run_dir: Path
    status: str  # "done" (summary.json present), "todo", "interrupted" (resume or restart), "conflict"
    reason: str = ""  # why a run is "interrupted" or "conflict"
    eval_args: tuple[str, ...] = ()  # the sweep file's ``eval: args`` for this run (ait sweep --evaluate)
    eval_baseline: Path | None = None  # the run of ``eval: baseline`` with this run's seed (its mCE baseline)

    @property
    def resumable(self) -> bool:
        return self.status == "interrupted" and (self.run_dir / "checkpoint.pt").is_file()

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def command(self) -> str:
        """The equivalent single ``ait train`` command."""
        parts = ["ait", "train", self.source, *itertools.chain.from_iterable(("--set", o) for o in self.overrides)]
        if self.grid_point:  # the name carries the grid point
            parts += ["--set", f"name={self.name}"]
        return " ".join(shlex.quote(p) for p in parts)


@dataclass
class Experiment:
    """One entry of a sweep: configs x (the grid's cartesian product) x seeds, with its overrides,
    and what ``ait sweep --evaluate`` runs on each finished run."""

    configs: list[str | Path | dict | Config]
    seeds: list[int] | None = None
    grid: Mapping[str, Sequence[Any]] | Sequence[str] | None = None
    overrides: list[str] = field(default_factory=list)
    evaluate: EvalSpec | None = None


@dataclass(frozen=True)
class EvalSpec:
    """A sweep file's ``eval:`` of an experiment: ``ait eval`` arguments for each of its runs, and
    the config whose run of the same seed is their mCE baseline (``--baseline``), if any."""

    args: tuple[str, ...]
    baseline: str | None = None


def split_values(text: str) -> list[str]:
    """Split ``"0,0.5,[rp, rg]"`` on the commas outside brackets: ``["0", "0.5", "[rp, rg]"]``."""
    values, depth, current = [], 0, []
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            values.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    values.append("".join(current).strip())
    return values


def parse_grid(grid: Mapping[str, Sequence[Any]] | Sequence[str] | None) -> dict[str, list[str]]:
    """``["KEY=V1,V2", ...]`` or ``{KEY: [V1, V2]}`` as {key: [value texts]} (YAML, as in --set)."""
    if not grid:
        return {}
    out: dict[str, list[str]] = {}
    items: list[tuple[str, list[str]]] = []
    if isinstance(grid, Mapping):
        for key, values in grid.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
                raise SweepError(f"grid {key!r}: expected a list of values, got {values!r}")
            items.append((key, [v if isinstance(v, str) else json.dumps(v) for v in values]))
    else:
        for spec in grid:
            if "=" not in spec:
                raise SweepError(f"--grid {spec!r}: expected KEY=V1,V2,..., e.g. consistency.weight=0,0.5,1")
            key, raw = spec.split("=", 1)
            items.append((key.strip(), split_values(raw)))
    for key, values in items:
        if key in ("seed", "name"):
            raise SweepError(f"--grid {key}: use --seeds for seeds; names are derived from the grid point")
        if key in out:
            raise SweepError(f"--grid {key} is given twice; list all its values in one --grid {key}=V1,V2")
        if not values or any(v == "" for v in values):
            raise SweepError(f"--grid {key}: empty value in {values!r}")
        out[key] = values
    return out


def canonical_value(text: str) -> str:
    """A short, stable text for a grid value: ``"2.0"`` -> ``2``, ``"[rp, rg]"`` -> ``rp,rg``."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text.strip()

    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, float):
            return f"{v:g}"
        if isinstance(v, (list, tuple)):
            return ",".join(fmt(x) for x in v)
        if v is None:
            return "null"
        return str(v)

    return fmt(value)


def name_suffix(grid_point: Mapping[str, str]) -> str:
    """``{"consistency.weight": "2"}`` -> ``"consistency.weight=2"``; safe as one path component."""
    parts = []
    for key, value in grid_point.items():
        text = f"{key}={value}"
        safe = re.sub(r"[^A-Za-z0-9._=+,-]+", "-", text).strip("-")
        if safe != text:  # lossy: keep distinct values distinct
            safe += "-" + hashlib.sha1(text.encode()).hexdigest()[:6]
        parts.append(safe)
    return "_".join(parts)


def plan_sweep(
    configs: Sequence[str | Path | dict | Config],
    seeds: Sequence[int] | None = None,
    grid: Mapping[str, Sequence[Any]] | Sequence[str] | None = None,
    overrides: Sequence[str] = (),
) -> list[PlannedRun]:
    """Expand configs x (cartesian product of the grid) x seeds into planned runs, in that order.

    ``seeds=None`` keeps each config's own seed. Raises ConfigError for an invalid config or grid
    value (naming the key) and SweepError when two different runs would share a directory.
    """
    if not configs:
        raise SweepError("no config given")
    return plan_experiments([Experiment(list(configs), list(seeds) if seeds else None, grid, list(overrides))])


def plan_experiments(experiments: Sequence[Experiment], overrides: Sequence[str] = ()) -> list[PlannedRun]:
    """The runs of every experiment in order (``overrides`` first for all of them); the same
    experiments give the same ordered plan on every machine. SweepError when two different runs
    would share a directory; the same run asked for twice is planned once."""
    plan: list[PlannedRun] = []
    by_dir: dict[Path, PlannedRun] = {}
    for experiment in experiments:
        for planned in _experiment_runs(experiment, [*overrides, *experiment.overrides]):
            key = planned.run_dir.resolve()
            other = by_dir.get(key)
            if other is not None:
                if other.config.to_dict() == planned.config.to_dict():
                    continue  # the same run asked for twice (same file twice, "2" and "2.0")
                raise SweepError(
                    f"two different runs would share {planned.run_dir}: {other.command} and {planned.command}; "
                    "give the configs different names (--set name=...) or out_dirs"
                )
            by_dir[key] = planned
            plan.append(planned)
    return plan


def _experiment_runs(experiment: Experiment, overrides: list[str]):
    from ait.engine.rundir import default_run_dir  # late: rundir imports torch

    grid_values = parse_grid(experiment.grid)
    keys = list(grid_values)
    points = [dict(zip(keys, combo)) for combo in itertools.product(*grid_values.values())] if keys else [{}]
    for source in experiment.configs:
        label = str(source) if isinstance(source, (str, Path)) else f"<{type(source).__name__}>"
        base = load_config(source, list(overrides))
        for point in points:
            point_overrides = [f"{k}={v}" for k, v in point.items()]
            canon = {k: canonical_value(v) for k, v in point.items()}
            for seed in experiment.seeds or [base.seed]:
                run_overrides = [*overrides, *point_overrides, f"seed={int(seed)}"]
                cfg = load_config(source, run_overrides)
                if canon:
                    cfg = dataclasses.replace(cfg, name=f"{base.name}_{name_suffix(canon)}")
                run_dir = default_run_dir(cfg)
                planned = PlannedRun(label, run_overrides, canon, cfg, run_dir, *run_state(cfg, run_dir))
                if experiment.evaluate is not None:
                    planned.eval_args = experiment.evaluate.args
                    planned.eval_baseline = _baseline_run(experiment.evaluate, overrides, cfg.seed)
                yield planned


def _baseline_run(spec: EvalSpec, overrides: list[str], seed: int) -> Path | None:
    """The run directory of ``spec.baseline`` with the experiment's overrides and this seed."""
    from ait.engine.rundir import default_run_dir

    if spec.baseline is None:
        return None
    return default_run_dir(load_config(spec.baseline, [*overrides, f"seed={seed}"]))


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` (0 <= I < N) as (I, N); None (no text) reads SLURM_ARRAY_TASK_ID and _COUNT when
    set (an index from SLURM_ARRAY_TASK_MIN on), else gives None: the whole plan."""
    import os

    if text is None:
        task, count = os.environ.get("SLURM_ARRAY_TASK_ID"), os.environ.get("SLURM_ARRAY_TASK_COUNT")
        if task is None or count is None:
            return None
        text = f"{int(task) - int(os.environ.get('SLURM_ARRAY_TASK_MIN', '0'))}/{count}"
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise SweepError(f"--shard {text!r}: expected I/N with 0 <= I < N, e.g. --shard 0/4")
    return int(match[1]), int(match[2])


def shard(plan: Sequence[PlannedRun], index: int, count: int) -> list[PlannedRun]:
    """Runs index, index + count, ... of the plan: the shards of a plan are disjoint and cover it."""
    return list(plan[index::count])
