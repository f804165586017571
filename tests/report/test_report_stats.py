"""Confidence intervals of the report's differences: paired over shared seeds, Welch's t otherwise,
checked against SciPy's own tests (ttest_rel, ttest_ind)."""

import pytest
from report_testutils import make_run
from scipy import stats

from ait.cli import main
from ait.report.groups import Stat
from ait.report.stats import difference_interval, interval_text

BASE, AIT = [70.1, 70.5, 69.8, 70.9], [71.0, 71.6, 70.4, 71.2]


def test_runs_of_the_same_seeds_are_paired():
    found = difference_interval(Stat(BASE, seeds=[0, 1, 2, 3]), Stat(AIT, seeds=[0, 1, 2, 3]))
    reference = stats.ttest_rel(AIT, BASE).confidence_interval(0.95)
    assert found.method == "paired" and (found.low, found.high) == pytest.approx((reference.low, reference.high))
    # The seeds pair the values, not the order they were listed in.
    shuffled = difference_interval(Stat(BASE, seeds=[0, 1, 2, 3]), Stat(AIT[::-1], seeds=[3, 2, 1, 0]))
    assert (shuffled.low, shuffled.high) == pytest.approx((found.low, found.high))


def test_other_runs_get_welchs_interval():
    found = difference_interval(Stat(BASE, seeds=[0, 1, 2, 3]), Stat(AIT[:3], seeds=[5, 6, 7]))
    reference = stats.ttest_ind(AIT[:3], BASE, equal_var=False).confidence_interval(0.95)
    assert found.method == "Welch" and (found.low, found.high) == pytest.approx((reference.low, reference.high))
    assert found.difference == pytest.approx(sum(AIT[:3]) / 3 - sum(BASE) / 4)


def test_too_few_runs_give_no_interval():
    assert difference_interval(Stat([70.0], seeds=[0]), Stat([71.0], seeds=[0])) is None
    assert interval_text(Stat([70.0, 70.2]), Stat([71.0])) == "–"


def test_the_report_shows_the_interval_of_each_comparison(tmp_path):
    root = tmp_path / "runs"
    for seed, (b, a) in enumerate(zip(BASE[:3], AIT[:3])):
        make_run(root, "base", seed, b, strategy="baseline")
        make_run(root, "ait", seed, a)
    assert main(["report", str(root), "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    expected = difference_interval(Stat(BASE[:3], seeds=[0, 1, 2]), Stat(AIT[:3], seeds=[0, 1, 2])).fmt()
    assert "Δ 95% CI" in text and expected in text and "paired over seeds" in text


def test_ait_interval_gives_the_reports_interval_from_quoted_numbers(capsys):
    import statistics

    assert main(["interval", "paired", ",".join(map(str, BASE)), ",".join(map(str, AIT))]) == 0
    paired = stats.ttest_rel(AIT, BASE).confidence_interval(0.95)
    assert (
        capsys.readouterr().out.strip()
        == f"{sum(AIT) / 4 - sum(BASE) / 4:+.2f} [{paired.low:+.2f}, {paired.high:+.2f}] paired"
    )
    quoted = [f"{statistics.fmean(v)}±{statistics.stdev(v)}/{len(v)}" for v in (BASE, AIT[:3])]
    assert main(["interval", "welch", *quoted]) == 0
    from_values = difference_interval(Stat(BASE), Stat(AIT[:3]))
    assert capsys.readouterr().out.strip() == from_values.fmt()


def test_ait_interval_reads_values_that_start_with_a_minus(capsys):
    assert main(["interval", "paired", "-1.5,-0.5,0.5", "-1,0,1"]) == 0
    assert capsys.readouterr().out.strip() == "+0.50 [+0.50, +0.50] paired"
    assert main(["interval", "welch", "-1.5±0.3/3", "-.5±0.3/3"]) == 0
    assert capsys.readouterr().out.strip().startswith("+1.00 [")


@pytest.mark.parametrize(
    "args, named",
    [
        (["paired", "1,2,3", "1,2"], "same length"),
        (["paired", "1,x", "1,2"], "'1,x': expected finite numbers"),
        (["paired", "nan,1,2", "1,2,3"], "'nan,1,2': expected finite numbers"),
        (["paired", "1,2,3", "inf,2,3"], "'inf,2,3': expected finite numbers"),
        (["welch", "41.4/3", "1±2/3"], "'41.4/3': expected MEAN±STD/N"),
        (["welch", "41.4±1/1", "1±2/3"], "N >= 2"),
    ],
)
def test_ait_interval_refuses_bad_numbers_naming_them(args, named, capsys):
    assert main(["interval", *args]) == 2
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1
