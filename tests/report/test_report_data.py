"""ait report --csv / --json: every number as long-form data that pandas loads in one call."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from report_testutils import make_run

from ait.cli import main


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    for seed, top1 in ((0, 70.0), (1, 72.0)):
        make_run(root, "ait", seed, top1, transfer={"original": top1, "crop": top1 - 5})
    make_run(root, "baseline", 0, 65.0, strategy="baseline")
    make_run(root, "dml", 0, [60.0, 61.0], strategy="dml")
    return root


def test_csv_and_json_hold_every_run_metric_and_config_key(runs, tmp_path, capsys):
    assert main(["report", str(runs), "--csv", str(tmp_path / "csv"), "--json", str(tmp_path / "json")]) == 0
    table = pd.read_csv(tmp_path / "csv" / "results.csv")
    assert list(table.columns[:6]) == ["run_dir", "name", "seed", "network", "metric", "value"]
    final = table[(table.metric == "final_top1") & (table.network == "net0")]
    assert sorted(final.value) == [60.0, 65.0, 70.0, 72.0]
    means = final.groupby("strategy.name")["value"].mean()
    assert means["ait"] == pytest.approx(71.0) and means["baseline"] == pytest.approx(65.0)
    assert set(table[table.name == "dml"].network) >= {"net0", "net1", "ensemble", "all"}
    crop = table[(table.metric == "transfer/crop/top1") & (table.seed == 1)]
    assert crop.value.tolist() == [67.0] and crop["strategy.views"].tolist() == ["rp+rp"]
    records = pd.read_json(tmp_path / "json" / "results.json", orient="records")
    assert len(records) == len(table) and set(records.columns) == set(table.columns)
    assert not (tmp_path / "csv" / "report.md").exists()  # --out alone writes the Markdown report


def test_report_without_a_destination_is_refused(runs, capsys):
    assert main(["report", str(runs)]) == 2
    assert "--out DIR (report.md), --csv DIR, --json DIR or --records DIR" in capsys.readouterr().err


def test_the_validation_top1_a_recipe_is_chosen_on_is_a_metric_of_its_own(tmp_path):
    run = make_run(tmp_path / "runs", "tune", 0, 40.0, strategy="baseline")
    summary = json.loads((run / "summary.json").read_text())
    summary["networks"][0]["final_val_top1"] = 38.5  # as a run with data.val_fraction writes it
    (run / "summary.json").write_text(json.dumps(summary))
    assert main(["report", str(tmp_path / "runs"), "--csv", str(tmp_path / "csv")]) == 0
    table = pd.read_csv(tmp_path / "csv" / "results.csv")
    assert table[table.metric == "final_val_top1"].value.tolist() == [38.5]
    assert table[table.metric == "final_top1"].value.tolist() == [40.0]
