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
    va, vb = statistics.variance(a.values) / a.n, statistics.variance(b.values) / b.n
    mean = b.mean - a.mean
    if va + vb == 0:
        return Interval(mean, mean, mean, "Welch")
    dof = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    half = _t(dof) * math.sqrt(va + vb)
    return Interval(mean, mean - half, mean + half, "Welch")


def interval_text(a: Stat, b: Stat, with_difference: bool = True) -> str:
    """The report's cell: ``"+0.87 [+0.24, +1.49] paired"`` (or the bounds alone), "–" without
    two runs a side."""
    found = difference_interval(a, b)
    if found is None:
        return "–"
    return found.fmt() if with_difference else found.bounds()
