"""The Markdown tables ``ait eval`` prints for each run (the JSON files hold the same numbers)."""

from __future__ import annotations

from typing import Any

from ait.evaluate.loading import LoadedRun


def network_label(run: LoadedRun, key: str) -> str:
    """ "net1 (resnet32)" for a network key of the results, "ensemble" for the ensemble."""
    if key == "ensemble":
        return "ensemble"
    return f"{key} ({run.config.strategy.networks[int(key[3:])]})"


def _row(first: str, cells: list[str]) -> str:
    return f"| {first} | " + " | ".join(cells) + " |"


def accuracy_markdown(run: LoadedRun, accuracy: dict[str, Any]) -> str:
    """Top-1 / top-5 per network on the test set (the content of accuracy.json)."""
    lines = ["| network | top-1 (%) | top-5 (%) |", "|---|---:|---:|"]
    for key, row in accuracy["networks"].items():
        lines.append(_row(network_label(run, key), [f"{row['top1']:.2f}", f"{row['top5']:.2f}"]))
    return "\n".join(lines)


def transfer_markdown(run: LoadedRun, transfer: dict[str, Any]) -> str:
    """Top-1 / top-5 per network (rows) and fixed test set (columns): paper Table 5."""
    sets = transfer["test_sets"]
    lines = [
        f"top-1 / top-5 (%) on fixed test sets (seed {transfer['seed']})",
        "",
        _row("network", sets),
        "|---|" + "---:|" * len(sets),
    ]
    for key, row in transfer["networks"].items():
        lines.append(_row(network_label(run, key), [f"{row[s]['top1']:.2f} / {row[s]['top5']:.2f}" for s in sets]))
    return "\n".join(lines)


def variation_markdown(variation: dict[str, Any]) -> str:
    """KL and feature distance per pair of test sets (rows) and network: paper Figure 5."""
    nets = list(variation["networks"])
    lines = [
        "variation between test sets: mean symmetric KL of predictions, mean L2 distance of pooled features",
        "",
        _row("pair", [f"{k} KL | {k} feature L2" for k in nets]),
        "|---|" + "---:|---:|" * len(nets),
    ]
    for pair in variation["pairs"]:
        cells = [
            f"{variation['networks'][k][pair]['kl']:.4f} | {variation['networks'][k][pair]['feature_l2']:.4f}"
            for k in nets
        ]
        lines.append(_row(pair, cells))
    return "\n".join(lines)


def corruptions_markdown(run: LoadedRun, summary: dict[str, Any]) -> str:
    """Mean top-1 over the severities per corruption (rows) and network (columns), then the means and mCE."""
    nets = list(summary["networks"])
    source = "local generation" if summary["source"] == "local" else f"official files in {summary['source']}"
    sev = ",".join(str(s) for s in summary["severities"])
    lines = [
        f"top-1 (%) under common corruptions, mean over severities {sev} ({source}, seed {summary['seed']})",
        "",
        _row("corruption", [network_label(run, k) for k in nets]),
        "|---|" + "---:|" * len(nets),
    ]
    for name in summary["corruptions"]:
        cells = []
        for k in nets:
            values = list(summary["networks"][k][name].values())
            cells.append(f"{sum(values) / len(values):.2f}")
        lines.append(_row(name, cells))
    lines.append(_row("mean", [f"{summary['mean_top1'][k]:.2f}" for k in nets]))
    if summary["mce"] is not None:
        lines.append(_row(f"mCE (%) vs {summary['baseline']}", [f"{summary['mce'][k]:.2f}" for k in nets]))
    reference = summary.get("mce_reference")  # absent in files written before it existed
    if reference is not None:
        lines.append(_row(f"mCE (%) vs {reference['name']}", [f"{reference['mce'][k]:.2f}" for k in nets]))
    return "\n".join(lines)
