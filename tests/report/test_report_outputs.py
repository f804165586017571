"""Bad destinations and inputs of `ait report`: one line naming the path, exit status 2, no user file touched."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from report_testutils import make_run

from ait.cli import main

REPO = Path(__file__).resolve().parents[2]
OUTPUTS = [("--out", "report.md"), ("--csv", "results.csv"), ("--json", "results.json")]


@pytest.fixture
def runs(tmp_path):
    make_run(tmp_path / "runs", "a", 0, 60.0)
    return tmp_path / "runs"


def refused(capsys, argv: list[str], *expected: str) -> str:
    """Run ``ait ARGV``: status 2 and one line on stderr holding each of ``expected``."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(e in err for e in expected), err
    return err


@pytest.mark.parametrize(("flag", "name"), OUTPUTS)
def test_a_file_ait_did_not_write_is_not_overwritten(runs, tmp_path, capsys, flag, name):
    mine = tmp_path / "dest" / name
    mine.parent.mkdir()
    mine.write_text("my notes\n")
    refused(capsys, ["report", str(runs), flag, str(mine.parent)], f"{mine}: exists and was not written by ait report")
    assert mine.read_text() == "my notes\n"


@pytest.mark.parametrize(("flag", "name"), OUTPUTS)
def test_ait_rewrites_its_own_outputs_again_and_again(runs, tmp_path, capsys, flag, name):
    for _ in range(2):
        assert main(["report", str(runs), flag, str(tmp_path / "dest")]) == 0
    assert str(tmp_path / "dest" / name) in capsys.readouterr().out


def test_nothing_is_written_when_a_later_destination_is_refused(runs, tmp_path, capsys):
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "results.csv").write_text("a,b\n1,2\n")
    argv = ["report", str(runs), "--out", str(tmp_path / "out"), "--csv", str(tmp_path / "csv")]
    refused(capsys, argv, f"{tmp_path / 'csv' / 'results.csv'}: exists and was not written")
    assert not (tmp_path / "out").exists()


def test_a_figure_ait_did_not_write_is_not_removed(runs, tmp_path, capsys):
    assert main(["report", str(runs), "--out", str(tmp_path / "out")]) == 0
    mine = tmp_path / "out" / "plots" / "curves_mine.png"  # a name the report would clear as stale
    mine.write_bytes(b"\x89PNG\r\n\x1a\nmy figure")
    refused(capsys, ["report", str(runs), "--out", str(tmp_path / "out")], f"{mine}: exists and was not written")
    assert mine.read_bytes() == b"\x89PNG\r\n\x1a\nmy figure"


@pytest.mark.parametrize("committed", sorted(p.parent for p in (REPO / "docs" / "results").glob("*/report.md")))
def test_the_reports_committed_before_the_marker_are_still_ait_s_own(tmp_path, capsys, committed):
    """docs/results/ was written by ait report before it marked its files: they are rewritten in place."""
    out = shutil.copytree(committed, tmp_path / "out")
    runs = make_run(tmp_path / "runs", "a", 0, 60.0).parent.parent
    assert main(["report", str(runs), "--out", str(out), "--csv", str(out)]) == 0
    assert (out / "report.md").read_text().startswith("<!-- written by ait report")
    assert str(runs) in (out / "results.csv").read_text()
    figures = [p.name for p in (out / "plots").iterdir()]  # the old ones, linked by the old report: cleared
    assert len(figures) == 1 and figures[0].startswith("curves_AIT")


@pytest.mark.parametrize("flag", ["--out", "--csv", "--json", "--records"])
def test_a_file_where_a_folder_is_expected(runs, tmp_path, capsys, flag):
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    refused(capsys, ["report", str(runs), flag, str(afile)], f"{afile}: exists and is not a folder")
    refused(capsys, ["report", str(runs), flag, str(afile / "sub")], f"{afile}: exists and is not a folder")
    assert afile.read_text() == "mine\n"


def test_an_ordinary_file_is_not_a_run_directory(runs, tmp_path, capsys):
    afile = runs / "notes.txt"  # its folder holds runs, which were not asked for
    afile.write_text("x\n")
    refused(capsys, ["report", str(afile), "--out", str(tmp_path / "out")], f"{afile}: not a run directory")
    assert not (tmp_path / "out").exists()


def test_a_file_beside_runs_in_a_glob_is_left_out_with_a_line(runs, tmp_path, capsys):
    (runs / "sweep.log").write_text("a sweep's log\n")  # `ait report runs/gpu/*` takes it in
    argv = ["report", *map(str, sorted(runs.iterdir())), "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    assert f"{runs / 'sweep.log'}: not a run directory" in capsys.readouterr().err
    assert (tmp_path / "out" / "report.md").is_file()


def test_the_tables_alone_name_what_they_left_out_and_with_the_report_it_is_said_once(runs, tmp_path, capsys):
    (runs / "sweep.log").write_text("a sweep's log\n")
    paths = [str(p) for p in sorted(runs.iterdir())]
    assert main(["report", *paths, "--csv", str(tmp_path / "csv")]) == 0
    assert f"left out of the tables, {runs / 'sweep.log'}: not a run directory" in capsys.readouterr().err
    assert main(["report", *paths, "--csv", str(tmp_path / "csv"), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().err.count(str(runs / "sweep.log")) == 1


def test_a_runs_own_summary_is_its_run_directory(runs, tmp_path, capsys):
    summary = runs / "a" / "seed0" / "summary.json"
    assert main(["report", str(summary), "--csv", str(tmp_path / "csv")]) == 0
    with open(tmp_path / "csv" / "results.csv", newline="") as f:
        assert {row["run_dir"] for row in csv.DictReader(f)} == {str(runs / "a" / "seed0")}


def test_only_bad_summaries_names_how_many_and_the_first(tmp_path, capsys):
    for name in ("x", "y", "z"):
        (make_run(tmp_path / "runs", name, 0, 60.0) / "summary.json").write_text("{not json")
    first = tmp_path / "runs" / "x" / "seed0" / "summary.json"
    refused(
        capsys,
        ["report", str(tmp_path / "runs"), "--out", str(tmp_path / "out")],
        "3 skipped (malformed runs",
        str(first),
    )
