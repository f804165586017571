"""The corruption section of `ait report`: mean +- std over seeds, per corruption, severity plot."""

from report_testutils import make_run

from ait.report import build_report


def test_corruption_table_and_severity_plot(tmp_path):
    runs = tmp_path / "runs"
    for seed, (low, high) in enumerate([(40.0, 20.0), (44.0, 24.0)]):
        make_run(
            runs,
            "base",
            seed,
            60.0 + seed,
            strategy="baseline",
            mce=100.0,
            corruptions={"gaussian_noise": {"1": low, "5": high}, "fog": {"1": low + 10, "5": high + 10}},
        )
        make_run(
            runs,
            "ait",
            seed,
            62.0 + seed,
            strategy="ait",
            mce=90.0 + seed,
            corruptions={"gaussian_noise": {"1": low + 5, "5": high + 5}, "fog": {"1": low + 15, "5": high + 15}},
        )
    report = build_report([runs], tmp_path / "out").read_text()
    assert "common-corruption robustness" in report
    # Baseline: per seed, mean over 2 corruptions x 2 severities = 35 and 39 -> 37.00 +- 2.83.
    assert "37.00 ± 2.83 (n=2)" in report
    assert "42.00 ± 2.83 (n=2)" in report  # AIT: 5 points higher everywhere
    assert "90.50 ± 0.71 (n=2)" in report  # AIT mCE over seeds
    assert "| gaussian_noise |" in report and "| fog |" in report
    # Per severity, mean over the 2 corruptions: severity 1 gives low + 5 (45, 49), severity 5 high + 5.
    assert "| 1 | 47.00 ± 2.83 | 52.00 ± 2.83 |" in report
    assert "| 5 | 27.00 ± 2.83 | 32.00 ± 2.83 |" in report
    # Per family: noise is gaussian_noise alone (baseline seeds 30, 34), weather is fog (40, 44); no blur row.
    assert "| noise | 32.00 ± 2.83 (n=2) | 37.00 ± 2.83 (n=2) |" in report
    assert "| weather | 42.00 ± 2.83 (n=2) | 47.00 ± 2.83 (n=2) |" in report and "| blur |" not in report
    png = tmp_path / "out" / "plots" / "corruptions_severity.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_corruption_files_is_listed_as_missing(tmp_path):
    make_run(tmp_path / "runs", "base", 0, 60.0, strategy="baseline")
    report = build_report([tmp_path / "runs"], tmp_path / "out").read_text()
    assert "Corruption robustness: no run has eval/corruptions.json" in report


def test_a_run_evaluated_at_other_severities_is_left_out_and_named_not_averaged_in(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        make_run(runs, "base", seed, 80.0, strategy="baseline", corruptions={"fog": {"1": 70.0, "5": 50.0}})
    odd = make_run(runs, "base", 2, 80.0, strategy="baseline", corruptions={"fog": {"1": 88.0}})
    report = build_report([runs], tmp_path / "out").read_text()
    assert "at severities 1, 5 (generated locally)" in report
    assert "| 60.00 ± 0.00 (n=2) |" in report  # seeds 0 and 1 only: (70 + 50) / 2 each
    assert "88" not in report.split("## Not in this report")[0].split("common-corruption robustness")[1]
    said = f"Corruptions of {odd}: evaluated on 1 corruption at severities 1 (generated locally), not on 1 corruption"
    assert f"{said} at severities 1,5" in report
