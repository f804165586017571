"""Keeping finished runs' records without their checkpoints: ``ait report RUNS --records DIR``.

A run's record is the small files a report reads (:data:`RECORD_FILES`, ``eval/*.json``): a few
kilobytes, against megabytes of checkpoint. Copied to ``DIR/<name>/seed<k>`` (the name and seed its
summary.json gives, the layout ``ait train`` writes under ``out_dir``, wherever the run itself was
trained: ``--run-dir`` too), they can be committed, reported on again with ``ait report DIR``, and given back to
``ait sweep --set out_dir=DIR``, which counts them as done.
That is how a long sweep's finished runs outlive the machine that trained them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from ait.config import run_dir_under, stays_inside
from ait.report.outputs import check_folder
from ait.report.records import EVAL_NAMES, RECORD_FILES, ReportError, RunRecord, load_finished_runs
from ait.runtime.files import atomic_write


def record_files(run_dir: Path) -> list[Path]:
    """The record files ``run_dir`` has, relative to it, summary.json last: a record copied halfway
    (a crash, a full disk) has none, so it is not taken for a finished run."""
    names = [Path(n) for n in RECORD_FILES if n != "summary.json"] + [Path("eval") / f"{n}.json" for n in EVAL_NAMES]
    return [n for n in [*names, Path("summary.json")] if (run_dir / n).is_file()]


def keep_records(paths: Iterable[str | Path], dest: str | Path, log: Callable[[str], None] | None = None) -> list[Path]:
    """Copy the record of every finished run under ``paths`` to ``dest/<name>/seed<k>`` (:func:`record_target`).

    A record already there is brought up to date when it is of the same run (its summary.json is
    the same); one of another run is never overwritten: ReportError, before anything is copied.
    Unreadable runs are left out with a line to ``log`` (default: stderr). Returns the record
    folders written.
    """
    log = log or (lambda text: print(text, file=sys.stderr))
    dest = check_folder(dest)
    runs, skipped, _ = load_finished_runs(paths)
    targets = {}
    for run, target in _targets(dest, runs):
        if target in targets:
            raise ReportError(
                f"{run.path} and {targets[target]} would both be kept as {target}; "
                "keep them with separate --records folders"
            )
        _check_same_run(run.path, target)
        targets[target] = run.path
    for target, run_dir in targets.items():
        for name in record_files(run_dir):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            data = (run_dir / name).read_bytes()
            atomic_write(target / name, lambda f, data=data: f.write(data))
    for _, why in skipped:
        log(f"ait report: not kept, {why}")
    return list(targets)


def _targets(dest: Path, runs: list[RunRecord]) -> list[tuple[RunRecord, Path]]:
    """Each run with where its record goes: :func:`record_target`; where two runs of one name and seed
    would share it (``--run-dir`` runs of one config), those trained elsewhere keep their folders'
    last two parts, as they are not where a sweep looks anyway."""
    chosen = [(run, record_target(dest, run)) for run in runs]
    shared = {t for t in (t for _, t in chosen) if sum(1 for _, u in chosen if u == t) > 1}
    return [
        (run, _folder_target(dest, run) if t in shared and not _in_layout(dest, run, t) else t) for run, t in chosen
    ]


def _in_layout(dest: Path, run: RunRecord, target: Path) -> bool:
    """Whether ``run`` lies at ``.../<name>/seed<k>``, the folders its record gets under ``dest``."""
    parts = target.relative_to(dest).parts
    return run.path.resolve().parts[-len(parts) :] == parts


def _folder_target(dest: Path, run: RunRecord) -> Path:
    return dest / run.path.resolve().parent.name / run.path.resolve().name


def record_target(dest: Path, run: RunRecord) -> Path:
    """Where ``run``'s record is kept under ``dest``: the place ``ait sweep --set out_dir=dest`` looks
    for it, from the name and seed of its summary.json; its folder's last two parts when the
    summary lacks them or its name would climb out of ``dest`` (absolute, or with ``..``)."""
    name, seed = run.summary.get("name"), run.summary.get("seed")
    if isinstance(name, str) and isinstance(seed, int) and stays_inside(name):
        return run_dir_under(dest, name, seed)
    return _folder_target(dest, run)


def _check_same_run(run_dir: Path, target: Path) -> None:
    """ReportError when ``target`` holds the record of a run other than ``run_dir``'s, or cannot be a folder."""
    kept = check_folder(target) / "summary.json"
    if kept.exists() and kept.read_bytes() != (run_dir / "summary.json").read_bytes():
        raise ReportError(f"{target}: holds the record of another run (its summary.json differs); not overwritten")
    if not kept.exists() and target.exists() and any(target.iterdir()):
        raise ReportError(f"{target}: exists and is not a kept record (no summary.json); not overwritten")
