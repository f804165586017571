"""The paper's tables (1-5) and a table of every configuration, in Markdown, from grouped runs.

Runs are put into tables by what their configs say (strategy, label noise, training fraction,
views, consistency layer/metric), never by their names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ait.report.groups import Group, Stat, display_path, percent
from ait.report.stats import interval_text

TEST_SET_NAMES = {"original": "original", "crop": "random crop", "gray": "grayscale", "color": "random color"}
REPEAT_HINT = (
    "Repeat a run with `ait train <run>/config.yaml --run-dir <new dir>` "
    "(the config there is the resolved one; its own directory is taken)."
)


@dataclass
class Section:
    """A titled piece of the report and the groups its numbers came from."""

    title: str
    body: str
    groups: list[Group] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # relative paths of the PNGs it embeds

    def markdown(self) -> str:
        text = f"## {self.title}\n\n{self.body.rstrip()}\n"
        if self.groups:
            text += "\n" + sources(self.groups)
        return text


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    def clean(cell: str) -> str:
        return str(cell).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(clean(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(clean(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def sources(groups: list[Group]) -> str:
    unique = list(dict.fromkeys(groups))
    lines = ["Sources:"]
    for g in unique:
        dirs = ", ".join(f"`{display_path(r.path)}`" for r in g.runs)
        lines.append(f"- {g.label} (n={len(g.runs)}): {dirs}")
    lines.append("")
    lines.append(REPEAT_HINT)
    return "\n".join(lines) + "\n"


def delta(a: Stat, b: Stat) -> str:
    """``b - a`` of the means, signed; "–" when either side is missing."""
    if not a.values or not b.values:
        return "–"
    return f"{b.mean - a.mean:+.2f}"


def pooled_std(a: Stat, b: Stat) -> float | None:
    """The seed-to-seed standard deviation estimated from both groups together (pooled sample std).

    None when neither group has two runs, or when every run of a group gave the same number.
    """
    dof = (a.n - 1) + (b.n - 1) if a.n and b.n else 0
    if dof < 1:
        return None
    squares = sum((x - s.mean) ** 2 for s in (a, b) for x in s.values)
    std = (squares / dof) ** 0.5
    return std if std > 0 else None


def effect_size(a: Stat, b: Stat) -> str:
    """``(b - a) / pooled std`` of the means, e.g. ``"+5.7"``: how many seed stds the difference spans."""
    std = pooled_std(a, b)
    if std is None:
        return "–"
    return f"{(b.mean - a.mean) / std:+.1f}"


EFFECT_NOTE = (
    "Δ / std: the difference in units of the seed-to-seed standard deviation pooled over both groups "
    '("–" when no group has two seeds); with few seeds, read about 3 or more as clear, below 2 as '
    "within seed noise. 95% CI: the interval of Δ, paired over seeds where both groups ran the same "
    "seeds (their runs share initialisation and data order), Welch's t otherwise, as the cell says; "
    '"–" with fewer than two runs a side. A verdict holds when the interval excludes 0 in the claimed '
    "direction, fails when it excludes 0 the other way, and is inconclusive otherwise."
)
CI_HEADER = "Δ 95% CI"


# ----------------------------------------------------------------------------------------------
# Pairing baseline and AIT groups


@dataclass
class Comparison:
    """A baseline group against an AIT group (either may be missing), and how they compare."""

    baseline: Group | None
    ait: Group | None
    kind: str  # "equal epochs", "equal steps", "no baseline", "no AIT"
    text: str

    @property
    def lead(self) -> Group:
        return self.ait or self.baseline


def _steps(g: Group) -> str:
    return "?" if g.total_steps is None else str(g.total_steps)


# Each epoch's last, partial batch is a step of its own, so "twice the epochs" of a baseline and an
# AIT run of V=2 views differ by a few steps (20,000 images: 30 x 157 = 4,710 against 15 x 313 =
# 4,695). Such a baseline is still the compute-fair one; the row prints both counts.
STEP_TOLERANCE = 0.01


def _about_equal_steps(b: Group, a: Group) -> bool:
    if b.total_steps is None or a.total_steps is None:
        return False
    return abs(b.total_steps - a.total_steps) <= STEP_TOLERANCE * a.total_steps


def compare(groups: list[Group], keep: Callable[[Group], bool]) -> list[Comparison]:
    """Pair every kept AIT group with the kept baselines of the same experiment otherwise.

    Same experiment: same context (data, network, optimiser, ...) and the baseline's recipe equals
    every AIT view's recipe. An AIT run with a different recipe per view ("rp,rg") that has no such
    baseline is compared, labelled as such, with the baseline trained on its first view's recipe
    (the paper's Table 5 leaves these rows without a baseline; its text compares them to "rp").
    A baseline with the AIT's epochs is the "equal epochs" comparison (AIT then takes V times the
    steps); one with the AIT's total steps (within STEP_TOLERANCE) but more epochs is the separate
    "baseline, same steps as AIT" (compute-fair) comparison.
    """
    aits = [g for g in groups if g.strategy == "ait" and len(g.networks) == 1 and keep(g)]
    bases = [g for g in groups if g.strategy == "baseline" and len(g.networks) == 1 and keep(g)]
    out: list[Comparison] = []
    used: set[str] = set()
    for a in aits:
        rows = _baseline_rows(a, bases)
        for r in rows:
            used.add(r.baseline.key if r.baseline else "")
        out += sorted(rows, key=lambda r: r.kind != "equal epochs")
    for b in bases:
        if b.key not in used:
            text = f"baseline only: no AIT run with this setting ({b.epochs} epochs, {_steps(b)} steps)"
            out.append(Comparison(b, None, "no AIT", text))
    return sorted(
        out,
        key=lambda c: (
            c.lead.sort_key()[:1],
            c.lead.networks,
            c.lead.recipe,
            c.lead.noise,
            -c.lead.fraction,
            c.ait.weight if c.ait else -1,
            c.kind != "equal epochs",
            c.kind,
        ),
    )


def _baseline_rows(a: Group, bases: list[Group]) -> list[Comparison]:
    """The comparisons of one AIT group: its equal-epoch and compute-fair baselines, else the
    baseline of its first view's recipe, else a row of its own."""
    rows = []
    for b in (b for b in bases if b.context() == a.context() and b.recipe == a.recipe):
        same_steps = b.total_steps is not None and b.total_steps == a.total_steps
        if b.epochs == a.epochs:
            steps = f"equal steps {_steps(a)}" if same_steps else f"steps baseline/AIT {_steps(b)}/{_steps(a)}"
            rows.append(Comparison(b, a, "equal epochs", f"equal epochs ({a.epochs}); {steps}"))
        elif _about_equal_steps(b, a):
            steps = (
                f"equal steps ({_steps(a)})"
                if same_steps
                else f"steps baseline/AIT {_steps(b)}/{_steps(a)} (within {STEP_TOLERANCE:.0%})"
            )
            text = f"baseline, same steps as AIT: {steps}; epochs baseline/AIT {b.epochs}/{a.epochs}"
            rows.append(Comparison(b, a, "equal steps", text))
    if not rows and len(set(a.views)) > 1:
        first = a.views[0]
        for b in bases:
            if b.context() == a.context() and b.recipe == first and b.epochs == a.epochs:
                text = (
                    f"baseline trained with {first} (AIT's first view); equal epochs "
                    f"({a.epochs}); steps baseline/AIT {_steps(b)}/{_steps(a)}"
                )
                rows.append(Comparison(b, a, "equal epochs", text))
    if not rows:
        text = f"AIT only: no baseline with this setting ({a.epochs} epochs, {_steps(a)} steps)"
        rows.append(Comparison(None, a, "no baseline", text))
    return rows


def _single_net(g: Group) -> bool:
    """Baselines, and AIT runs as the paper's tables use them (loss on, logits + KL)."""
    return len(g.networks) == 1 and (g.strategy == "baseline" or (g.weight > 0 and g.default_consistency))


def _groups_of(comparisons: list[Comparison]) -> list[Group]:
    return [g for c in comparisons for g in (c.baseline, c.ait) if g is not None]


def _stat(g: Group | None, field_name: str = "final_top1") -> Stat:
    return g.stat("net0", field_name) if g else Stat([])


def _lambda(c: Comparison) -> str:
    return f"{c.ait.weight:g}" if c.ait else "–"


def _setting_cells(c: Comparison) -> list[str]:
    """Dataset, network, augmentation, λ and what is compared: the columns every comparison table opens with."""
    return [c.lead.dataset, c.lead.networks[0], c.lead.recipe, _lambda(c), c.text]


def _top1_cells(c: Comparison) -> list[str]:
    """Baseline and AIT final top-1, their difference, difference / std and its 95% interval."""
    b, a = _stat(c.baseline), _stat(c.ait)
    return [b.fmt(), a.fmt(), delta(b, a), effect_size(b, a), interval_text(b, a)]


# ----------------------------------------------------------------------------------------------
# The paper's tables


def table1(groups: list[Group]) -> Section | None:
    comps = compare(groups, lambda g: _single_net(g) and g.noise == 0 and g.fraction == 1)
    if not any(c.ait for c in comps):
        return None
    rows = [_setting_cells(c) + _top1_cells(c) for c in comps]
    body = f"Final-epoch test top-1 (%), mean ± std over seeds. Δ = AIT − baseline. {EFFECT_NOTE}\n\n" + md_table(
        ["Dataset", "Network", "Aug", "λ", "Comparison", "Baseline", "AIT", "Δ", "Δ / std", CI_HEADER], rows
    )
    return Section("Table 1: baseline vs AIT per dataset and network", body, _groups_of(comps))


def table2(groups: list[Group]) -> Section | None:
    multis = [g for g in groups if g.strategy == "multi_ait"]
    dmls = [g for g in groups if g.strategy == "dml"]
    if not multis and not dmls:
        return None
    singles = [g for g in groups if _single_net(g)]
    pairs = _dml_multi_pairs(dmls, multis)
    n_nets = max(len((m or d).networks) for d, m in pairs)
    headers = [
        "Dataset",
        *[f"Net{i + 1}" for i in range(n_nets)],
        "Aug",
        "Comparison",
        "Baseline Net1",
        "AIT Net1",
        *[f"DML Net{i + 1}" for i in range(n_nets)],
        *[f"multi-AIT Net{i + 1}" for i in range(n_nets)],
        "Δ (Δ / std) 95% CI per network",
    ]
    rows, used_groups = [], []
    for d, m in pairs:
        lead = m or d
        base, ait = _single_of(singles, "baseline", lead), _single_of(singles, "ait", lead)
        rows.append(_table2_row(d, m, base, ait, n_nets))
        used_groups += [g for g in (base, ait, d, m) if g]
    body = (
        "Final-epoch test top-1 (%) of each network, mean ± std over seeds. Baseline/AIT Net1: the single-network "
        "runs of Net1 with the same setting, where they exist. Δ = multi-AIT − DML for Net1, Net2, ... "
        f"{EFFECT_NOTE}\n\n" + md_table(headers, rows)
    )
    return Section("Table 2: DML vs multi-AIT", body, used_groups)


def _dml_multi_pairs(dmls: list[Group], multis: list[Group]) -> list[tuple[Group | None, Group | None]]:
    """(DML, multi-AIT) pairs of the same experiment; a group without a partner pairs with None."""
    pairs: list[tuple[Group | None, Group | None]] = []
    used: set[str] = set()
    for m in multis:
        match = [d for d in dmls if d.context() == m.context() and d.recipe == m.recipe and d.epochs == m.epochs]
        for d in match or [None]:
            pairs.append((d, m))
            if d:
                used.add(d.key)
    return pairs + [(d, None) for d in dmls if d.key not in used]


def _single_of(singles: list[Group], kind: str, like: Group) -> Group | None:
    """The baseline/AIT run of a pair's first network, same experiment otherwise."""
    if "," in like.recipe:  # a recipe per network: no single-network run is "the same"
        return None
    ctx = like.context(networks=like.networks[:1])
    found = [
        g
        for g in singles
        if g.strategy == kind and g.context() == ctx and g.recipe == like.recipe and g.epochs == like.epochs
    ]
    found.sort(key=lambda g: (g.weight != 1.0, g.weight))  # the paper's lambda = 1 first
    return found[0] if found else None


def _table2_row(d: Group | None, m: Group | None, base: Group | None, ait: Group | None, n_nets: int) -> list[str]:
    lead = m or d
    if d and m:
        steps = "equal steps" if d.total_steps == m.total_steps else f"steps DML/multi-AIT {_steps(d)}/{_steps(m)}"
        text = f"equal epochs ({m.epochs}); {steps}; λ DML/multi-AIT {d.weight:g}/{m.weight:g}"
    else:
        text = "multi-AIT only" if m else "DML only"
    nets = lead.networks + [""] * (n_nets - len(lead.networks))
    cells = [lead.dataset, *nets, lead.recipe, text, _stat(base).fmt(), _stat(ait).fmt()]
    for g in (d, m):
        cells += [g.stat(f"net{i}").fmt() if g and i < len(g.networks) else "–" for i in range(n_nets)]
    if d and m:
        pairs_of_stats = [(d.stat(f"net{i}"), m.stat(f"net{i}")) for i in range(len(m.networks))]
        cells.append(
            " / ".join(f"{delta(a, b)} ({effect_size(a, b)}) {interval_text(a, b, False)}" for a, b in pairs_of_stats)
        )
    else:
        cells.append("–")
    return cells


def table3(groups: list[Group]) -> Section | None:
    comps = compare(groups, lambda g: _single_net(g) and g.noise > 0 and g.fraction == 1)
    if not comps:
        return None
    rows = []
    for c in comps:
        changed = [
            r.summary.get("data", {}).get("label_noise_changed_fraction")
            for g in (c.baseline, c.ait)
            if g
            for r in g.runs
        ]
        changed = [x for x in changed if isinstance(x, (int, float))]
        measured = percent(round(sum(changed) / len(changed), 4)) if changed else "–"
        rows.append([percent(c.lead.noise), measured] + _setting_cells(c) + _top1_cells(c))
    body = (
        "Training labels replaced by random classes (test labels intact). Final-epoch test top-1 (%), mean ± std "
        'over seeds. "Labels changed" is measured (a random class may equal the true one). '
        f"{EFFECT_NOTE}\n\n"
        + md_table(
            [
                "Label noise",
                "Labels changed",
                "Dataset",
                "Network",
                "Aug",
                "λ",
                "Comparison",
                "Baseline",
                "AIT",
                "Δ",
                "Δ / std",
                CI_HEADER,
            ],
            rows,
        )
    )
    return Section("Table 3: label corruption, baseline vs AIT", body, _groups_of(comps))


def table4(groups: list[Group]) -> Section | None:
    comps = compare(groups, lambda g: _single_net(g) and g.fraction < 1 and g.noise == 0)
    if not comps:
        return None

    def both(g: Group | None) -> str:
        t1, t5 = _stat(g), _stat(g, "final_top5")
        if not t1.values:
            return "–"
        return f"{t1.fmt(with_n=False)} / {t5.fmt(with_n=False)} (n={t1.n})"

    rows = []
    for c in comps:
        d1 = delta(_stat(c.baseline), _stat(c.ait))
        d5 = delta(_stat(c.baseline, "final_top5"), _stat(c.ait, "final_top5"))
        rows.append([percent(c.lead.fraction)] + _setting_cells(c) + [both(c.baseline), both(c.ait), f"{d1} / {d5}"])
    body = (
        "A stratified fraction of the training set; the test set is complete. Final-epoch top-1 / top-5 (%), "
        "mean ± std over seeds.\n\n"
        + md_table(
            [
                "Data",
                "Dataset",
                "Network",
                "Aug",
                "λ",
                "Comparison",
                "Baseline top-1 / top-5",
                "AIT top-1 / top-5",
                "Δ top-1 / top-5",
            ],
            rows,
        )
    )
    return Section("Table 4: fraction of the training data, baseline vs AIT", body, _groups_of(comps))


def table5(groups: list[Group]) -> Section | None:
    comps = compare(
        groups, lambda g: _single_net(g) and bool(g.eval_runs("transfer")) and g.noise == 0 and g.fraction == 1
    )
    if not comps:
        return None
    test_sets: list[str] = []
    for g in _groups_of(comps):
        for run in g.eval_runs("transfer"):
            for name in run.transfer.get("test_sets") or list(run.transfer.get("networks", {}).get("net0", {})):
                if name not in test_sets:
                    test_sets.append(name)
    headers = ["Aug", "Dataset", "Network", "λ", "Comparison", "n (B / AIT)"]
    for t in test_sets:
        headers += [f"{TEST_SET_NAMES.get(t, t)}: Baseline", f"{TEST_SET_NAMES.get(t, t)}: AIT"]
    rows = []
    for c in comps:
        nb = len(c.baseline.eval_runs("transfer")) if c.baseline else 0
        na = len(c.ait.eval_runs("transfer")) if c.ait else 0
        cells = [c.lead.recipe, c.lead.dataset, c.lead.networks[0], _lambda(c), c.text, f"{nb or '–'} / {na or '–'}"]
        for t in test_sets:
            for g in (c.baseline, c.ait):
                cells.append(g.transfer_stat(t).fmt(with_n=False) if g else "–")
        rows.append(cells)
    body = (
        "Top-1 (%) of the final networks on the original test set and on fixed augmented copies of it "
        "(eval/transfer.json), mean ± std over the seeds that have the file. Aug: the training recipe; "
        '"rp,rg" means a different recipe per view.\n\n' + md_table(headers, rows)
    )
    return Section("Table 5: augmentation transfer", body, _groups_of(comps))


def best_on_validation(groups: list[Group]) -> set[tuple[int, str]]:
    """(id of group, network key) of the highest mean validation top-1 per dataset and architecture
    (all of them on a tie): the configuration a tuning sweep chooses, on the held-out images."""
    means = {}  # (id of group, key) -> (dataset, architecture, mean)
    for g in groups:
        for key in g.network_keys:
            mean = g.stat(key, "final_val_top1").mean
            if mean is not None:
                means[(id(g), key)] = (g.dataset, (g.runs[0].network(key) or {}).get("name", key), mean)
    best: dict[tuple[str, str], float] = {}
    for dataset, name, mean in means.values():
        best[(dataset, name)] = max(mean, best.get((dataset, name), mean))
    return {where for where, (dataset, name, mean) in means.items() if mean == best[(dataset, name)]}


def all_groups_table(groups: list[Group]) -> Section:
    # With data.val_fraction, the held-out validation top-1: the column to tune a recipe on.
    chosen = best_on_validation(groups)
    with_val = bool(chosen)
    rows = []
    for g in groups:
        for key in g.network_keys:
            net = g.runs[0].network(key) or {}
            name = net.get("name", key)
            mark = " **(best val)**" if (id(g), key) in chosen else ""
            val = [g.stat(key, "final_val_top1").fmt() + mark] if with_val else []
            rows.append(
                [
                    g.label,
                    f"{key} ({name})" if name != key else key,
                    str(g.epochs),
                    _steps(g),
                    ", ".join(str(s) for s in g.seeds),
                    *val,
                    g.stat(key).fmt(),
                    g.stat(key, "final_top5").fmt(),
                    g.stat(key, "best_top1").fmt(),
                    g.wall_minutes().fmt(with_n=False),
                ]
            )
    val_note = (
        "Final val top-1: the held-out validation images (data.val_fraction), the number to choose a "
        "recipe on (the highest per dataset and network is marked best val); the test columns are for "
        "reporting the choice, never for making it. "
        if with_val
        else ""
    )
    headers = ["Configuration", "Network", "Epochs", "Steps", "Seeds", *(["Final val top-1"] if with_val else [])]
    body = (
        "Every configuration found, final-epoch test accuracy (%), mean ± std over seeds. The best-epoch "
        "column is an extra: the epoch is picked on the test set, so it is optimistic; do not quote it as "
        "the result. "
        + val_note
        + "Wall time: minutes per run (training and its evaluations, all networks of the run), "
        "as the machine gave them; on a shared machine it varies with the load.\n\n"
        + md_table(
            [*headers, "Final top-1", "Final top-5", "Best-epoch top-1 (extra, optimistic)", "Wall time (min/run)"],
            rows,
        )
    )
    return Section("All configurations", body, list(groups))
