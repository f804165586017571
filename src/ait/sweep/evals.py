"""``ait sweep FILE --evaluate``: the evaluations a sweep file asks for, run on its finished runs.

An experiment's ``eval:`` names the ``ait eval`` arguments for each of its runs and, optionally,
the config whose run of the same seed is their mCE baseline::

    experiments:
      - configs: [configs/cpu/cifar10_resnet20_baseline.yaml, configs/cpu/cifar10_resnet20_ait.yaml]
        seeds: [0, 1, 2]
        eval: {args: [--corruptions, --transfer], baseline: configs/cpu/cifar10_resnet20_baseline.yaml}

Each pass evaluates every finished run not yet evaluated with these arguments (a record of them in
``RUN_DIR/eval/sweep_eval.json``, written after the evaluation succeeded), and leaves a run whose
baseline has not finished for a later pass. Passes may run beside the sweep's training workers and
beside each other: each evaluation holds its run's lock (:mod:`ait.engine.lock`), and a run held
by another pass is skipped as busy.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from ait.runtime.files import write_text_atomic
from ait.sweep.plan import PlannedRun

RECORD = Path("eval") / "sweep_eval.json"  # in a run directory: what --evaluate last ran on it


def _with_eval(plan: Sequence[PlannedRun]) -> list[PlannedRun]:
    """The runs of ``plan`` whose experiment has ``eval:``."""
    return [p for p in plan if p.eval_args or p.eval_baseline]


def _wanted(p: PlannedRun) -> dict:
    return {"args": list(p.eval_args), "baseline": str(p.eval_baseline) if p.eval_baseline else None}


def eval_state(p: PlannedRun) -> str:
    """ "evaluated", "to evaluate", "not trained" or "waiting for its baseline" (None: no ``eval:``)."""
    if not (p.run_dir / "summary.json").is_file():
        return "not trained"
    if p.eval_baseline is not None and not (p.eval_baseline / "summary.json").is_file():
        return "waiting for its baseline"
    record = p.run_dir / RECORD
    try:
        if json.loads(record.read_text()) == _wanted(p):
            return "evaluated"
    except (OSError, ValueError):
        pass  # none yet, or unreadable: evaluate again
    return "to evaluate"


def eval_summary(plan: Sequence[PlannedRun]) -> str | None:
    """``--status``'s line on the evaluations, e.g. "evaluate: 3 evaluated, 5 to evaluate"; None
    when no run of the plan has ``eval:``."""
    counts = Counter(map(eval_state, _with_eval(plan)))
    return "evaluate: " + ", ".join(f"{n} {s}" for s, n in counts.items()) if counts else None


def evaluate_plan(plan: Sequence[PlannedRun], log: Callable[[str], None] = print) -> dict[str, int]:
    """Evaluate every run of ``plan`` that is due (:func:`eval_state`); the count of each state.
    An evaluation's error (bad data, a damaged run) ends the pass, naming the run."""
    counts: Counter[str] = Counter()
    due = _with_eval(plan)
    for i, p in enumerate(due, 1):
        where, state = f"[{i}/{len(due)}]", eval_state(p)
        if state == "to evaluate":
            state = _evaluate_one(p, where, log)
        else:
            log(f"{where} {state}: {p.run_dir}")
        counts[state] += 1
    log("evaluate: " + (", ".join(f"{n} {s}" for s, n in counts.items()) or "no run of this sweep has eval:"))
    return dict(counts)


def _evaluate_one(p: PlannedRun, where: str, log: Callable[[str], None]) -> str:
    """Evaluate ``p`` holding its run's lock, so that a second pass skips it (and ``ait train`` on the
    directory is refused meanwhile); the run's state afterwards."""
    from ait.engine.lock import RunLock, RunLocked  # late, as the evaluation: ait.engine imports torch
    from ait.evaluate.cli import eval_arguments, run_eval

    try:
        with RunLock(p.run_dir, purpose="evaluation"):
            if eval_state(p) == "evaluated":  # by another pass, since this one looked
                log(f"{where} evaluated meanwhile by another pass: {p.run_dir}")
                return "evaluated"
            log(f"{where} evaluating {p.run_dir}: ait eval {' '.join(p.eval_args)}")
            baseline = ["--baseline", str(p.eval_baseline)] if p.eval_baseline else []
            run_eval(eval_arguments([str(p.run_dir), *p.eval_args, *baseline]), lock_runs=False)  # held here
            write_text_atomic(p.run_dir / RECORD, json.dumps(_wanted(p)) + "\n")
            return "evaluated now"
    except RunLocked as err:
        log(f"{where} skipped, busy: {err}")
        return "busy in another process"
