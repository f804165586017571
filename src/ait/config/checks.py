"""What config values mean together, beyond each key's type and range: the checks of
:meth:`ait.config.Config.validate`, and the names each key allows."""

from __future__ import annotations

import re
import typing
from typing import Any

from ait import callbacks, strategies
from ait.config.errors import ConfigError, UnknownModelError

if typing.TYPE_CHECKING:
    from ait.config.schema import (
        Config,
        ConsistencyConfig,
        DataConfig,
        ModelOptions,
        OptimConfig,
        StrategyConfig,
        TrainConfig,
    )

LAYERS = ("feature_map", "feature", "logits")
DATASETS = ("cifar10", "cifar100", "fashion_mnist", "npz", "hf", "synthetic", "imagefolder")
OPTIMIZERS = ("sgd", "adamw")
DEVICE_PATTERN = r"auto|cpu|mps|cuda(:\d+)?"
DEVICE_TEXT = "auto, cpu, cuda, cuda:N (a GPU index) or mps"


def check_config(config: Config) -> None:
    """Check values that types alone do not; raises ConfigError naming the key."""
    _check(
        "name",
        stays_inside(config.name),
        "a name inside out_dir (the run lives in out_dir/<name>/seed<k>)",
        config.name,
    )
    _check_data(config.data)
    _check_strategy(config.strategy, config.data.dataset == "imagefolder")
    s = config.strategy
    _check_models(config.models, s.networks, s.definition.views_per_network(len(s.networks), len(s.views)))
    _check_training(config.consistency, config.optim, config.train, config.strategy)
    _check(
        "train.sync_batchnorm",
        not (config.train.sync_batchnorm and any(o.split_bn for o in config.models.values())),
        "false with models.NAME.split_bn (SyncBatchNorm's conversion would make each split BatchNorm one "
        "shared by all views)",
        True,
    )


def stays_inside(name: str) -> bool:
    """Whether ``out_dir/<name>`` is a folder inside ``out_dir``: not empty, not absolute, no ``..``
    part (``exp/a`` is; ``../x``, ``/abs`` and ``.`` are not)."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    return bool(parts) and not name.startswith(("/", "\\")) and ".." not in parts


def _choice(key: str, value: Any, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, allowed))}")


def _check(key: str, ok: bool, expected: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key}: expected {expected}, got {value!r}")


def _check_data(d: DataConfig) -> None:
    """What the data keys mean together (each numeric key's own range is checked as it is read)."""
    _choice("data.dataset", d.dataset, DATASETS)
    if d.dataset == "npz":
        _check("data.train_file", bool(d.train_file), "a path to an .npz file", d.train_file)
        _check("data.test_file", bool(d.test_file), "a path to an .npz file", d.test_file)
    _check(
        "data.val_fraction",
        d.val_fraction == 0 or d.dataset != "imagefolder",
        "0 for data.dataset=imagefolder (its val/ folder is the test set; a split of train/ is not there yet)",
        d.val_fraction,
    )
    if d.dataset == "hf":
        _check_hf(d)
    if d.dataset == "imagefolder":
        layout = "the folder holding train/<class>/<images> and val/<class>/<images> (e.g. data/imagenet)"
        _check("data.root", bool(d.root), layout, d.root)
        _check(
            "data.eval_resize",
            d.eval_resize is None or d.eval_resize >= d.image_size,
            f"null or an integer >= data.image_size ({d.image_size})",
            d.eval_resize,
        )


def _check_hf(d: DataConfig) -> None:
    """The keys of a Hugging Face dataset: a folder, two different splits, named columns."""
    layout = "a folder written by DatasetDict.save_to_disk, or a folder of parquet files"
    _check("data.root", bool(d.root), layout, d.root)
    for key in ("train_split", "test_split", "label_column"):
        _check(f"data.{key}", bool(getattr(d, key)), "a non-empty name", getattr(d, key))
    _check("data.image_column", d.image_column is None or bool(d.image_column), "null or a column name", d.image_column)
    _check(
        "data.test_split",
        d.test_split != d.train_split,
        f"a split other than data.train_split ({d.train_split!r}): a run is not tested on its training data",
        d.test_split,
    )
    _check(
        "data.label_column",
        d.label_column != d.image_column,
        "a column other than data.image_column",
        d.label_column,
    )


def _check_strategy(s: StrategyConfig, streamed: bool) -> None:
    """The strategy's name, networks and views, and whether they fit each other and the data."""
    from ait import models  # late: keep `import ait.config` light (models import torch)

    _choice("strategy.name", s.name, strategies.names())
    for i, name in enumerate(s.networks):
        try:
            models.check_name(name)
        except models.ModelError as err:
            raise UnknownModelError(f"strategy.networks[{i}]: {err}", name) from None
    for i, name in enumerate(s.views):
        _check_view(f"strategy.views[{i}]", name, streamed)
    n, v = len(s.networks), len(s.views)
    entry = s.definition
    _check("strategy", entry.accepts(n, v), f"{entry.shape} for {s.name!r}", {"networks": s.networks, "views": s.views})


def _check_models(options: dict[str, ModelOptions], networks: list[str], views_per_network: int = 1) -> None:
    """Options name networks of the run, and fit the kind of model they name."""
    from ait.models import specs, weights  # late: models import torch

    for name, o in options.items():
        key = f"models.{name}"
        _check(key, name in networks, f"a name of strategy.networks ({', '.join(networks)})", name)
        kind = specs.parse(name).kind
        if o.pretrained and kind != "timm":
            raise ConfigError(f"{key}.pretrained: only timm:NAME models have pretrained weights; give {key}.weights")
        if o.weights is not None and not o.weights.endswith(weights.SUFFIXES):
            raise ConfigError(f"{key}.weights: expected a {', '.join(weights.SUFFIXES)} file, got {o.weights!r}")
        _check(f"{key}.replace_head", o.weights is not None or not o.replace_head, f"{key}.weights with it", True)
        _check(
            f"{key}.split_bn",
            not o.split_bn or views_per_network >= 2,
            "false for a strategy that shows a network one view of a sample (it splits a batch by view)",
            True,
        )


def _check_view(key: str, name: str, streamed: bool) -> None:
    """A view recipe: made on the device from in-memory data, or by the image-folder loader."""
    from ait import views  # late: views import torch

    if streamed and name not in views.LOADER_RECIPES:
        raise ConfigError(
            f"{key}: {name!r} is not a view of data.dataset=imagefolder, whose "
            f"views are made by its loader: use {', '.join(map(repr, views.LOADER_RECIPES))} "
            "(RandomResizedCrop + flip), e.g. strategy.views=[rrc, rrc] for AIT"
        )
    if not streamed:
        try:
            views.parse_recipe(name)
        except ValueError as err:
            raise ConfigError(f"{key}: {err}") from None


def _check_training(c: ConsistencyConfig, o: OptimConfig, t: TrainConfig, s: StrategyConfig) -> None:
    """Loss, optimiser and loop settings; ``s`` has passed :func:`_check_strategy`."""
    from ait import losses  # late: losses import torch

    _choice("consistency.layer", c.layer, LAYERS)
    _choice("consistency.metric", c.metric, losses.METRICS)
    _choice("optim.name", o.name, OPTIMIZERS)
    _check("optim.betas", len(o.betas) == 2, "two numbers [beta1, beta2]", o.betas)
    _choice("optim.schedule", o.schedule, ("step", "cosine", "onecycle"))
    _check(
        "optim.nesterov",
        not o.nesterov or (o.name == "sgd" and o.momentum > 0),
        "false unless optim.name is sgd with optim.momentum > 0 (Nesterov's step needs a momentum)",
        o.nesterov,
    )
    _check("optim.milestones", list(o.milestones) == sorted(o.milestones), "increasing epochs", o.milestones)
    # Longer, and the learning rate would never reach optim.lr: a typo, not a schedule.
    _check("optim.warmup_epochs", o.warmup_epochs <= t.epochs, f"at most train.epochs ({t.epochs})", o.warmup_epochs)
    per_network = s.definition.views_per_network(len(s.networks), len(s.views))
    _check(
        "train.batch_size",
        t.batch_size % per_network == 0,
        f"a multiple of the number of views ({per_network}): all views of a sample share a step",
        t.batch_size,
    )
    _choice("train.precision", t.precision, ("auto", "bf16", "fp32"))
    for i, name in enumerate(t.loggers):
        try:
            callbacks.check(name)
        except ValueError as err:
            raise ConfigError(f"train.loggers[{i}]: {err}") from None
    _choice("train.progress", t.progress, ("auto", "bar", "plain", "none"))
    _check(
        "train.cuda_graphs",
        not (t.cuda_graphs and t.compile),
        "false with train.compile (a graph captures the eager step; compile's own is mode reduce-overhead)",
        t.cuda_graphs,
    )
    _check("train.device", re.fullmatch(DEVICE_PATTERN, t.device) is not None, DEVICE_TEXT, t.device)
