"""Assemble report.md (tables, figures, sources) and its PNGs from run directories."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from ait.report import tables
from ait.report.data import long_rows, table_path, write_csv, write_json_rows
from ait.report.groups import Group, display_path, group_runs, slug
from ait.report.outputs import FIGURE_COMMENT, REPORT_MARKER, check_folder, check_replaceable, make_folder, read_text
from ait.report.records import ReportError, load_finished_runs
from ait.report.stats import interval_text
from ait.report.tables import Section, compare, md_table
from ait.runtime.files import write_text_atomic

PLOTS = "plots"
PLOT_PREFIXES = ("curves_", "fig3_", "fig4_", "fig5_", "fig6_", "corruptions_")


# The benchmark's four categories (Hendrycks & Dietterich, 2019), by the names in corruptions.json.
CORRUPTION_FAMILIES: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog", "brightness"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
}


def _ait_candidates(groups: list[Group]) -> list[Group]:
    return [g for g in groups if g.strategy == "ait" and len(g.networks) == 1 and g.noise == 0 and g.fraction == 1]


def _img(section_images: list[str], rel: str, caption: str) -> str:
    section_images.append(rel)
    return f"![{caption}]({rel})\n"


class _Builder:
    def __init__(self, groups: list[Group], out_dir: Path, plots_ok: bool):
        self.groups, self.out_dir, self.plots_ok = groups, out_dir, plots_ok
        self.missing: list[str] = []

    def path(self, name: str) -> tuple[Path, str]:
        return self.out_dir / PLOTS / name, f"{PLOTS}/{name}"

    # -- Figure 4 ------------------------------------------------------------------------------
    def figure4(self) -> Section | None:
        from ait.report import plots

        buckets: dict[tuple, list[Group]] = {}
        for g in _ait_candidates(self.groups):
            if g.default_consistency:
                buckets.setdefault((g.context(), g.recipe, g.epochs), []).append(g)
        lines = [gs for gs in buckets.values() if len({g.weight for g in gs}) >= 2]
        if not lines:
            self.missing.append("Figure 4 (λ sweep): no AIT setting was run with two or more consistency weights.")
            return None
        datasets = [gs[0].dataset for gs in lines]
        named = []
        for gs in lines:
            g = gs[0]
            label = g.dataset
            if datasets.count(g.dataset) > 1:
                label += f" · {g.networks[0]} · {g.recipe} · {g.epochs} ep"
            named.append((label, sorted(gs, key=lambda x: x.weight)))
        rows = []
        for label, gs in named:
            zero = next((g.stat() for g in gs if g.weight == 0), None)  # training without the AiLoss
            for g in gs:
                stat = g.stat()
                vs_zero = (
                    ["–", "–", "–"]
                    if zero is None or g.weight == 0
                    else [tables.delta(zero, stat), tables.effect_size(zero, stat), interval_text(zero, stat)]
                )
                rows.append([label, f"{g.weight:g}", stat.fmt(), *vs_zero])
        images: list[str] = []
        body = (
            f"Δ = top-1 − top-1 at λ = 0 (the same training without the AiLoss). {tables.EFFECT_NOTE}\n\n"
            + md_table(["Setting", "λ", "Final top-1", "Δ vs λ = 0", "Δ / std", tables.CI_HEADER], rows)
        )
        if self.plots_ok:
            path, rel = self.path("fig4_lambda.png")
            plots.lambda_sweep([(label, [(g.weight, g.stat()) for g in gs]) for label, gs in named], path)
            body = _img(images, rel, "Figure 4: top-1 vs λ") + "\n" + body
        return Section("Figure 4: loss weight λ", body, [g for _, gs in named for g in gs], images)

    # -- Figure 3 ------------------------------------------------------------------------------
    def figure3(self) -> Section | None:
        from ait.report import plots

        buckets: dict[tuple, list[Group]] = {}
        for g in _ait_candidates(self.groups):
            if g.weight > 0:
                buckets.setdefault((g.context(), g.recipe, g.epochs, g.weight), []).append(g)
        sets = [
            gs
            for gs in buckets.values()
            if len({(g.get("consistency.layer"), g.get("consistency.metric")) for g in gs}) >= 2
        ]
        if not sets:
            self.missing.append(
                "Figure 3 (layer × metric): no AIT setting was run with two or more "
                "consistency layer/metric combinations."
            )
            return None
        body, used, images = "", [], []
        for gs in sets:
            g0 = gs[0]
            base = next(
                (
                    b
                    for b in self.groups
                    if b.strategy == "baseline"
                    and len(b.networks) == 1
                    and b.context() == g0.context()
                    and b.recipe == g0.recipe
                    and b.epochs == g0.epochs
                ),
                None,
            )
            cells = {(g.get("consistency.layer"), g.get("consistency.metric")): g.stat() for g in gs}
            layers = sorted({k[0] for k in cells}, key=lambda layer: (plots.LAYER_ORDER + (layer,)).index(layer))
            order = list(plots.METRIC_NAMES)
            metrics = sorted({k[1] for k in cells}, key=lambda m: (order.index(m) if m in order else len(order), m))
            title = f"Figure 3: layer × metric · {g0.dataset} · {g0.networks[0]} · {g0.recipe} · λ={g0.weight:g}"
            if self.plots_ok:
                stem = slug(f"{g0.dataset}_{g0.networks[0]}_{g0.recipe}_lambda{g0.weight:g}", g0.key)
                path, rel = self.path(f"fig3_{stem}.png")
                plots.ablation_bars(cells, base.stat() if base else None, title, path)
                body += _img(images, rel, title) + "\n"
            rows = [[ly, *[cells[(ly, m)].fmt() if (ly, m) in cells else "–" for m in metrics]] for ly in layers]
            body += md_table(["Layer", *metrics], rows)
            body += f"\nBaseline (no AiLoss): {base.stat().fmt() if base else '– (no matching baseline run)'}\n\n"
            used += gs + ([base] if base else [])
        return Section("Figure 3: consistency layer × metric", body, used, images)

    # -- Figure 5 ------------------------------------------------------------------------------
    def figure5(self) -> Section | None:
        from ait.report import plots

        comps = compare(self.groups, lambda g: len(g.networks) == 1 and bool(g.eval_runs("variation")))
        if not comps:
            self.missing.append(
                "Figure 5 (intra-augmentation variation): no run has eval/variation.json "
                "(`ait eval RUN_DIR` writes it)."
            )
            return None
        body, used, images = "", [], []
        for c in comps:
            series = [("Baseline", c.baseline)] if c.baseline else []
            series += [(f"AIT λ={c.ait.weight:g}", c.ait)] if c.ait else []
            pairs: list[str] = []
            for _, g in series:
                for run in g.eval_runs("variation"):
                    for p in run.variation.get("pairs") or list(run.variation.get("networks", {}).get("net0", {})):
                        if p not in pairs:
                            pairs.append(p)
            lead = c.lead
            title = (
                f"Figure 5: intra-augmentation variation · {lead.dataset} · {lead.networks[0]} · "
                f"{lead.recipe} · {c.text}"
            )
            if self.plots_ok:
                keys = "".join(g.key for _, g in series)
                stem = slug(f"{lead.dataset}_{lead.networks[0]}_{lead.recipe}_{c.kind}", keys)
                path, rel = self.path(f"fig5_{stem}.png")
                plots.variation_bars(series, pairs, title, path)
                body += _img(images, rel, title) + "\n"
            else:
                body += f"**{title}**\n\n"
            headers = ["Test-set pair"] + [f"{m}: {name}" for m in ("KL", "feature L2") for name, _ in series]
            rows = [
                [p] + [g.variation_stat(p, m).fmt() for m in ("kl", "feature_l2") for _, g in series] for p in pairs
            ]
            body += md_table(headers, rows) + "\n"
            used += [g for _, g in series]
        return Section("Figure 5: intra-augmentation variation between test sets", body, used, images)

    # -- Figure 6 ------------------------------------------------------------------------------
    def figure6(self) -> Section | None:
        from ait.report import plots

        comps = compare(self.groups, lambda g: len(g.networks) == 1 and bool(g.eval_runs("tsne")))
        if not comps:
            self.missing.append("Figure 6 (t-SNE): no run has eval/tsne.json (`ait eval RUN_DIR --tsne` writes it).")
            return None
        if not self.plots_ok:
            self.missing.append("Figure 6 (t-SNE): matplotlib is not installed.")
            return None
        body, used, images = "", [], []
        for c in comps:
            panels = []
            for name, g in (("Baseline", c.baseline), ("AIT", c.ait)):
                if g is None:
                    continue
                run = g.eval_runs("tsne")[0]
                tag = f"λ={g.weight:g}, " if g.strategy == "ait" else ""
                panels.append((f"{name} ({tag}{g.recipe}, seed {run.seed})", run.tsne))
                used.append(g)
            lead = c.lead
            title = f"Figure 6: t-SNE · {lead.dataset} · {lead.networks[0]} · {c.text}"
            keys = "".join(g.key for g in (c.baseline, c.ait) if g)
            path, rel = self.path(f"fig6_{slug(f'{lead.dataset}_{lead.networks[0]}_{lead.recipe}_{c.kind}', keys)}.png")
            plots.tsne_panels(panels, path)
            body += _img(images, rel, title) + "\n"
        return Section("Figure 6: t-SNE of features (colour = source sample)", body, used, images)

    # -- common corruptions (beyond the paper) ---------------------------------------------------
    def corruptions(self) -> Section | None:
        from ait.report import plots

        groups = [g for g in self.groups if g.eval_runs("corruptions")]
        if not groups:
            self.missing.append(
                "Corruption robustness: no run has eval/corruptions.json (`ait eval RUN_DIR --corruptions` writes it)."
            )
            return None
        groups, setting = self._one_corruption_setting(groups)
        names, severities, source = list(setting[1]), [str(s) for s in setting[2]], setting[0]
        rows = [[g.label, g.stat().fmt(), g.corruption_stat().fmt(), g.mce_stat().fmt()] for g in groups]
        origin = "generated locally" if source == "local" else f"official files from {source}"
        body = (
            f"Top-1 (%) on the test set and under the {len(names)} common corruptions of Hendrycks & "
            f"Dietterich (2019) at severities {', '.join(severities)} ({origin}), "
            "mean ± std over seeds; mCE (%) is relative to the baseline run named at evaluation "
            "(100 = as robust as it; lower is better).\n\n"
        )
        body += md_table(["Configuration", "Clean top-1", "Corrupted top-1 (mean)", "mCE"], rows) + "\n"
        families = [(f, members) for f, members in CORRUPTION_FAMILIES.items() if set(members) & set(names)]
        per_family = [[f] + [g.corruption_stat(family=members).fmt() for g in groups] for f, members in families]
        body += "\nPer family (top-1, mean over its corruptions and the severities; ± std over seeds):\n\n"
        body += md_table(["Family"] + [g.label for g in groups], per_family) + "\n"
        per = [[name] + [g.corruption_stat(corruption=name).fmt(with_n=False) for g in groups] for name in names]
        body += "\nPer corruption (top-1, mean over severities):\n\n"
        body += md_table(["Corruption"] + [g.label for g in groups], per) + "\n"
        by_severity = [
            [sev] + [g.corruption_stat(severity=sev).fmt(with_n=False) for g in groups] for sev in severities
        ]
        body += "\nPer severity (top-1, mean over corruptions; the numbers of the plot):\n\n"
        body += md_table(["Severity"] + [g.label for g in groups], by_severity) + "\n"
        images: list[str] = []
        if self.plots_ok and severities:
            path, rel = self.path("corruptions_severity.png")
            plots.corruption_severity(
                [(g.label, g) for g in groups], severities, "Top-1 under common corruptions by severity", path
            )
            body = _img(images, rel, "top-1 against corruption severity") + "\n" + body
        return Section("Beyond the paper: common-corruption robustness", body, groups, images)

    def _one_corruption_setting(self, groups: list[Group]) -> tuple[list[Group], tuple]:
        """The groups with only the runs evaluated like most (:func:`corruption_setting`), so that
        no mean mixes severities or sources; each run left out is named under "Not in this report"."""
        settings = [corruption_setting(r) for g in groups for r in g.eval_runs("corruptions")]
        common = max(settings, key=settings.count)  # ties: the first found
        kept = []
        for g in groups:
            odd = [r for r in g.eval_runs("corruptions") if corruption_setting(r) != common]
            self.missing += [
                f"Corruptions of {display_path(r.path)}: evaluated {_setting_text(corruption_setting(r))}, "
                f"not {_setting_text(common)} as the others; left out of that section."
                for r in odd
            ]
            runs = [r for r in g.runs if r not in odd]
            if any(r.corruptions is not None for r in runs):
                kept.append(Group(g.key, runs, g.label, g.repeats))
        return kept, common

    # -- accuracy curves -----------------------------------------------------------------------
    def curves(self) -> Section | None:
        from ait.report import plots

        if not self.plots_ok:
            return None
        body, images, used = "", [], []
        for g in self.groups:
            path, rel = self.path(f"curves_{slug(g.label, g.key)}.png")
            if plots.accuracy_curves(g, path) is None:
                self.missing.append(f"Accuracy curve of {g.label}: no test records in metrics.jsonl.")
                continue
            body += f"**{g.label}**\n\n" + _img(images, rel, f"test top-1 per epoch: {g.label}") + "\n"
            used.append(g)
        if not images:
            return None
        return Section("Accuracy curves (test top-1 per evaluated epoch, every seed)", body, [], images)


def corruption_setting(run) -> tuple:
    """(source, corruptions, severities, constants) of a run's eval/corruptions.json: what its
    corruption numbers can be averaged with."""
    c = run.corruptions
    return (
        c.get("source", "local"),
        tuple(c.get("corruptions") or ()),
        tuple(c.get("severities") or ()),
        c.get("constants"),
    )


def _setting_text(setting: tuple) -> str:
    """ "on 15 corruptions at severities 1,2,3,4,5 (generated locally, cifar constants)" """
    source, names, severities, constants = setting
    where = ["generated locally" if source == "local" else f"files from {source}"]
    where += [f"{constants} constants"] if constants else []
    at = ",".join(map(str, severities))
    return f"on {len(names)} corruption{'s' * (len(names) != 1)} at severities {at} ({', '.join(where)})"


def _matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def build_report(
    run_dirs: Iterable[str | Path],
    out_dir: str | Path,
    log: Callable[[str], None] | None = None,
    pool_devices: bool = False,
) -> Path:
    """Write ``out_dir/report.md`` (and ``out_dir/plots/*.png``) from the runs under ``run_dirs``.
    pool_devices: seeds of one configuration run on different machines count as one group
    (:func:`ait.report.groups.group_runs`).

    Each path may be a run directory or a parent of run directories (searched recursively for
    summary.json). A run directory whose summary.json or config.yaml is malformed is skipped: the
    report and ``log`` (default: stderr) name the file and the problem. Raises ReportError when no
    readable run is left. Returns the path of report.md.
    """
    log = log or (lambda text: print(text, file=sys.stderr))
    paths = list(run_dirs)
    if not paths:
        raise ReportError("no run directories given")
    out = check_out_dir(out_dir)
    runs, skipped, incomplete = load_finished_runs(paths)
    for _, why in skipped:
        log(f"ait report: skipped, {why}")
    make_folder(out)
    for old in _stale_plots(out / PLOTS):
        old.unlink()  # an earlier report's figures would be misleading next to this one's
    groups = group_runs(runs, pool_devices)
    plots_ok = _matplotlib_available()
    b = _Builder(groups, out, plots_ok)
    text = [REPORT_MARKER, _intro(paths, runs, groups, skipped, out, pool_devices)]
    text += [s.markdown() for s in _sections(groups, b)]
    text.append(_missing(b.missing, runs, groups, skipped, incomplete, plots_ok))
    report = out / "report.md"
    write_text_atomic(report, "\n".join(text))
    return report


def build_tables(
    run_dirs: Iterable[str | Path],
    csv_dir: str | Path | None,
    json_dir: str | Path | None,
    log: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write the report's numbers as long-form data (:mod:`ait.report.data`) into ``csv_dir``
    (results.csv) and ``json_dir`` (results.json), each when given; returns the paths written.
    Unreadable runs are left out with a line to ``log`` (default: stderr)."""
    if csv_dir is None and json_dir is None:
        return []
    log = log or (lambda text: print(text, file=sys.stderr))
    for folder, name in ((csv_dir, "results.csv"), (json_dir, "results.json")):
        if folder is not None:
            table_path(folder, name)  # refused before the runs are read and either file is written
    runs, skipped, _ = load_finished_runs(run_dirs)
    for _, why in skipped:
        log(f"ait report: left out of the tables, {why}")
    rows = long_rows(runs)
    written = [write_csv(rows, Path(csv_dir))] if csv_dir is not None else []
    return written + ([write_json_rows(rows, Path(json_dir))] if json_dir is not None else [])


def check_out_dir(out_dir: str | Path) -> Path:
    """``out_dir``, where a report may be written: a folder (or none yet) whose report.md and figures,
    which the report replaces or removes, are ait report's own; else ReportError, before anything is written."""
    out = check_folder(out_dir)
    check_replaceable(out / "report.md", is_own_report)
    for png in _stale_plots(check_folder(out / PLOTS)):
        check_replaceable(png, is_own_figure)
    return out


def is_own_report(path: Path) -> bool:
    """Whether ``path`` is a report.md ait report wrote: REPORT_MARKER first; a report from before the
    marker (docs/results/) by its title and the closing section every report has."""
    text = read_text(path) or ""
    first = text.split("\n", 1)[0]
    return first == REPORT_MARKER or (first == "# AIT report" and "\n## Not in this report\n" in text)


def is_own_figure(path: Path) -> bool:
    """Whether ``path`` (out/plots/NAME.png) is a figure of ait report's: FIGURE_COMMENT in its metadata
    (near the start, before the pixels), or, from before that comment, linked by the report.md beside plots/."""
    try:
        with path.open("rb") as f:
            if FIGURE_COMMENT.encode() in f.read(4096):
                return True
    except OSError:
        return False
    report = path.parent.parent / "report.md"
    return is_own_report(report) and f"]({PLOTS}/{path.name})" in (read_text(report) or "")


def _stale_plots(plot_dir: Path) -> list[Path]:
    """The figures an earlier report left in ``plot_dir``."""
    return sorted(p for p in plot_dir.glob("*.png") if p.name.startswith(PLOT_PREFIXES)) if plot_dir.is_dir() else []


def _sections(groups: list[Group], b: _Builder) -> list[Section]:
    """The paper's tables, then its figures, the corruption section, every configuration and the curves."""
    sections: list[Section] = []
    for title, make in (
        ("Table 1 (baseline vs AIT)", tables.table1),
        ("Table 2 (DML vs multi-AIT)", tables.table2),
        ("Table 3 (label noise)", tables.table3),
        ("Table 4 (training fraction)", tables.table4),
        ("Table 5 (augmentation transfer)", tables.table5),
    ):
        section = make(groups)
        if section is None:
            b.missing.append(
                f"{title}: no runs of that kind"
                + (" with eval/transfer.json (`ait eval RUN_DIR` writes it)" if "transfer" in title else "")
                + "."
            )
        else:
            sections.append(section)
    for make in (b.figure3, b.figure4, b.figure5, b.figure6, b.corruptions):
        section = make()
        if section is not None:
            sections.append(section)
    sections.append(tables.all_groups_table(groups))
    curves = b.curves()
    if curves is not None:
        sections.append(curves)
    return sections


def _intro(paths, runs, groups, skipped, out: Path, pool_devices: bool = False) -> str:
    where = ", ".join(f"`{display_path(Path(p))}`" for p in paths)
    lines = [
        "# AIT report",
        "",
        f"{len(runs)} runs in {len(groups)} configurations, found under {where}.",
        "",
        "- Headline number: **final-epoch** test top-1 (%), mean ± sample standard deviation over seeds "
        '(n = number of seeds; std "–" when n = 1). Best-epoch accuracy picks the epoch on the test set and '
        "appears only as a labelled extra column.",
        "- Runs are grouped by their resolved config without seed, name and out_dir (and display-only keys); "
        "they are placed in tables by config content (strategy, label noise, training fraction, views, "
        "consistency layer/metric), not by name.",
        "- Compute: an AIT step feeds the same number of images as a baseline step, V views of batch/V samples, "
        "so an AIT epoch has V times the steps. Each comparison row says whether it compares **equal epochs** "
        'or **equal steps** ("baseline, same steps as AIT").',
    ]
    if pool_devices:
        lines.append(
            "- Pooled across machines (--pool-devices): runs that differ only in train.device and where their "
            'data files lie, with the same data fingerprint (env.json), are one configuration; "pooled: cpu 2, '
            'cuda 1" in a label counts the seeds each device gave.'
        )
    if skipped:
        lines += ["", f"**{len(skipped)} run directories were skipped** (malformed files): see the last section."]
    repeats = sum(len(g.repeats) for g in groups)
    if repeats:
        runs_repeat, verb = ("1 run repeats", "is") if repeats == 1 else (f"{repeats} runs repeat", "are")
        lines += [
            "",
            f"**{runs_repeat} the configuration and seed of another run** and {verb} counted once: "
            "see the last section.",
        ]
    return "\n".join(lines) + "\n"


def _missing(missing, runs, groups, skipped, incomplete, plots_ok) -> str:
    lines = ["## Not in this report", ""]
    if not plots_ok:
        lines.append("- matplotlib is not installed: no figures (`pip install ait[report]`).")
    lines += [f"- {m}" for m in missing]
    for kind, used_by in (("transfer", "Table 5"), ("variation", "Figure 5"), ("tsne", "Figure 6")):
        lacking = [r for r in runs if getattr(r, kind) is None]
        if lacking and len(lacking) < len(runs):
            lines.append(
                f"- eval/{kind}.json is missing in {len(lacking)} of {len(runs)} runs; {used_by} uses the others only."
            )
    for g in groups:
        for r in g.repeats:
            first = next(k for k in g.runs if k.seed == r.seed)
            lines.append(
                f"- `{display_path(r.path)}` repeats the configuration and seed {r.seed} of "
                f"`{display_path(first.path)}`: counted once (a repeat is not another seed)."
            )
    for r in runs:
        lines += [f"- {note}" for note in r.notes]
    for d, why in skipped:
        lines.append(f"- Skipped `{display_path(d)}`: {why}")
    for d in incomplete:
        lines.append(f"- Unfinished run `{display_path(d)}` (no summary.json yet): not included.")
    if len(lines) == 2:
        lines.append("Nothing: every run had every file the report reads.")
    return "\n".join(lines) + "\n"


__all__ = ["build_report", "ReportError"]
