"""What a planned run's directory holds: done, interrupted, in conflict (:func:`run_state`), and
the words of ``ait sweep --status`` (:func:`status_lines`), with the training time left."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ait import budget
from ait.config import RESUME_MAY_CHANGE, Config, InvalidYAMLError, config_differences, parse_yaml

if TYPE_CHECKING:
    from ait.sweep.plan import PlannedRun

ERROR_FILE = "error.txt"  # in a run directory: the last error of a failed run (--status shows its last line)


def lock_holder(run_dir: Path) -> str | None:
    """Who holds the run's lock (a live process), or None."""
    from ait.engine.lock import lock_holder as holder  # late: the engine imports torch

    return holder(run_dir) if run_dir.is_dir() else None


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
                existing = parse_yaml(saved.read_text(), saved) or {}
            except yaml.YAMLError as err:  # InvalidYAMLError names the file, line and column already
                return "conflict", str(err) if isinstance(
                    err, InvalidYAMLError
                ) else f"{saved} is not valid YAML ({err})"
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
        # A directory another process holds may be between its first files (config.yaml alone):
        # then only entries ait never writes make it foreign, as the engine checks before its lock.
        check_run_directory(run_dir, complete=lock_holder(run_dir) is None)
    except RunDirError as err:
        return "conflict", f"{run_dir} exists but does not look like a run directory; not deleting it ({err})"
    return "interrupted", "no summary.json: the run did not finish"


def run_status(p: PlannedRun) -> str:
    """One word and its detail for ``--status``: done, running (the lock's holder, the epochs
    recorded), failed (the last line of its error), interrupted (the epochs recorded), to do, conflict."""
    status, reason = run_state(p.config, p.run_dir)  # now, not as planned
    if status == "done":
        return "done"
    if status == "conflict":
        return f"conflict ({reason})"
    progress = f"{epochs_recorded(p.run_dir)}/{p.config.train.epochs} epochs"
    holder = lock_holder(p.run_dir)
    if holder:
        return f"running ({holder}; {progress})"
    error = p.run_dir / ERROR_FILE
    if error.is_file():
        lines = error.read_text().strip().splitlines()
        return f"failed ({lines[-1][:200] if lines else 'no message'})"
    return f"interrupted ({progress})" if status == "interrupted" else "to do"


def epochs_recorded(run_dir: Path) -> int:
    """The last epoch ``metrics.jsonl`` records (1 for the first), 0 for none; a line still being
    written is passed over."""
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    for line in reversed(lines):
        try:
            return int(json.loads(line)["epoch"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0


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
    left = time_left(plan, [_state_word(s) for s in states])
    return [*lines, f"sweep: {len(plan)} runs: {summary}", *([left] if left else [])]


def time_left(plan: Sequence[PlannedRun], words: Sequence[str]) -> str | None:
    """'left: about 21.3 h of training ...' for the runs not done, at the rate of the finished ones
    (:mod:`ait.budget`; a running or interrupted run counts its epochs left), or None without a
    finished run or anything left."""
    rate = budget.from_finished([(p.config, p.run_dir) for p, w in zip(plan, words) if w == "done"])
    open_runs = [(p, w) for p, w in zip(plan, words) if w in ("running", "failed", "interrupted", "to do")]
    if rate is None or not open_runs:
        return None
    seconds = 0.0
    for p, word in open_runs:
        try:
            whole = budget.work(p.config) / rate.images_per_s
        except (OSError, ValueError) as err:  # a run's data not found here (DataError is a ValueError)
            return f"left: not predicted ({err})"
        done = epochs_recorded(p.run_dir) / p.config.train.epochs if word in ("running", "interrupted") else 0.0
        seconds += whole * (1.0 - done) + (0.0 if word == "running" else rate.startup_s)
    return (
        f"left: about {seconds / 3600:.1f} h of training for one worker at the rate of {rate.source} "
        f"({rate.images_per_s:.0f} images/s a worker; N workers as fast take about 1/N of it)"
    )
