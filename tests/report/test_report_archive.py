"""ait.report.archive: finished runs' records kept without checkpoints, read again as finished runs."""

from __future__ import annotations

import json

import pytest
import yaml
from report_testutils import make_run

from ait.cli import main
from ait.config import load_config
from ait.report.archive import keep_records
from ait.report.build import build_tables
from ait.report.records import ReportError
from ait.sweep.state import run_state


def _runs(tmp_path):
    runs = tmp_path / "runs"
    for seed, top1 in enumerate([50.0, 51.5]):
        make_run(runs, "c100_ait", seed, top1, transfer={"original": top1, "crop": top1 - 3})
    make_run(runs, "c100_base", 0, 48.0, strategy="baseline")
    (runs / "c100_ait" / "seed0" / "checkpoint.pt").write_bytes(b"\0" * 1000)
    return runs


def test_records_are_copied_without_checkpoints_and_report_the_same_numbers(tmp_path):
    runs, kept = _runs(tmp_path), tmp_path / "kept"
    written = keep_records([runs], kept)
    assert sorted(p.relative_to(kept).as_posix() for p in written) == [
        "c100_ait/seed0",
        "c100_ait/seed1",
        "c100_base/seed0",
    ]
    assert (kept / "c100_ait/seed0/eval/transfer.json").is_file()
    assert not list(kept.rglob("*.pt"))
    original = build_tables([runs], tmp_path / "csv_runs", None)[0].read_text()
    again = build_tables([kept], tmp_path / "csv_kept", None)[0].read_text()
    # out_dir, a column of its own, still names where the runs were trained
    assert again.replace(str(kept), "<root>").replace(str(runs), "<root>") == original.replace(str(runs), "<root>")


def test_a_kept_record_counts_as_a_finished_run_for_the_sweep(tmp_path):
    runs, kept = _runs(tmp_path), tmp_path / "kept"
    keep_records([runs / "c100_ait" / "seed1"], kept)
    saved = yaml.safe_load((kept / "c100_ait/seed1/config.yaml").read_text())
    planned = load_config({**saved, "out_dir": str(kept)})  # the sweep run with --set out_dir=kept
    assert run_state(planned, kept / "c100_ait" / "seed1") == ("done", "")


def test_a_run_trained_outside_the_layout_is_kept_where_the_sweep_looks(tmp_path):
    run = make_run(tmp_path / "runs", "c100_ait", 1, 50.0)
    moved = tmp_path / "scratch" / "trial7"  # as with `ait train --run-dir scratch/trial7`
    moved.parent.mkdir()
    run.rename(moved)
    kept = tmp_path / "kept"
    assert keep_records([moved], kept) == [kept / "c100_ait" / "seed1"]
    saved = yaml.safe_load((kept / "c100_ait/seed1/config.yaml").read_text())
    assert run_state(load_config({**saved, "out_dir": str(kept)}), kept / "c100_ait" / "seed1") == ("done", "")


@pytest.mark.parametrize("name", ["../../outside", "/abs/name"])
def test_a_name_that_would_climb_out_keeps_the_folder_names(tmp_path, name):
    run = make_run(tmp_path / "runs", "c100_ait", 0, 50.0)
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "name": name}))
    kept = tmp_path / "kept"
    assert keep_records([run], kept) == [kept / "c100_ait" / "seed0"]
    assert not (tmp_path / "outside").exists()


def test_keeping_again_updates_a_record_of_the_same_run(tmp_path):
    runs, kept = _runs(tmp_path), tmp_path / "kept"
    keep_records([runs], kept)
    corruptions = runs / "c100_base/seed0/eval/corruptions.json"
    corruptions.write_text(json.dumps({"networks": {}}))  # evaluated after it was first kept
    keep_records([runs], kept)
    assert (kept / "c100_base/seed0/eval/corruptions.json").read_text() == corruptions.read_text()


def test_a_record_of_another_run_is_not_overwritten(tmp_path):
    runs, kept = _runs(tmp_path), tmp_path / "kept"
    keep_records([runs], kept)
    before = (kept / "c100_ait/seed0/summary.json").read_text()
    other = make_run(tmp_path / "elsewhere", "c100_ait", 0, 60.0)
    with pytest.raises(ReportError, match="c100_ait/seed0: holds the record of another run"):
        keep_records([other, runs / "c100_base"], kept)
    assert (kept / "c100_ait/seed0/summary.json").read_text() == before
    assert not (kept / "c100_base/seed0").exists() or (kept / "c100_base/seed0/summary.json").is_file()


def test_a_folder_that_is_not_a_record_is_not_written_into(tmp_path):
    runs, kept = _runs(tmp_path), tmp_path / "kept"
    (kept / "c100_base" / "seed0").mkdir(parents=True)
    (kept / "c100_base" / "seed0" / "notes.txt").write_text("mine")
    with pytest.raises(ReportError, match="exists and is not a kept record"):
        keep_records([runs], kept)
    assert not (kept / "c100_ait").exists()  # nothing copied before the check of every target


def test_runs_of_one_name_and_seed_trained_elsewhere_keep_their_folders(tmp_path):
    in_layout = make_run(tmp_path / "out", "c100_ait", 0, 50.0)
    moved = []
    for folder, top1 in (("w2", 51.0), ("w3", 52.0)):  # `ait train CONFIG --run-dir runs/w2`, then w3
        run = make_run(tmp_path / "tmp", "c100_ait", 0, top1)
        (tmp_path / "runs").mkdir(exist_ok=True)
        moved.append(run.rename(tmp_path / "runs" / folder))
    kept = tmp_path / "kept"
    written = keep_records([in_layout, *moved], kept)
    assert sorted(p.relative_to(kept).as_posix() for p in written) == ["c100_ait/seed0", "runs/w2", "runs/w3"]
    assert json.loads((kept / "c100_ait/seed0/summary.json").read_text()) == json.loads(
        (in_layout / "summary.json").read_text()
    )


def test_two_runs_with_one_name_and_seed_are_refused(tmp_path):
    a = make_run(tmp_path / "a", "same", 0, 50.0)
    b = make_run(tmp_path / "b", "same", 0, 52.0)
    with pytest.raises(ReportError, match="would both be kept as"):
        keep_records([a, b], tmp_path / "kept")


def test_command_line_keeps_records_and_prints_their_folders(tmp_path, capsys):
    runs, kept = _runs(tmp_path), tmp_path / "kept"
    assert main(["report", str(runs), "--records", str(kept)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(kept / "c100_ait/seed0"), str(kept / "c100_ait/seed1"), str(kept / "c100_base/seed0")]
    assert main(["report", str(tmp_path / "kept"), "--records", str(tmp_path / "kept2")]) == 0  # records of records


def test_command_line_with_nothing_finished_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--records", str(tmp_path / "kept")]) == 2
    assert "no finished run" in capsys.readouterr().err
