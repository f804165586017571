"""Plan and run a grid of training runs (configs x grid points x seeds, or a sweep file's experiments).

    ait sweep configs/cpu/cifar100_resnet20_ait.yaml --seeds 0 1 2 --grid consistency.weight=0,0.5,1,2,4
    ait sweep configs/cpu/*.yaml --seeds 0 1 --dry-run           # the plan only, trains nothing

Every run gets its own directory, ``default_run_dir`` of its config after the overrides:
``OUT_DIR/NAME/seedSEED``. With ``--grid``, NAME gets a suffix per grid key, e.g.
``cpu_cifar100_resnet20_ait_consistency.weight=2``, so grid points never share a directory.

Re-running a sweep is safe and cheap:

- a run whose directory holds ``summary.json`` is complete and is skipped (after checking that its
  saved config is the planned one: a different config there is an error, never silently reused);
- a run directory without ``summary.json`` was interrupted: with a ``checkpoint.pt`` it is continued
  exactly where it stopped (the engine's resume, which refuses a checkpoint of another config);
  without one, or with ``--restart-interrupted``, it is deleted and trained again from scratch;
- a directory at a run's path that does not look like a run directory is never deleted: error.

Ctrl-C (or SIGTERM) stops the sweep after the current run saved its checkpoint; the same command
continues it. Several processes may run one plan (``--jobs``, job arrays: :mod:`ait.launchers`):
each run is claimed through its lock, and its state is looked at again just before it is trained.

From Python::

    >>> from ait.sweep import plan_sweep, run_sweep
    >>> grid = {"consistency.weight": [0.5, 1, 2]}
    >>> plan = plan_sweep(["configs/cpu/cifar10_resnet20_ait.yaml"], seeds=[0, 1], grid=grid)  # trains nothing
    >>> len(plan), str(plan[0].run_dir)
    (6, 'runs/cpu_cifar10_resnet20_ait_consistency.weight=0.5/seed0')
    >>> smoke = "configs/smoke/synthetic_resnet20_baseline.yaml"
    >>> result = run_sweep([smoke], seeds=[0, 1], overrides=["train.epochs=1", "out_dir=sweeps"])  # doctest: +ELLIPSIS
    sweep: 2 runs, 0 done, 2 to do
    ...
    >>> result.ok, len(result.trained)
    (True, 2)
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ait import budget
from ait.config import RESUME_MAY_CHANGE, Config, config_differences, load_config
from ait.runtime.files import write_text_atomic

ERROR_FILE = "error.txt"  # in a run directory: the last error of a failed run (--status shows its last line)


class SweepError(RuntimeError):
    """The sweep cannot be planned (bad grid, colliding runs, a foreign directory in the way)."""

    exit_status = 2  # `ait` ends with this status and a one-line message (ait.cli.run_handler)


class SweepRunFailed(SweepError):
    """A run of the sweep failed (and ``continue_on_error`` was off)."""

    exit_status = 1


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
class SweepResult:
    plan: list[PlannedRun]
    trained: list[PlannedRun] = field(default_factory=list)
    skipped: list[PlannedRun] = field(default_factory=list)
    failures: list[tuple[PlannedRun, str]] = field(default_factory=list)
    busy: list[PlannedRun] = field(default_factory=list)  # held by another process (its lock): left to it
    over_budget: list[PlannedRun] = field(default_factory=list)  # not started: predicted not to fit (--budget-s)

    @property
    def ok(self) -> bool:
        return not self.failures


# ----------------------------------------------------------------------------------------------
# Planning


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


def _lock_holder(run_dir: Path) -> str | None:
    """Who holds the run's lock (a live process), or None."""
    from ait.engine.lock import lock_holder  # late: the engine imports torch

    return lock_holder(run_dir) if run_dir.is_dir() else None


def run_state(config: Config, run_dir: Path) -> tuple[str, str]:
    """(status, reason) of a planned run's directory."""
    if not run_dir.exists():
        return "todo", ""
    if not run_dir.is_dir():
        return "conflict", f"{run_dir} exists and is not a directory"
    if (run_dir / "summary.json").is_file():
        saved = run_dir / "config.yaml"
        if saved.is_file():
            try:
                existing = yaml.safe_load(saved.read_text()) or {}
            except yaml.YAMLError as err:
                return "conflict", f"{saved} is not valid YAML ({err})"
            # Keys the engine lets a resumed run change (progress display, threads, ...) do not
            # make a finished run another experiment.
            diffs = config_differences(existing, config.to_dict(), ignore=RESUME_MAY_CHANGE)
            if diffs:
                return "conflict", (
                    f"{run_dir} holds a finished run of a different config (there -> planned: "
                    + "; ".join(diffs[:3])
                    + ("; ..." if len(diffs) > 3 else "")
                    + "); remove it or choose another out_dir or name"
                )
        return "done", ""
    from ait.engine.rundir import RunDirError, check_run_directory  # late: rundir imports torch

    try:
        check_run_directory(run_dir)
    except RunDirError as err:
        return "conflict", f"{run_dir} exists but does not look like a run directory; not deleting it ({err})"
    return "interrupted", "no summary.json: the run did not finish"


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


SWEEP_KEYS = ("experiments", "set")
EXPERIMENT_KEYS = ("config", "configs", "seeds", "grid", "set", "eval")
EVAL_KEYS = ("args", "baseline")


def is_sweep_file(path: str | Path) -> bool:
    """Whether ``path`` is a sweep file (a YAML mapping with ``experiments:``), not a run config."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "experiments" in data


def read_sweep_file(path: str | Path) -> tuple[list[Experiment], list[str]]:
    """The experiments of a sweep file and its top-level ``set`` overrides; SweepError naming the key.

    ``experiments`` is a list; each entry names ``config`` (a path, relative to the working directory
    as on the command line) or ``configs`` (a list), and optionally ``seeds``, ``grid`` ({key: [values]})
    and ``set`` ([KEY=VALUE, ...])."""
    where = str(path)
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
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


# ----------------------------------------------------------------------------------------------
# Running


def _train_one(planned: PlannedRun, train_fn: Callable[..., dict], restart_interrupted: bool) -> dict:
    """Train one planned run; an interrupted one is resumed from its checkpoint, else restarted.

    Nothing is overwritten unless ``restart_interrupted``: the engine starts a run that saved no
    checkpoint again by itself, and refuses a run that another worker finished in the meantime.
    """
    if planned.resumable and not restart_interrupted:
        return train_fn(planned.config, run_dir=planned.run_dir, resume=True)
    overwrite = restart_interrupted and planned.status == "interrupted"
    return train_fn(planned.config, run_dir=planned.run_dir, overwrite=overwrite)


def describe_plan(plan: Sequence[PlannedRun], restart_interrupted: bool = False) -> str:
    counts = {s: sum(p.status == s for p in plan) for s in ("done", "todo", "interrupted", "conflict")}
    to_do = counts["todo"] + counts["interrupted"]
    text = f"sweep: {len(plan)} runs, {counts['done']} done, {to_do} to do"
    if counts["interrupted"]:
        resumable = 0 if restart_interrupted else sum(p.resumable for p in plan)
        text += (
            f" ({counts['interrupted']} interrupted: {resumable} resumed from checkpoint.pt, "
            f"{counts['interrupted'] - resumable} restarted from scratch)"
        )
    if counts["conflict"]:
        text += f", {counts['conflict']} in conflict"
    return text


def execute_plan(
    plan: Sequence[PlannedRun],
    dry_run: bool = False,
    continue_on_error: bool = False,
    log: Callable[[str], None] = print,
    train_fn: Callable[..., dict] | None = None,
    restart_interrupted: bool = False,
    budget_s: float | None = None,
) -> SweepResult:
    """Train the runs of ``plan`` that are not done, in order; see :func:`run_sweep`. With
    ``budget_s``, a run starts only when its predicted time (:mod:`ait.budget`) fits in what is left."""
    result = SweepResult(list(plan))
    log(describe_plan(plan, restart_interrupted))
    conflicts = [p for p in plan if p.status == "conflict"]
    for p in conflicts:
        log(f"  conflict: {p.reason}")
    if dry_run:
        for i, p in enumerate(plan, 1):
            log(f"  [{i}/{len(plan)}] {p.status:<11} {p.run_dir}  <- {p.command}")
        return result
    if conflicts:
        raise SweepError(f"{len(conflicts)} run directories are in conflict; first: {conflicts[0].reason}")
    # Late: importing the engine loads torch. A run stopped by a signal has saved its checkpoint;
    # the sweep stops with it (the same command continues), it is not a failure to skip past.
    from ait.engine.lock import RunLocked
    from ait.engine.run import RunInterrupted

    if train_fn is None:
        from ait.engine.run import train as train_fn

    to_do = [p for p in plan if p.status in ("todo", "interrupted")]
    result.skipped = [p for p in plan if p.status == "done"]
    started = time.perf_counter()
    rate = _rate(result.skipped, to_do, train_fn, log) if budget_s is not None and to_do else None
    for i, p in enumerate(to_do, 1):
        where = f"[{i}/{len(to_do)}]"
        left = None if budget_s is None else budget_s - (time.perf_counter() - started)
        if not _still_to_start(p, where, result, rate, left, log):
            continue
        log(f"{where} training {p.name} seed {p.seed} -> {p.run_dir}{_resume_note(p, restart_interrupted)}")
        start = time.perf_counter()
        try:
            summary = _train_one(p, train_fn, restart_interrupted)
        except (KeyboardInterrupt, RunInterrupted):
            log(f"{where} interrupted: {p.run_dir}; run the same command again to continue")
            raise
        except RunLocked as err:  # another sweep worker (or ait train) has it: not a failure
            result.busy.append(p)
            log(f"{where} skipped, busy: {err}")
            continue
        except Exception as err:  # noqa: BLE001 - any failure of one run is reported with its run
            if (p.run_dir / "summary.json").is_file():  # finished by another worker after our look
                result.skipped.append(p)
                log(f"{where} done meanwhile by another worker: {p.run_dir}")
                continue
            _record_failure(result, p, err, where, continue_on_error, log)
            continue
        (p.run_dir / ERROR_FILE).unlink(missing_ok=True)
        result.trained.append(p)
        if rate is not None:  # the runs of this sweep measure the machine best
            rate = budget.from_finished([(q.config, q.run_dir) for q in result.skipped + result.trained]) or rate
        tops = ", ".join(f"{n['key']} {n['final_top1']:.2f}" for n in summary.get("networks", []))
        log(f"{where} done in {time.perf_counter() - start:.1f} s: {p.run_dir}: final top-1 {tops}")
    _log_outcome(plan, result, log)
    return result


def _still_to_start(
    p: PlannedRun, where: str, result: SweepResult, rate: budget.Rate | None, left_s: float | None, log
) -> bool:
    """Whether ``p`` is to be trained now: not finished meanwhile by another worker, predicted to
    fit in the ``left_s`` seconds of the budget, not held by another process. A run that is not
    goes into ``result`` with a line saying why."""
    p.status, p.reason = run_state(p.config, p.run_dir)  # another worker may have got there first
    if p.status == "done":
        result.skipped.append(p)
        log(f"{where} done meanwhile by another worker: {p.run_dir}")
        return False
    if rate is not None and left_s is not None:
        predicted = rate.predict(p.config)
        if predicted > left_s:
            result.over_budget.append(p)
            log(f"{where} not started, over budget: {p.run_dir} (predicted {predicted:.0f} s, {left_s:.0f} s left)")
            return False
    holder = _lock_holder(p.run_dir)
    if holder:  # another worker trains it now: say so rather than announce it (the lock decides anyway)
        result.busy.append(p)
        log(f"{where} skipped, busy: {p.run_dir} is being trained by {holder}")
        return False
    return True


def _log_outcome(plan: Sequence[PlannedRun], result: SweepResult, log) -> None:
    """The sweep's closing lines: the counts, then each run ok or FAILED (with why)."""
    busy = f", {len(result.busy)} busy in another process" if result.busy else ""
    over = f", {len(result.over_budget)} over budget" if result.over_budget else ""
    log(
        f"sweep finished: {len(result.trained)} trained, {len(result.skipped)} already done, "
        f"{len(result.failures)} failed{busy}{over}"
    )
    for p in plan:
        failed = next((m for q, m in result.failures if q is p), None)
        log(f"  {_outcome(p, result, failed)} {p.run_dir}" + (f"  ({failed})" if failed else ""))


def _outcome(p: PlannedRun, result: SweepResult, failed: str | None) -> str:
    """A run's word in the closing lines: not "ok" for a run this sweep left to another or did not start."""
    if failed:
        return "FAILED"
    if any(q is p for q in result.busy):
        return "busy  "
    if any(q is p for q in result.over_budget):
        return "not started (over budget)"
    return "ok    "


def _rate(done: list[PlannedRun], to_do: list[PlannedRun], train_fn, log) -> budget.Rate:
    """The machine's rate for --budget-s: from the finished runs, else a short calibration."""
    rate = budget.from_finished([(p.config, p.run_dir) for p in done])
    if rate is None:
        rate = budget.calibrate(to_do[0].config, train_fn)
    speed = f"{rate.images_per_s:.0f} images/s through the networks, {rate.startup_s:.1f} s start-up"
    log(f"budget: {speed} ({rate.source})")
    return rate


def _resume_note(p: PlannedRun, restart_interrupted: bool) -> str:
    if p.status != "interrupted":
        return ""
    if p.resumable and not restart_interrupted:
        return " (interrupted: resuming from checkpoint.pt)"
    return " (interrupted: restarting from scratch)"


def _record_failure(
    result: SweepResult, p: PlannedRun, err: Exception, where: str, continue_on_error: bool, log: Callable[[str], None]
) -> None:
    """Note a failed run; without ``continue_on_error`` the sweep stops here with SweepRunFailed."""
    message = f"{type(err).__name__}: {err}"
    result.failures.append((p, message))
    log(f"{where} FAILED {p.run_dir}: {message}")
    if p.run_dir.is_dir():  # for --status: the last error of the run, beside its files
        write_text_atomic(p.run_dir / ERROR_FILE, message + "\n")
    if not continue_on_error:
        raise SweepRunFailed(
            f"run {p.run_dir} failed: {message}\n  repeat it alone with: {p.command}"
            "\n  (pass --continue-on-error to go on with the other runs)"
        ) from err


def run_status(p: PlannedRun) -> str:
    """One word and its detail for ``--status``: done, running (the lock's holder), failed (the last
    line of its error), interrupted, to do, conflict."""
    status, _ = run_state(p.config, p.run_dir)
    if status == "done":
        return "done"
    if status == "conflict":
        return f"conflict ({p.reason})"
    holder = _lock_holder(p.run_dir)
    if holder:
        return f"running ({holder})"
    error = p.run_dir / ERROR_FILE
    if error.is_file():
        lines = error.read_text().strip().splitlines()
        return f"failed ({lines[-1][:200] if lines else 'no message'})"
    return "interrupted" if status == "interrupted" else "to do"


def _state_word(state: str) -> str:
    """The state of a ``run_status`` line without its detail: "to do" is two words, the rest one."""
    return "to do" if state == "to do" else state.split(" ")[0]


def status_lines(plan: Sequence[PlannedRun]) -> list[str]:
    """``--status``: one line per run, then the counts."""
    states = [run_status(p) for p in plan]
    lines = [f"  {_state_word(s):<11} {p.run_dir}{s[len(_state_word(s)) :]}" for p, s in zip(plan, states)]
    counts: dict[str, int] = {}
    for state in states:
        counts[_state_word(state)] = counts.get(_state_word(state), 0) + 1
    order = ("done", "running", "failed", "interrupted", "to do", "conflict")
    summary = ", ".join(f"{counts[w]} {w}" for w in order if w in counts)
    return [*lines, f"sweep: {len(plan)} runs: {summary}"]


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


def run_sweep(
    configs: Sequence[str | Path | dict | Config],
    seeds: Sequence[int] | None = None,
    grid: Mapping[str, Sequence[Any]] | Sequence[str] | None = None,
    overrides: Sequence[str] = (),
    dry_run: bool = False,
    continue_on_error: bool = False,
    log: Callable[[str], None] = print,
    train_fn: Callable[..., dict] | None = None,
    restart_interrupted: bool = False,
    budget_s: float | None = None,
) -> SweepResult:
    """Plan the sweep and train every run not yet done, one after another (with ``budget_s``: those
    predicted to fit in it).

    A failing run raises SweepRunFailed (after the runs before it are saved) unless
    ``continue_on_error``, which records it in ``result.failures`` and goes on. Interrupted runs
    are resumed from their checkpoint unless ``restart_interrupted``. ``train_fn`` defaults to
    :func:`ait.engine.run.train` (tests pass a spy).
    """
    plan = plan_sweep(configs, seeds=seeds, grid=grid, overrides=overrides)
    return execute_plan(
        plan,
        dry_run=dry_run,
        continue_on_error=continue_on_error,
        log=log,
        train_fn=train_fn,
        restart_interrupted=restart_interrupted,
        budget_s=budget_s,
    )
