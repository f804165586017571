"""Running a plan: each run not yet done, in order, claimed through its lock (several workers may
run one plan), resumed where it was interrupted, started only when it fits a budget; the closing
lines say what became of each."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ait import budget
from ait.config import Config
from ait.runtime.files import write_text_atomic
from ait.sweep.errors import SweepError, SweepRunFailed
from ait.sweep.plan import PlannedRun, plan_sweep
from ait.sweep.state import ERROR_FILE, lock_holder, run_state


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
        summary = _attempt(p, where, result, train_fn, restart_interrupted, continue_on_error, log)
        if summary is None:
            continue
        if rate is not None:  # the runs of this sweep measure the machine best
            rate = budget.from_finished([(q.config, q.run_dir) for q in result.skipped + result.trained]) or rate
        tops = ", ".join(f"{n['key']} {n['final_top1']:.2f}" for n in summary.get("networks", []))
        log(f"{where} done in {time.perf_counter() - start:.1f} s: {p.run_dir}: final top-1 {tops}")
    _log_outcome(plan, result, log)
    return result


def _attempt(
    p: PlannedRun, where: str, result: SweepResult, train_fn, restart_interrupted: bool, continue_on_error: bool, log
) -> dict | None:
    """Train ``p`` and file it in ``result``: its summary when it trained, None when another worker
    holds or finished it, or when it failed (recorded; raised unless ``continue_on_error``)."""
    # Late: importing the engine loads torch. A run stopped by a signal has saved its checkpoint;
    # the sweep stops with it (the same command continues), it is not a failure to skip past.
    from ait.engine.lock import RunLocked
    from ait.engine.run import RunInterrupted

    try:
        summary = _train_one(p, train_fn, restart_interrupted)
    except (KeyboardInterrupt, RunInterrupted):
        log(f"{where} interrupted: {p.run_dir}; run the same command again to continue")
        raise
    except RunLocked as err:  # another sweep worker (or ait train) has it: not a failure
        result.busy.append(p)
        log(f"{where} skipped, busy: {err}")
        return None
    except Exception as err:  # noqa: BLE001 - any failure of one run is reported with its run
        if (p.run_dir / "summary.json").is_file():  # finished by another worker after our look
            result.skipped.append(p)
            log(f"{where} done meanwhile by another worker: {p.run_dir}")
            return None
        _record_failure(result, p, err, where, continue_on_error, log)
        return None
    (p.run_dir / ERROR_FILE).unlink(missing_ok=True)
    result.trained.append(p)
    return summary


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
    holder = lock_holder(p.run_dir)
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
