"""The training strategies, one table: what "baseline", "ait", "dml" and "multi_ait" mean.

A strategy pairs its N networks with its V views (augmentation recipes) into **branches**, each a
(network index, view index) pair; one trainer runs any list of branches (docs/design.md, "One
engine, many strategies")::

    strategy    networks  views   branches               consistency between
    baseline    1         1       (0,0)                  nothing
    ait         1         V >= 2  (0,0) (0,1) ...        the views of one network
    dml         N >= 2    1       (0,0) (1,0) ...        the networks, on one shared view
    multi_ait   N >= 2    N       (0,0) (1,1) ...        the networks, each on its own view
    augmix      1         V >= 2  (0,0) (0,1) ...        the views; cross-entropy on view 0 only

Everything the rest of the code needs to know about a strategy is derived from its entry here:

- :meth:`Strategy.branches` -- the branches for N networks and V views;
- :meth:`Strategy.accepts` and :attr:`Strategy.shape` -- which N and V it takes, and the words of
  the error when a config gives others;
- :meth:`Strategy.views_per_network` and :meth:`Strategy.samples_per_step` -- ``batch_size`` is
  the number of images each network sees per step, so a network fed V views of every sample (AIT)
  takes ``batch_size / V`` samples per step and its epoch has V times the steps;
- :meth:`Strategy.ce_branches` -- the branches whose outputs get the cross-entropy (all of them
  for the four strategies of the paper); the consistency loss compares every branch with every
  other whenever there are two or more.

Adding a strategy means adding an entry to :data:`STRATEGIES` (and its tests): the config, the
trainer, the data streams and the report look entries up by name.

    >>> from ait.strategies import get
    >>> get("ait").branches(networks=1, views=2)
    [(0, 0), (0, 1)]
    >>> get("ait").samples_per_step(batch_size=128, networks=1, views=2)
    64
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Branch = tuple[int, int]  # (network index, view index)


@dataclass(frozen=True)
class Strategy:
    """One training strategy: how networks and views pair up into branches.

    name: the config's ``strategy.name``. label: how reports name it. shape: the networks and
    views it takes, as an error message says it ("1 network and at least 2 views").
    accepts: (networks, views) -> whether it takes them. pair: (networks, views) -> branches.
    ce: (networks, views) -> the branches that get cross-entropy; None means every branch.
    """

    name: str
    label: str
    shape: str
    accepts: Callable[[int, int], bool]
    pair: Callable[[int, int], list[Branch]]
    ce: Callable[[int, int], list[Branch]] | None = None

    def branches(self, networks: int, views: int) -> list[Branch]:
        """The (network, view) pairs trained each step, networks in order, each network's views in order."""
        return self.pair(networks, views)

    def ce_branches(self, networks: int, views: int) -> list[Branch]:
        """The branches whose outputs get the cross-entropy with the labels."""
        return self.ce(networks, views) if self.ce is not None else self.branches(networks, views)

    def compares_branches(self, networks: int, views: int) -> bool:
        """Whether a consistency loss is taken (between every two branches): two or more branches."""
        return len(self.branches(networks, views)) >= 2

    def views_per_network(self, networks: int, views: int) -> int:
        """The most views any one network sees of each sample in a step (AIT: V; the others: 1)."""
        branches = self.branches(networks, views)
        return max(sum(1 for n, _ in branches if n == k) for k in range(networks))

    def samples_per_step(self, batch_size: int, networks: int, views: int) -> int:
        """Samples drawn per step when every network sees ``batch_size`` images per step."""
        return batch_size // self.views_per_network(networks, views)


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy(
            "baseline",
            "Baseline",
            "1 network and 1 view",
            accepts=lambda n, v: n == 1 and v == 1,
            pair=lambda n, v: [(0, 0)],
        ),
        Strategy(
            "ait",
            "AIT",
            "1 network and at least 2 views",
            accepts=lambda n, v: n == 1 and v >= 2,
            pair=lambda n, v: [(0, j) for j in range(v)],
        ),
        Strategy(
            "dml",
            "DML",
            "at least 2 networks and 1 view",
            accepts=lambda n, v: n >= 2 and v == 1,
            pair=lambda n, v: [(i, 0) for i in range(n)],
        ),
        Strategy(
            "multi_ait",
            "multi-AIT",
            "at least 2 networks and one view per network",
            accepts=lambda n, v: n >= 2 and v == n,
            pair=lambda n, v: [(i, i) for i in range(n)],
        ),
        Strategy(  # beyond the paper: AugMix's training (Hendrycks et al., 2020)
            "augmix",
            "AugMix",
            "1 network and at least 2 views (the first, clean, gets the cross-entropy)",
            accepts=lambda n, v: n == 1 and v >= 2,
            pair=lambda n, v: [(0, j) for j in range(v)],
            ce=lambda n, v: [(0, 0)],
        ),
    )
}


def names() -> tuple[str, ...]:
    """The strategy names, in the table's order (also the order of rows in reports)."""
    return tuple(STRATEGIES)


def get(name: str) -> Strategy:
    """The entry of ``name``; KeyError listing the valid names otherwise."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise KeyError(f"unknown strategy {name!r}; valid names: {', '.join(STRATEGIES)}") from None
