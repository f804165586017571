"""Grouping runs that differ only in their seed, and what a group knows of itself (labels, statistics)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ait import strategies
from ait.config import DATA_PATH_KEYS, RESUME_MAY_CHANGE, ModelOptions, flatten
from ait.report.records import RunRecord

# Config keys that say where or how a run was run or shown, not what it computed: runs differing
# only here (and in seed/name) are repeats of one configuration. RESUME_MAY_CHANGE is the engine's
# own list of such keys (out_dir, progress, threads, ...).
IGNORED_KEYS = ("seed", "name", "data.root", "data.download", "train.checkpoint", *RESUME_MAY_CHANGE)
# With pool_devices: the keys that say where a run ran (its device, where its data files lie), left
# out of the grouping; the data is matched by its fingerprint (env.json) instead of its paths.
MACHINE_KEYS = ("train.device", *(f"data.{k}" for k in DATA_PATH_KEYS))
# Keys a baseline and an AIT run may differ in and still be "the same experiment otherwise".
COMPARISON_FREE_KEYS = ("strategy.name", "strategy.views", "consistency", "train.epochs", "train.eval_every")
DEFAULT_LAYER, DEFAULT_METRIC = "logits", "kl"


@dataclass
class Stat:
    """Mean and sample standard deviation over seeds (std is None for a single run); ``seeds``, when
    known, gives each value's seed (what pairs two groups' runs, :mod:`ait.report.stats`)."""

    values: list[float]
    seeds: list[int] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if self.n >= 2 else None

    def fmt(self, with_n: bool = True) -> str:
        """``"71.48 ± 0.23 (n=3)"``; ``"71.48 ± – (n=1)"``; ``"–"`` without values."""
        if not self.values:
            return "–"
        std = "–" if self.std is None else f"{self.std:.2f}"
        return f"{self.mean:.2f} ± {std}" + (f" (n={self.n})" if with_n else "")


def _get(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _without(config: dict[str, Any], dotted_keys: Iterable[str]) -> dict[str, Any]:
    data = json.loads(json.dumps(config))
    for dotted in dotted_keys:
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(last, None)
    return data


# Datasets whose data.root is the data itself (which folder), not where a named dataset lies.
ROOT_NAMES_THE_DATA = ("hf", "imagefolder")


def ignored_keys(config: dict[str, Any]) -> tuple[str, ...]:
    """IGNORED_KEYS, but for data.root where the folder is what names the data (ROOT_NAMES_THE_DATA)."""
    if _get(config, "data.dataset") in ROOT_NAMES_THE_DATA:
        return tuple(k for k in IGNORED_KEYS if k != "data.root")
    return IGNORED_KEYS


def group_key(config: dict[str, Any], also_ignored: tuple[str, ...] = (), data: Any = None) -> str:
    """A stable id of a configuration: the resolved config minus its ignored keys (and
    ``also_ignored``), with ``data`` (a fingerprint) where the data is named that way, hashed."""
    kept = _without(config, (*ignored_keys(config), *also_ignored))
    text = json.dumps(kept if data is None else {"config": kept, "data": data}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def data_fingerprint(run: RunRecord) -> Any:
    """The fingerprint of the data a run trained on (env.json), None when it recorded none."""
    return ((run.env or {}).get("fingerprints") or {}).get("data")


def pooled_key(run: RunRecord) -> str:
    """:func:`group_key` without the machine's keys (MACHINE_KEYS), the data named by the fingerprint
    its run recorded; a run without one keeps its paths (equal data cannot be shown)."""
    fingerprint = data_fingerprint(run)
    if not fingerprint:
        return group_key(run.config)
    return group_key(run.config, MACHINE_KEYS, fingerprint)


def device_of(run: RunRecord) -> str:
    """ "cpu", "cuda", ...: the kind of device a run trained on (summary.json), "?" if unrecorded."""
    return str(run.summary.get("device") or "?").split(":")[0]


def dataset_label(config: dict[str, Any]) -> str:
    data = config.get("data", {})
    name = data.get("dataset", "?")
    if name == "npz" and data.get("train_file"):
        train = Path(str(data["train_file"]))
        name = f"{train.parent.name}/{train.stem}" if train.parent.name else train.stem
    elif name in ROOT_NAMES_THE_DATA and data.get("root"):
        name = f"{name}:{Path(str(data['root'])).name}"
    elif name == "synthetic":
        name = f"synthetic ({data.get('synthetic_size')})"
    if data.get("train_limit"):
        name += f" (first {data['train_limit']})"
    return name


def percent(fraction: float) -> str:
    return f"{100 * fraction:g}%"


@dataclass(eq=False)  # identity: groups are used as dict keys
class Group:
    """Runs of one configuration (all seeds)."""

    key: str
    runs: list[RunRecord]
    label: str = ""
    # Runs of the same config and seed as a run kept in ``runs``: not an independent sample, so
    # they are left out of the mean and std (and named in the report).
    repeats: list[RunRecord] = field(default_factory=list)

    @property
    def config(self) -> dict[str, Any]:
        return self.runs[0].config

    def get(self, dotted: str) -> Any:
        return _get(self.config, dotted)

    @property
    def strategy(self) -> str:
        return str(self.get("strategy.name"))

    @property
    def networks(self) -> list[str]:
        return list(self.get("strategy.networks") or [])

    @property
    def views(self) -> list[str]:
        return list(self.get("strategy.views") or [])

    @property
    def recipe(self) -> str:
        """``"rp"`` when every view uses the same recipe, else ``"rp,rg"`` (the paper's notation)."""
        views = self.views
        return views[0] if views and len(set(views)) == 1 else ",".join(views)

    @property
    def weight(self) -> float:
        return float(self.get("consistency.weight") or 0.0)

    @property
    def noise(self) -> float:
        return float(self.get("data.label_noise") or 0.0)

    @property
    def fraction(self) -> float:
        return float(self.get("data.train_fraction") or 1.0)

    @property
    def epochs(self) -> int:
        return int(self.get("train.epochs"))

    @property
    def total_steps(self) -> int | None:
        steps = [r.summary.get("total_steps") for r in self.runs if r.summary.get("total_steps") is not None]
        return max(set(steps), key=steps.count) if steps else None

    @property
    def dataset(self) -> str:
        return dataset_label(self.config)

    @property
    def default_consistency(self) -> bool:
        return self.get("consistency.layer") == DEFAULT_LAYER and self.get("consistency.metric") == DEFAULT_METRIC

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.runs]

    @property
    def network_keys(self) -> list[str]:
        keys = [n["key"] for n in self.runs[0].summary["networks"]]
        return keys + (["ensemble"] if self.runs[0].summary.get("ensemble") else [])

    def context(self, networks: list[str] | None = None) -> str:
        """What must match for two groups to be compared (everything but strategy, views,
        consistency and epochs); step milestones count as fractions of the run's epochs."""
        data = _without(self.config, ignored_keys(self.config) + COMPARISON_FREE_KEYS)
        if networks is not None:
            data["strategy"]["networks"] = networks
        optim = data.get("optim", {})
        if optim.get("schedule") == "step":
            # Milestones as fractions of the run, and only those reached: a compute-fair baseline
            # with twice the epochs and scaled milestones follows the same schedule.
            epochs = self.epochs or 1
            optim["milestones"] = [round(m / epochs, 6) for m in optim.get("milestones") or [] if m < epochs]
        else:  # unused by other schedules
            optim.pop("milestones", None)
            optim.pop("gamma", None)
        return json.dumps(data, sort_keys=True)

    def stat(self, net_key: str = "net0", field_name: str = "final_top1") -> Stat:
        values, seeds = [], []
        for run in self.runs:
            net = run.network(net_key)
            if net and isinstance(net.get(field_name), (int, float)):
                values.append(float(net[field_name]))
                seeds.append(run.seed)
        return Stat(values, seeds)

    def wall_minutes(self) -> Stat:
        """Wall time of each run in minutes (summary.json ``wall_seconds``, summed over resumes)."""
        return Stat(
            [
                float(r.summary["wall_seconds"]) / 60
                for r in self.runs
                if isinstance(r.summary.get("wall_seconds"), (int, float))
            ]
        )

    def eval_runs(self, kind: str) -> list[RunRecord]:
        return [r for r in self.runs if getattr(r, kind) is not None]

    def transfer_stat(self, test_set: str, net_key: str = "net0", metric: str = "top1") -> Stat:
        values = []
        for run in self.eval_runs("transfer"):
            cell = run.transfer.get("networks", {}).get(net_key, {}).get(test_set, {})
            if isinstance(cell.get(metric), (int, float)):
                values.append(float(cell[metric]))
        return Stat(values)

    def variation_stat(self, pair: str, metric: str, net_key: str = "net0") -> Stat:
        values = []
        for run in self.eval_runs("variation"):
            cell = run.variation.get("networks", {}).get(net_key, {}).get(pair, {})
            if isinstance(cell.get(metric), (int, float)):
                values.append(float(cell[metric]))
        return Stat(values)

    def corruption_stat(
        self,
        corruption: str | None = None,
        severity: str | None = None,
        net_key: str = "net0",
        family: Sequence[str] | None = None,
    ) -> Stat:
        """Top-1 under corruption per run, averaged over the corruptions (one, or a ``family`` of
        them) and severities selected (None: all of them), then mean +- std over the runs that have
        eval/corruptions.json."""
        values = []
        for run in self.eval_runs("corruptions"):
            table = run.corruptions.get("networks", {}).get(net_key, {})
            cells = [
                acc
                for name, by_severity in table.items()
                if corruption in (None, name) and (family is None or name in family)
                for sev, acc in by_severity.items()
                if severity in (None, str(sev))
            ]
            if cells:
                values.append(statistics.fmean(cells))
        return Stat(values)

    def mce_stat(self, net_key: str = "net0") -> Stat:
        values = []
        for run in self.eval_runs("corruptions"):
            mce = (run.corruptions.get("mce") or {}).get(net_key)
            if isinstance(mce, (int, float)):
                values.append(float(mce))
        return Stat(values)

    def sort_key(self) -> tuple:
        return (
            self.dataset,
            strategy_order(self.strategy),
            self.networks,
            self.recipe,
            self.noise,
            -self.fraction,
            self.weight,
            str(self.get("consistency.layer")),
            str(self.get("consistency.metric")),
            self.epochs,
            self.label,
        )


def strategy_order(name: str) -> int:
    """The position of a strategy in :data:`ait.strategies.STRATEGIES` (unknown names last)."""
    order = strategies.names()
    return order.index(name) if name in order else len(order)


def has_consistency(config: dict[str, Any]) -> bool:
    """Whether the run's strategy takes a consistency loss (unknown strategies: assume it does)."""
    entry = strategies.STRATEGIES.get(str(_get(config, "strategy.name")))
    if entry is None:
        return True
    networks, views = len(_get(config, "strategy.networks") or []), len(_get(config, "strategy.views") or [])
    return entry.accepts(networks, views) and entry.compares_branches(networks, views)


def base_label(config: dict[str, Any]) -> str:
    strategy = str(_get(config, "strategy.name"))
    entry = strategies.STRATEGIES.get(strategy)
    head = entry.label if entry else strategy
    consistency = has_consistency(config)
    if consistency:
        head += f" λ={float(_get(config, 'consistency.weight') or 0):g}"
    parts = [
        head,
        "+".join(_get(config, "strategy.networks") or []),
        ",".join(_get(config, "strategy.views") or []),
        dataset_label(config),
    ]
    if _get(config, "data.label_noise"):
        parts.append(f"noise {percent(_get(config, 'data.label_noise'))}")
    if (_get(config, "data.train_fraction") or 1.0) < 1.0:
        parts.append(f"{percent(_get(config, 'data.train_fraction'))} data")
    layer, metric = _get(config, "consistency.layer"), _get(config, "consistency.metric")
    if consistency and (layer, metric) != (DEFAULT_LAYER, DEFAULT_METRIC):
        parts.append(f"{layer}/{metric}")
    parts.append(f"{_get(config, 'train.epochs')} ep")
    return " · ".join(parts)


def evaluation_count(run: RunRecord) -> int:
    """How many of the evaluations the report reads (eval/*.json) a run holds."""
    return sum(getattr(run, kind) is not None for kind in ("transfer", "variation", "tsne", "corruptions"))


def group_runs(runs: list[RunRecord], pool_devices: bool = False) -> list[Group]:
    """Group runs by configuration; each group gets a readable, unique label. A seed run twice
    counts once: the run with the most evaluations is kept. pool_devices: runs that differ only in
    where they ran (:func:`pooled_key`) are one configuration, their devices named in the label
    when they differ."""
    by_key: dict[str, list[RunRecord]] = {}
    for run in runs:
        by_key.setdefault(pooled_key(run) if pool_devices else group_key(run.config), []).append(run)
    groups = []
    for key, rs in by_key.items():
        kept: dict[int, RunRecord] = {}
        repeats = []
        for r in sorted(rs, key=lambda r: (r.seed, -evaluation_count(r), str(r.path))):  # the most evaluated kept
            if r.seed in kept:
                repeats.append(r)
            else:
                kept[r.seed] = r
        groups.append(Group(key, list(kept.values()), repeats=repeats))
    for g in groups:
        g.label = base_label(g.config)
        devices = sorted({device_of(r) for r in g.runs})
        if pool_devices and len(devices) > 1:
            counts = ", ".join(f"{d} {sum(device_of(r) == d for r in g.runs)}" for d in devices)
            g.label += f" · pooled: {counts}"
    # Same label, different configs: name the keys that tell them apart.
    by_label: dict[str, list[Group]] = {}
    for g in groups:
        by_label.setdefault(g.label, []).append(g)
    for same in by_label.values():
        if len(same) < 2:
            continue
        seen = [_distinguishing(g, pool_devices) for g in same]
        flats = [f for f, _ in seen]
        keys = sorted({k for f in flats for k in f if any(f.get(k) != o.get(k) for o in flats)})
        for g, (f, hidden) in zip(same, seen):  # a key hidden in a group (its machine's, when pooled) is not shown
            g.label += " · " + ", ".join(f"{k}={f.get(k)}" for k in keys if k not in hidden)
    groups.sort(key=Group.sort_key)
    return groups


def _distinguishing(g: Group, pool_devices: bool) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The flat config of ``g`` that may tell its label from another's, and the keys it hides. Each
    network's model options are filled with their defaults (an absent entry is the default one).
    Pooled by fingerprint, a group's machine keys say nothing (they vary inside it): its data
    fingerprint stands for them."""
    fingerprint = data_fingerprint(g.runs[0]) if pool_devices else None
    hidden = MACHINE_KEYS if fingerprint else ()
    flat = flatten(_without(_with_model_defaults(g.config), (*ignored_keys(g.config), *hidden)))
    if pool_devices:
        text = json.dumps(fingerprint, sort_keys=True)
        flat["data fingerprint"] = hashlib.sha1(text.encode()).hexdigest()[:8] if fingerprint else "none"
    return flat, hidden


def _with_model_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with ``models.NAME`` of every network in ``strategy.networks`` at its defaults
    where the config leaves it (or a key of it) out."""
    defaults = dataclasses.asdict(ModelOptions())
    models = dict(config.get("models") or {})
    for name in _get(config, "strategy.networks") or []:
        models[name] = {**defaults, **(models.get(name) or {})}
    return {**config, "models": models}


def slug(text: str, key: str, limit: int = 60) -> str:
    """A file-name-safe, unique stem for a group's plot."""
    safe = re.sub(r"[^A-Za-z0-9.=+-]+", "_", text.replace("λ", "lambda")).strip("_")[:limit]
    return f"{safe}_{hashlib.sha1(key.encode()).hexdigest()[:6]}"


def display_path(path: Path) -> str:
    """A run directory as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
