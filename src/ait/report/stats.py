"""Confidence intervals of the differences the report compares (SciPy's t distribution).

Two groups that ran the same seeds (at least two) share each seed's initialisation and data order,
so the pairing is real: the interval is the paired t interval of the per-seed differences. Other
groups get Welch's t interval (unequal variances). With fewer than two runs a side there is none.

    >>> from ait.report.groups import Stat
    >>> baseline = Stat([70.1, 70.5, 69.8], seeds=[0, 1, 2])
    >>> ait = Stat([71.0, 71.6, 70.4], seeds=[0, 1, 2])
    >>> difference_interval(baseline, ait).fmt()
    '+0.87 [+0.24, +1.49] paired'
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass

from ait.report.groups import Stat

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """``b - a`` with its confidence interval, and which test gave it ("paired" or "Welch")."""

    difference: float
    low: float
    high: float
    method: str

    def fmt(self) -> str:
        return f"{self.difference:+.2f} {self.bounds()}"

    def bounds(self) -> str:
        return f"[{self.low:+.2f}, {self.high:+.2f}] {self.method}"

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def _t(dof: float) -> float:
    from scipy import stats  # late: the report's optional extra

    return float(stats.t.ppf(0.5 + LEVEL / 2, dof))


def difference_interval(a: Stat, b: Stat) -> Interval | None:
    """The interval of mean(b) - mean(a); paired over seeds when both ran the same ones."""
    if a.seeds and b.seeds and sorted(a.seeds) == sorted(b.seeds) and len(set(a.seeds)) == a.n >= 2:
        by_seed = dict(zip(b.seeds, b.values))
        diffs = [by_seed[s] - v for s, v in zip(a.seeds, a.values)]
        mean, half = statistics.fmean(diffs), _t(len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
        return Interval(mean, mean - half, mean + half, "paired")
    if a.n < 2 or b.n < 2:
        return None
    return welch_interval(a.mean, a.std, a.n, b.mean, b.std, b.n)


def welch_interval(mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float, n_b: int) -> Interval:
    """Welch's t interval of mean_b - mean_a from each group's mean, sample std and size (n >= 2):
    what a table of "mean ± std (n)" still gives when its runs are gone."""
    va, vb = std_a**2 / n_a, std_b**2 / n_b
    mean = mean_b - mean_a
    if va + vb == 0:
        return Interval(mean, mean, mean, "Welch")
    dof = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    half = _t(dof) * math.sqrt(va + vb)
    return Interval(mean, mean - half, mean + half, "Welch")


def interval_text(a: Stat, b: Stat, with_difference: bool = True) -> str:
    """The report's cell: ``"+0.87 [+0.24, +1.49] paired"`` (or the bounds alone), "–" without
    two runs a side."""
    found = difference_interval(a, b)
    if found is None:
        return "–"
    return found.fmt() if with_difference else found.bounds()


def quoted_interval(test: str, a: str, b: str) -> Interval:
    """The interval of B - A for numbers quoted in a document whose run directories are gone
    (``ait interval``): ``test`` "paired" with per-seed values "V1,V2,..." in seed order, or "welch"
    with "MEAN±STD/N" (or ``+-``). ValueError naming the text that does not parse."""
    if test == "paired":
        va, vb = _values(a), _values(b)
        if len(va) != len(vb) or len(va) < 2:
            raise ValueError(f"paired: expected two lists of the same length >= 2, got {len(va)} and {len(vb)} values")
        return difference_interval(Stat(va, list(range(len(va)))), Stat(vb, list(range(len(vb)))))
    if test == "welch":
        return welch_interval(*_summary(a), *_summary(b))
    raise ValueError(f"test {test!r}: expected paired or welch")


def _values(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) for v in values):  # nan and inf parse, and no interval holds them
        raise ValueError(f"{text!r}: expected finite numbers separated by commas, e.g. 80.07,79.18,80.44")
    return values


def _summary(text: str) -> tuple[float, float, int]:
    match = re.fullmatch(r"\s*([-+]?\d*\.?\d+)\s*(?:±|\+-)\s*(\d*\.?\d+)\s*/\s*(\d+)\s*", text)
    if not match or int(match[3]) < 2:  # the pattern admits only numbers float() reads
        raise ValueError(f"{text!r}: expected MEAN±STD/N with N >= 2, e.g. 41.40±0.40/3")
    return float(match[1]), float(match[2]), int(match[3])
