"""PNG figures of the report (matplotlib, no pyplot: no global state, no display needed)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from ait.report.groups import Group, Stat
from ait.report.outputs import FIGURE_COMMENT
from ait.runtime.files import atomic_write

LAYER_ORDER = ("feature_map", "feature", "logits")
LAYER_NAMES = {"feature_map": "feature map\n(before pooling)", "feature": "pooled feature", "logits": "logits"}
METRIC_NAMES = {
    "kl": "KL",
    "euclidean": "Euclidean",
    "kl+euclidean": "KL + Euclidean",
    "mse": "MSE",
    "kl+mse": "KL + MSE",
}
TEST_SET_SHORT = {"original": "ori", "crop": "rp", "gray": "rg", "color": "rc"}


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # late: matplotlib is an optional dependency

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _wrap(text: str, width: int = 70) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The comment lets the next report tell its own figures from a user's (ait.report.build.is_own_figure).
    atomic_write(path, lambda f: fig.savefig(f, format="png", metadata={"Comment": FIGURE_COMMENT}))
    return path


def accuracy_curves(group: Group, path: Path) -> Path | None:
    """Test top-1 against epoch for every run (seed) and network of a group."""
    from matplotlib.ticker import MaxNLocator

    fig = _figure(7, 4.2)
    ax = fig.add_subplot()
    lines = 0
    keys = group.network_keys
    styles = {key: style for key, style in zip(keys, ("-", "--", "-.", (0, (5, 1)), (0, (1, 1))))}
    styles["ensemble"] = ":"
    for i, run in enumerate(group.runs):
        for key in keys:
            points = [
                (r["epoch"], r["test"][key]["top1"])
                for r in run.metrics
                if isinstance(r.get("test"), dict)
                and isinstance(r["test"].get(key), dict)
                and "top1" in r["test"][key]
                and "epoch" in r
            ]
            if not points:
                continue
            label = f"seed {run.seed}" + (f" · {key}" if len(keys) > 1 else "")
            # Colour per seed, line style per network: seeds and networks stay apart.
            ax.plot(
                *zip(*points), linestyle=styles.get(key, "-"), color=f"C{i % 10}", marker="o", markersize=3, label=label
            )
            lines += 1
    if not lines:
        return None
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(_wrap(group.label), fontsize=10)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test top-1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2 if lines > 12 else 1, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def lambda_sweep(lines: list[tuple[str, list[tuple[float, Stat]]]], path: Path) -> Path:
    """Figure 4: final top-1 against the loss weight, one line per dataset (error bars: std)."""
    fig = _figure(7, 4.5)
    ax = fig.add_subplot()
    for label, points in lines:
        points = sorted(points)
        xs = [w for w, _ in points]
        ys = [s.mean for _, s in points]
        errs = [s.std or 0.0 for _, s in points]
        ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=4, label=label)
        for x, y, (_, stat) in zip(xs, ys, points):
            ax.annotate(f"n={stat.n}", (x, y), textcoords="offset points", xytext=(4, -11), fontsize=7)
    ax.set_xticks(sorted({w for _, points in lines for w, _ in points}))
    ax.set_title(
        "Figure 4: AIT final top-1 vs consistency weight λ\n(mean ± std over seeds; λ = 0: no AiLoss)", fontsize=10
    )
    ax.set_xlabel("consistency weight λ")
    ax.set_ylabel("final test top-1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def ablation_bars(cells: dict[tuple[str, str], Stat], baseline: Stat | None, title: str, path: Path) -> Path:
    """Figure 3: grouped bars, x = the layer the loss applies to, one bar per metric."""
    layers = [ly for ly in LAYER_ORDER if any(k[0] == ly for k in cells)] + sorted(
        {k[0] for k in cells} - set(LAYER_ORDER)
    )
    metrics = sorted({k[1] for k in cells}, key=lambda m: (list(METRIC_NAMES).index(m) if m in METRIC_NAMES else 9, m))
    fig = _figure(7.5, 4.5)
    ax = fig.add_subplot()
    width = 0.8 / max(len(metrics), 1)
    for j, metric in enumerate(metrics):
        xs, ys, errs = [], [], []
        for i, layer in enumerate(layers):
            stat = cells.get((layer, metric))
            if stat and stat.values:
                xs.append(i + (j - (len(metrics) - 1) / 2) * width)
                ys.append(stat.mean)
                errs.append(stat.std or 0.0)
        bars = ax.bar(xs, ys, width * 0.95, yerr=errs, capsize=3, label=METRIC_NAMES.get(metric, metric))
        ax.bar_label(bars, labels=[f"{y:.1f}" for y in ys], fontsize=7, padding=2)
    values = [s.mean for s in cells.values() if s.values]
    if baseline is not None and baseline.values:
        values.append(baseline.mean)
        ax.axhline(
            baseline.mean,
            color="black",
            linestyle=":",
            linewidth=1.5,
            label=f"baseline, no AiLoss ({baseline.mean:.2f})",
        )
    ax.set_xticks(range(len(layers)), [LAYER_NAMES.get(ly, ly) for ly in layers])
    ax.set_xlabel("layer the consistency loss applies to")
    ylabel = "final test top-1 (%)"
    low = min(values) if values else 0.0
    if low > 20:  # differences of a point or two vanish on a 0-100 axis; the cut is said on the axis
        ax.set_ylim(bottom=5 * int((low - 5) // 5))
        ylabel += ", axis cut"
    ax.set_ylabel(ylabel)
    ax.set_title(_wrap(title), fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.margins(y=0.12)
    ax.legend(fontsize=8, title="metric", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def variation_bars(series: list[tuple[str, Group]], pairs: list[str], title: str, path: Path) -> Path:
    """Figure 5: KL of predictions and L2 of features between test sets, one bar per model."""
    fig = _figure(10, 4.2)
    axes = fig.subplots(1, 2)
    width = 0.8 / max(len(series), 1)
    ticks = [",".join(TEST_SET_SHORT.get(p, p) for p in pair.split(",")) for pair in pairs]
    for ax, metric, name in zip(
        axes, ("kl", "feature_l2"), ("KL divergence of predictions", "Euclidean distance of features")
    ):
        for j, (label, group) in enumerate(series):
            stats = [group.variation_stat(pair, metric) for pair in pairs]
            xs = [i + (j - (len(series) - 1) / 2) * width for i, s in enumerate(stats) if s.values]
            ys = [s.mean for s in stats if s.values]
            errs = [s.std or 0.0 for s in stats if s.values]
            ax.bar(xs, ys, width * 0.95, yerr=errs, capsize=3, label=label)
        ax.set_xticks(range(len(pairs)), ticks, rotation=30, ha="right")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("test-set pair (ori = original, rp = crop, rg = gray, rc = colour)", fontsize=8)
        ax.set_ylabel(name.split(" of ")[0])
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(_wrap(title, 110), fontsize=10)
    return _save(fig, path)


def corruption_severity(series: list[tuple[str, Group]], severities: list[str], title: str, path: Path) -> Path:
    """Top-1 averaged over the corruptions against severity, one line per configuration."""
    fig = _figure(6.5, 4.2)
    ax = fig.subplots()
    for label, group in series:
        stats = [group.corruption_stat(severity=s) for s in severities]
        xs = [int(s) for s, st in zip(severities, stats) if st.values]
        ax.errorbar(
            xs,
            [st.mean for st in stats if st.values],
            yerr=[st.std or 0.0 for st in stats if st.values],
            marker="o",
            capsize=3,
            label=label,
        )
    ax.set_xticks([int(s) for s in severities])
    ax.set_xlabel("corruption severity")
    ax.set_ylabel("top-1 (%), mean over corruptions")
    ax.set_title(_wrap(title, 80), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def tsne_panels(panels: list[tuple[str, dict[str, Any]]], path: Path) -> Path:
    """Figure 6: t-SNE of features, one panel per model; colour = the source sample."""
    from matplotlib import colormaps

    fig = _figure(5 * len(panels), 5)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    cmap = colormaps["tab20"]
    for ax, (title, data) in zip(axes, panels):
        points = data.get("points") or []
        samples = data.get("sample") or [0] * len(points)
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        ids = sorted(set(samples))
        # tab20 pairs a dark and a light shade of each hue: all dark ones first, then the light.
        order = list(range(0, 20, 2)) + list(range(1, 20, 2))
        colours = [cmap(order[ids.index(s) % 20]) for s in samples]
        ax.scatter(xs, ys, c=colours, s=22, alpha=0.85, edgecolors="none")
        ax.set_title(_wrap(title, 50), fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
    n_samples = len(set(panels[0][1].get("sample") or []))
    fig.suptitle(
        f"Figure 6: t-SNE of features; colour = source sample ({n_samples} samples, "
        f"{panels[0][1].get('num_variants', '?')} variants each)",
        fontsize=10,
    )
    return _save(fig, path)
