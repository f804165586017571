"""`ait report`: grouping, mean ± std, which paper tables appear, compute-fair rows, discovery, bad files."""

import argparse
import re
import statistics

import pytest
from report_testutils import cell, make_run
from scipy import stats

from ait.cli import main
from ait.report import ReportError, build_report, discover_run_dirs, group_runs, load_runs
from ait.report.cli import add_report_parser, run_report_command
from ait.report.groups import Stat
from ait.report.tables import effect_size

TRANSFER = {"original": 60.0, "crop": 50.0, "gray": 40.0, "color": 55.0}


def section(text: str, title_start: str) -> str:
    """The text of one '## ...' section of report.md."""
    match = re.search(rf"^## {re.escape(title_start)}.*?(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, f"no section {title_start!r} in:\n{text}"
    return match.group(0)


def table_rows(text: str) -> list[list[str]]:
    rows = [line.strip("|").split(" | ") for line in text.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in r] for r in rows[1:]]  # without the header


def build(tmp_path, *paths, logs=None):
    return build_report(
        paths or [tmp_path / "runs"], tmp_path / "out", log=(logs.append if logs is not None else None)
    ).read_text()


def test_mean_std_over_seeds_and_groups(tmp_path):
    runs = tmp_path / "runs"
    base, ait = [61.2, 62.9], [63.1, 64.6]
    for seed in (0, 1):
        make_run(runs, "b", seed, base[seed], strategy="baseline")
        make_run(runs, "a", seed, ait[seed])
        make_run(runs, "a_lr", seed, 50.0 + seed, lr=0.05)  # differs only in lr: its own group
    make_run(runs, "single", 0, 70.0, weight=2.0)  # n = 1: std "–"
    text = build(tmp_path)

    t1 = table_rows(section(text, "Table 1"))
    row = next(r for r in t1 if r[3] == "1" and r[4].startswith("equal epochs"))
    assert row[5] == cell(base) and row[6] == cell(ait)
    assert row[7] == f"{(sum(ait) - sum(base)) / 2:+.2f}"
    pooled = ((statistics.variance(base) + statistics.variance(ait)) / 2) ** 0.5  # equal n: the mean variance
    assert row[8] == f"{(statistics.fmean(ait) - statistics.fmean(base)) / pooled:+.1f}"
    assert "steps baseline/AIT 40/80" in row[4]

    every = section(text, "All configurations")
    rows = table_rows(every)
    assert len(rows) == 4  # baseline, AIT, AIT lr=0.05, AIT lambda=2
    by_label = {r[0]: r for r in rows}
    lr_rows = [label for label in by_label if "optim.lr" in label]
    assert len(lr_rows) == 2 and any("optim.lr=0.05" in label for label in lr_rows)  # disambiguated
    assert by_label[next(label for label in lr_rows if "0.05" in label)][5] == cell([50.0, 51.0])
    single = next(r for r in rows if "λ=2" in r[0])
    assert single[5] == "70.00 ± – (n=1)" and single[4] == "0"
    assert single[8] == f"{10.0 / 60:.2f} ± –"  # make_run's wall_seconds, in minutes
    assert "Best-epoch top-1 (extra" in every and cell([b + 1 for b in base]) in every
    # Every table lists its sources and the command to repeat a run.
    assert "`" + str(runs / "b" / "seed0") + "`" in section(text, "Table 1")
    assert "ait train <run>/config.yaml" in section(text, "Table 1")


def test_groups_split_by_config_not_by_name(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "x_ait_name", 0, 60.0, strategy="baseline")  # name says AIT, config says baseline
    make_run(runs, "other_name", 1, 62.0, strategy="baseline")  # same config, another name: same group
    records, skipped, _ = load_runs([runs])
    groups = group_runs(records)
    assert not skipped and len(groups) == 1 and groups[0].seeds == [0, 1] and groups[0].strategy == "baseline"
    text = build(tmp_path)
    assert "## Table 1" not in text  # no AIT run at all
    assert cell([60.0, 62.0]) in section(text, "All configurations")


def test_a_repeated_seed_is_counted_once_and_named(tmp_path):
    # Two sweeps that both contain the default config (e.g. the layer x metric grid and the λ grid)
    # give two runs of one config and seed; a deterministic engine makes them identical, so counting
    # both would shrink the std and inflate n without a new sample.
    runs = tmp_path / "runs"
    make_run(runs, "grid_a", 0, 60.0)
    make_run(runs, "grid_b", 0, 60.0)  # same config and seed as grid_a/seed0
    make_run(runs, "grid_b", 1, 64.0)
    records, _, _ = load_runs([runs])
    (group,) = group_runs(records)
    assert group.seeds == [0, 1] and [r.path for r in group.repeats] == [runs / "grid_b" / "seed0"]
    text = build(tmp_path)
    assert cell([60.0, 64.0]) in section(text, "All configurations")
    assert "**1 run repeats the configuration and seed of another run** and is counted once" in text
    missing = section(text, "Not in this report")
    assert "grid_b/seed0` repeats the configuration and seed 0 of" in missing and "grid_a/seed0" in missing
    repeat = next(r for r in records if r.path == runs / "grid_b" / "seed0")
    repeat.transfer = {"networks": {}}  # the repeat was evaluated, the first was not: the repeat is kept
    (group,) = group_runs(records)
    assert [r.path for r in group.runs] == [repeat.path, runs / "grid_b" / "seed1"]


def test_table3_only_with_label_noise_runs(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        make_run(runs, "b", seed, 60.0 + seed, strategy="baseline")
        make_run(runs, "a", seed, 62.0 + seed)
    assert "## Table 3" not in build(tmp_path)

    for seed in (0, 1):
        for noise in (0.2, 0.5):
            make_run(
                runs,
                f"b{noise}",
                seed,
                40.0 + seed + 10 * noise,
                strategy="baseline",
                noise=noise,
                label_changed=noise * 0.99,
            )
            make_run(runs, f"a{noise}", seed, 43.0 + 2 * seed, noise=noise, label_changed=noise * 0.99)
    text = build(tmp_path)
    rows = table_rows(section(text, "Table 3"))
    assert [r[0] for r in rows] == ["20%", "50%"] and rows[0][1] == "19.8%"
    assert rows[1][7] == cell([45.0, 46.0]) and rows[1][8] == cell([43.0, 45.0])
    # Noisy runs stay out of Table 1, clean ones out of Table 3.
    assert len(table_rows(section(text, "Table 1"))) == 1
    assert "## Table 4" not in text and "## Table 5" not in text


def test_table4_top1_and_top5(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        make_run(runs, "b", seed, 30.0 + seed, top5=55.0 + seed, strategy="baseline", fraction=0.1)
        make_run(runs, "a", seed, 32.0 + seed, top5=58.0, fraction=0.1)
    row = table_rows(section(build(tmp_path), "Table 4"))[0]
    assert row[0] == "10%"
    assert row[6] == "30.50 ± 0.71 / 55.50 ± 0.71 (n=2)" and row[7] == "32.50 ± 0.71 / 58.00 ± 0.00 (n=2)"
    assert row[8] == "+2.00 / +2.50"


def test_table5_from_transfer_files_only(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        make_run(runs, "b", seed, 60.0, strategy="baseline")
        make_run(runs, "a", seed, 62.0)
    text = build(tmp_path)
    assert "## Table 5" not in text and "Table 5 (augmentation transfer): no runs" in text

    for seed in (0, 1):
        shift = 2.0 * seed
        make_run(
            runs,
            "b_rg",
            seed,
            60.0,
            strategy="baseline",
            views=["rg"],
            transfer={k: v + shift for k, v in TRANSFER.items()},
        )
        make_run(runs, "a_rg", seed, 62.0, views=["rg", "rg"], transfer={k: v + 3 for k, v in TRANSFER.items()})
        make_run(runs, "a_mixed", seed, 61.0, views=["rp", "rg"], transfer=TRANSFER)
    t5 = section(build(tmp_path), "Table 5")
    assert "original: Baseline | original: AIT | random crop: Baseline" in t5
    rows = {r[0]: r for r in table_rows(t5)}
    assert set(rows) == {"rg", "rp,rg"}  # the runs without transfer.json are not in Table 5
    rg = rows["rg"]
    assert rg[5] == "2 / 2"
    assert rg[6] == cell([60.0, 62.0]).rsplit(" (", 1)[0] and rg[7] == "63.00 ± 0.00"
    assert rg[12] == cell([55.0, 57.0]).rsplit(" (", 1)[0]  # random color, baseline
    assert rows["rp,rg"][6] == "–" and rows["rp,rg"][7] == "60.00 ± 0.00"


def test_compute_fair_row_only_with_a_matching_steps_baseline(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        make_run(runs, "b", seed, 60.0, strategy="baseline", epochs=4)  # 40 steps
        make_run(runs, "a", seed, 62.0, epochs=4)  # 80 steps
        make_run(runs, "b_long", seed, 61.0 + seed, strategy="baseline", epochs=6)  # 60 steps: no match
    t1 = section(build(tmp_path), "Table 1")
    assert "same steps as AIT" not in t1
    # Two baseline-only rows of one setting are told apart by their length.
    assert [r[4] for r in table_rows(t1) if r[4].startswith("baseline only")] == [
        "baseline only: no AIT run with this setting (6 epochs, 60 steps)"
    ]

    for seed in (0, 1):
        make_run(runs, "b_2x", seed, 61.5 + seed, strategy="baseline", epochs=8)  # 80 steps, like AIT
    rows = table_rows(section(build(tmp_path), "Table 1"))
    fair = [r for r in rows if "same steps as AIT" in r[4]]
    assert len(fair) == 1
    assert fair[0][4].startswith("baseline, same steps as AIT: equal steps (80)")
    assert fair[0][5] == cell([61.5, 62.5]) and fair[0][6] == cell([62.0, 62.0])
    equal_epochs = [r for r in rows if r[4].startswith("equal epochs")]
    assert len(equal_epochs) == 1 and equal_epochs[0][5] == cell([60.0, 60.0])
    # Every row says which comparison it is.
    assert all(r[4].startswith(("equal epochs", "baseline, same steps", "baseline only", "AIT only")) for r in rows)


def test_compute_fair_row_tolerates_the_rounding_of_partial_batches(tmp_path):
    # 20,000 images: AIT 15 epochs x 313 steps = 4,695; the 2x baseline 30 x 157 = 4,710 (0.3% more).
    runs = tmp_path / "runs"
    for seed in (0, 1):
        make_run(runs, "a", seed, 62.0 + seed, epochs=15, steps_per_epoch=313)
        make_run(runs, "b_2x", seed, 63.0 + seed, strategy="baseline", epochs=30, steps_per_epoch=157)
        make_run(runs, "b_3x", seed, 64.0, strategy="baseline", epochs=45, steps_per_epoch=157)  # 50% more: no
    rows = table_rows(section(build(tmp_path), "Table 1"))
    fair = [r for r in rows if "same steps as AIT" in r[4]]
    assert len(fair) == 1 and fair[0][5] == cell([63.0, 64.0])
    assert "steps baseline/AIT 4710/4695 (within 1%)" in fair[0][4] and "epochs baseline/AIT 30/15" in fair[0][4]


def test_table2_dml_vs_multi_ait(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        make_run(runs, "dml", seed, [63.0 + seed, 64.0], strategy="dml")
        make_run(runs, "mait", seed, [65.0, 66.0 + seed], strategy="multi_ait")
        make_run(runs, "b", seed, 60.0, strategy="baseline")
    t2 = section(build(tmp_path), "Table 2")
    assert "DML Net1 | DML Net2 | multi-AIT Net1 | multi-AIT Net2" in t2
    row = table_rows(t2)[0]
    assert row[1:3] == ["resnet20", "resnet20"]
    assert row[5:7] == [cell([60.0, 60.0]), "–"]  # baseline Net1 found, no AIT run
    assert row[7:11] == [cell([63.0, 64.0]), cell([64.0, 64.0]), cell([65.0, 65.0]), cell([66.0, 67.0])]
    assert "λ DML/multi-AIT 1/3" in row[4]
    # multi-AIT - DML per network; pooled std 0.5 for both (one group of each pair varies by 1)
    net1 = stats.ttest_rel([65.0, 65.0], [63.0, 64.0]).confidence_interval(0.95)
    net2 = stats.ttest_rel([66.0, 67.0], [64.0, 64.0]).confidence_interval(0.95)
    assert row[11] == (
        f"+1.50 (+3.0) [{net1.low:+.2f}, {net1.high:+.2f}] paired / "
        f"+2.50 (+5.0) [{net2.low:+.2f}, {net2.high:+.2f}] paired"
    )


def test_figure4_compares_each_weight_with_lambda_zero(tmp_path):
    runs = tmp_path / "runs"
    for seed, (w0, w1, w4) in enumerate([(47.0, 46.0, 43.0), (48.0, 47.0, 44.0)]):
        make_run(runs, "w0", seed, w0, weight=0.0)
        make_run(runs, "w1", seed, w1, weight=1.0)
        make_run(runs, "w4", seed, w4, weight=4.0)
    rows = table_rows(section(build(tmp_path), "Figure 4"))
    assert [r[1] for r in rows] == ["0", "1", "4"]
    assert rows[0][3:] == ["–", "–", "–"]  # λ = 0 against itself
    # pooled std 0.71; paired over seeds 0 and 1, whose differences are equal: a zero-width interval
    assert rows[1][2:] == [cell([46.0, 47.0]), "-1.00", "-1.4", "-1.00 [-1.00, -1.00] paired"]
    assert rows[2][3:] == ["-4.00", "-5.7", "-4.00 [-4.00, -4.00] paired"]


def test_discovery_from_parent_directories(tmp_path):
    make_run(tmp_path / "a" / "deep", "x", 0, 60.0)
    make_run(tmp_path / "b", "y", 0, 61.0, strategy="baseline")
    unfinished = make_run(tmp_path / "b", "z", 0, 1.0)
    (unfinished / "summary.json").unlink()
    found, incomplete = discover_run_dirs([tmp_path])
    assert found == [tmp_path / "a" / "deep" / "x" / "seed0", tmp_path / "b" / "y" / "seed0"]
    assert incomplete == [unfinished]
    assert discover_run_dirs([tmp_path / "b" / "y" / "seed0"])[0] == [tmp_path / "b" / "y" / "seed0"]
    text = build(tmp_path, tmp_path / "a", tmp_path / "b")
    assert "2 runs in 2 configurations" in text
    assert f"Unfinished run `{unfinished}`" in text
    with pytest.raises(ReportError, match="no such file"):
        build(tmp_path, tmp_path / "missing")


def test_a_folder_of_links_to_runs_is_discovered_each_run_once(tmp_path):
    real = make_run(tmp_path / "runs", "x", 0, 60.0)
    other = make_run(tmp_path / "runs", "x", 1, 61.0)
    collected = tmp_path / "collected"
    collected.mkdir()
    (collected / "x_seed0").symlink_to(real, target_is_directory=True)
    (collected / "x_seed1").symlink_to(other, target_is_directory=True)
    (collected / "loop").symlink_to(collected, target_is_directory=True)  # a link back up is walked once
    assert discover_run_dirs([collected])[0] == [collected / "x_seed0", collected / "x_seed1"]
    assert discover_run_dirs([collected, tmp_path / "runs"])[0] == [collected / "x_seed0", collected / "x_seed1"]


def test_malformed_summary_is_skipped_and_named(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "good", 0, 60.0)
    bad = make_run(runs, "bad", 0, 60.0)
    (bad / "summary.json").write_text("{not json")
    no_nets = make_run(runs, "no_nets", 0, 60.0)
    (no_nets / "summary.json").write_text('{"name": "x"}')
    logs = []
    text = build(tmp_path, logs=logs)
    assert "1 runs in 1 configurations" in text and "2 run directories were skipped" in text
    assert f"`{bad}`: {bad / 'summary.json'}: not valid JSON" in text
    assert f"{no_nets / 'summary.json'}: missing or empty 'networks' list" in text
    assert any(str(bad / "summary.json") in line for line in logs)
    # Nothing readable left: an error that names the file.
    (runs / "good" / "seed0" / "summary.json").write_text("[]")
    with pytest.raises(ReportError, match="summary.json"):
        build(tmp_path, logs=[])


def test_command_line(tmp_path, capsys):
    make_run(tmp_path / "runs", "a", 0, 60.0)
    parser = argparse.ArgumentParser(prog="ait")
    add_report_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    assert args.handler is run_report_command and run_report_command(args) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "out" / "report.md")
    assert main(["report", str(tmp_path / "empty_nothing"), "--out", str(tmp_path / "out")]) == 2
    assert "ait report: error" in capsys.readouterr().err


def test_mixed_view_ait_is_compared_with_the_first_views_baseline(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        make_run(
            runs,
            "base_rp",
            seed,
            30.0 + seed,
            strategy="baseline",
            views=["rp"],
            transfer={"original": 30.0 + seed, "crop": 29.0, "gray": 14.0, "color": 29.5},
        )
        make_run(
            runs,
            "ait_rprg",
            seed,
            37.0 + seed,
            strategy="ait",
            views=["rp", "rg"],
            transfer={"original": 37.0 + seed, "crop": 35.0, "gray": 24.0, "color": 36.5},
        )
        make_run(runs, "base_rg", seed, 20.0, strategy="baseline", views=["rg"])  # not AIT's first view
    report = build_report([runs], tmp_path / "out").read_text()
    table5 = report.split("## Table 5")[1].split("## ")[0]
    row = next(line for line in table5.splitlines() if line.startswith("| rp,rg"))
    assert "baseline trained with rp (AIT's first view)" in row
    assert "30.50 ± 0.71" in row and "37.50 ± 0.71" in row


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ([1.0], [3.0], "–"),  # no group with two seeds: no spread to compare with
        ([1.0, 3.0], [4.0], "+1.4"),  # the pair alone gives the std: sqrt(2); (4 - 2) / 1.414
        ([2.0, 2.0], [2.0, 2.0], "–"),  # zero spread: undefined, not infinite
        ([10.0, 12.0, 14.0], [8.0, 9.0, 10.0], "-1.9"),  # pooled variance (8 + 2) / 4 = 2.5; -3 / 1.58
        ([], [1.0, 2.0], "–"),
    ],
)
def test_effect_size_in_pooled_seed_stds(a, b, expected):
    assert effect_size(Stat(a), Stat(b)) == expected


def test_validation_column_appears_with_val_fraction_runs_only(tmp_path):
    import json

    import yaml

    from ait.sweep import run_sweep
    from ait_testutils import tiny_config

    cfg = tiny_config(tmp_path, "baseline")
    cfg["data"].update(synthetic_size=320, val_fraction=0.25)
    cfg["train"].update(epochs=4, checkpoint=False)
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(cfg))
    grid = {"optim.lr": ["0.1", "1e-06"]}  # trained, and as good as untrained: validation tells them apart
    result = run_sweep([tmp_path / "tune.yaml"], seeds=[0, 1], grid=grid, log=[].append)
    assert result.ok and len(result.trained) == 4
    rows = table_rows(section(build(tmp_path), "All configurations"))
    assert len(rows) == 2
    vals: dict[float, list[float]] = {}
    for q in result.plan:
        summary = json.loads((q.run_dir / "summary.json").read_text())
        vals.setdefault(q.config.optim.lr, []).append(summary["networks"][0]["final_val_top1"])
    best = max(sum(v) / len(v) for v in vals.values())
    assert len({sum(v) / len(v) for v in vals.values()}) == 2  # one recipe is marked, the other not
    for lr, values in vals.items():
        row = next(r for r in rows if r[0].endswith(f"optim.lr={lr}"))
        marked = sum(values) / len(values) == best  # the recipe a tuning sweep chooses
        assert row[5] == cell(values) + (" **(best val)**" if marked else "")  # the column after Seeds
    plain = tmp_path / "plain"
    make_run(plain / "runs", "ait", 0, 50.0)
    assert "val top-1" not in build(plain)
