"""Every number of the report's tables as data: one row per run, network and metric, with the run's
config keys as columns, written as CSV (``ait report --csv DIR``) or JSON (``--json DIR``)::

    import pandas as pd
    table = pd.read_csv("reports/data/results.csv")  # after: ait report runs/ --csv reports/data
    table.query("metric == 'final_top1'").groupby("strategy.name")["value"].mean()

Metrics: ``final_top1``, ``final_top5``, ``best_top1`` and, with ``data.val_fraction``,
``final_val_top1`` (summary.json); ``train_seconds`` and ``images_per_s`` (network ``all``);
``transfer/<test set>/top1`` and ``/top5`` (eval/transfer.json); ``variation/<pair>/kl`` and
``/feature_l2``; ``corruption/<name>/<severity>`` top-1, ``corruption/mean_top1``,
``corruption/mce`` and, against published errors, ``corruption/mce_alexnet`` (eval/corruptions.json).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ait.config import flatten
from ait.report.outputs import check_folder, check_replaceable, make_folder, read_text
from ait.report.records import RunRecord
from ait.runtime.files import write_text_atomic

COLUMNS = ("run_dir", "name", "seed", "network", "metric", "value")


def config_columns(config: dict[str, Any]) -> dict[str, Any]:
    """The config as {"optim.lr": 0.1, "strategy.networks": "resnet20", ...}: a column per key, lists joined by "+"."""
    return {k: "+".join(map(str, v)) if isinstance(v, list) else v for k, v in flatten(config).items()}


def run_metrics(run: RunRecord) -> list[tuple[str, str, float]]:
    """(network, metric, value) of every number the run's files hold."""
    rows: list[tuple[str, str, float]] = []
    networks = list(run.summary.get("networks", []))
    if run.summary.get("ensemble"):
        networks.append({**run.summary["ensemble"], "key": "ensemble"})
    for net in networks:
        rows += [
            (net["key"], m, float(net[m]))
            for m in ("final_top1", "final_top5", "best_top1", "final_val_top1")
            if net.get(m) is not None
        ]
    rows += [
        ("all", m, float(run.summary[m])) for m in ("train_seconds", "images_per_s") if run.summary.get(m) is not None
    ]
    for key, sets in (run.transfer or {}).get("networks", {}).items():
        rows += [(key, f"transfer/{s}/{m}", float(v)) for s, values in sets.items() for m, v in values.items()]
    for key, pairs in (run.variation or {}).get("networks", {}).items():
        rows += [(key, f"variation/{p}/{m}", float(v)) for p, values in pairs.items() for m, v in values.items()]
    corruptions = run.corruptions or {}
    for key, names in corruptions.get("networks", {}).items():
        rows += [(key, f"corruption/{c}/{s}", float(v)) for c, by in names.items() for s, v in by.items()]
    for summary in ("mean_top1", "mce"):
        rows += [(key, f"corruption/{summary}", float(v)) for key, v in (corruptions.get(summary) or {}).items()]
    reference = corruptions.get("mce_reference") or {}  # mCE against published errors (AlexNet's, ...)
    rows += [(key, f"corruption/mce_{reference['name']}", float(v)) for key, v in reference.get("mce", {}).items()]
    return rows


def long_rows(runs: list[RunRecord]) -> list[dict[str, Any]]:
    """One dict per run, network and metric: COLUMNS, then the run's config keys."""
    rows = []
    for run in sorted(runs, key=lambda r: str(r.path)):
        config = config_columns(run.config)
        for network, metric, value in run_metrics(run):
            base = {"run_dir": str(run.path), "name": run.summary.get("name"), "seed": run.seed}
            rows.append({**base, "network": network, "metric": metric, "value": value, **config})
    return rows


def write_csv(rows: list[dict[str, Any]], folder: Path) -> Path:
    """folder/results.csv: COLUMNS first, then every config key any run has (empty where a run has none)."""
    keys = list(COLUMNS) + sorted({k for row in rows for k in row} - set(COLUMNS))
    text = io.StringIO()
    writer = csv.DictWriter(text, keys)
    writer.writeheader()
    writer.writerows(rows)
    path = table_path(make_folder(folder), "results.csv")
    write_text_atomic(path, text.getvalue())
    return path


def write_json_rows(rows: list[dict[str, Any]], folder: Path) -> Path:
    """folder/results.json: the same rows as a JSON list of records (``pandas.read_json(orient="records")``)."""
    path = table_path(make_folder(folder), "results.json")
    write_text_atomic(path, json.dumps(rows, indent=1))
    return path


def table_path(folder: str | Path, name: str) -> Path:
    """folder/name (results.csv or results.json), where it may be written: ReportError when ``folder``
    is not a folder or the file there is not one ait wrote."""
    return check_replaceable(check_folder(folder) / name, is_own_csv if name.endswith(".csv") else is_own_json)


def is_own_csv(path: Path) -> bool:
    """Whether ``path`` is a results.csv ait wrote, to be replaced: its header starts with COLUMNS."""
    first = (read_text(path) or "").split("\n", 1)[0]  # ait's header has no quoted line breaks
    try:
        header = next(csv.reader([first]), [])
    except csv.Error:
        return False
    return tuple(header[: len(COLUMNS)]) == COLUMNS


def is_own_json(path: Path) -> bool:
    """Whether ``path`` is a results.json ait wrote, to be replaced: a list of records, each with COLUMNS."""
    try:
        rows = json.loads(read_text(path) or "")
    except json.JSONDecodeError:
        return False
    own = isinstance(rows, list) and bool(rows)  # ait writes no empty table: a report needs a finished run
    return own and all(isinstance(r, dict) and set(COLUMNS) <= r.keys() for r in rows)
