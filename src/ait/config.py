"""Typed run configuration: YAML files, dotted overrides, validation.

A config is a tree of dataclasses. Every key a user writes is checked: a misspelt key is an error
that suggests the closest valid one, a value of the wrong type names the key and the expected type.

    >>> from ait.config import load_config
    >>> cfg = load_config("configs/cpu/cifar10_resnet20_ait.yaml", overrides=["consistency.weight=3"])
    >>> cfg.consistency.weight, cfg.strategy.branches()
    (3.0, [(0, 0), (0, 1)])
    >>> cfg.to_dict()["train"]["epochs"]  # plain data, as saved to the run's config.yaml
    15

The strategy is data, not code: ``strategy.name`` picks an entry of :mod:`ait.strategies`, which
says how networks and views pair up into branches; :meth:`StrategyConfig.branches` lists them.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ait import callbacks, strategies

LAYERS = ("feature_map", "feature", "logits")
DATASETS = ("cifar10", "cifar100", "fashion_mnist", "npz", "hf", "synthetic", "imagefolder")


class ConfigError(ValueError):
    """A config file or override that does not describe a valid run."""

    exit_status = 2  # `ait` ends with this status and a one-line message (ait.cli.run_handler)


class UnknownModelError(ConfigError):
    """A network name that cannot be built in this process (``model``: the name); a run directory's
    reader adds which plugin module the run recorded for it."""

    def __init__(self, message: str, model: str):
        super().__init__(message)
        self.model = model


@dataclass(frozen=True)
class Range:
    """The values a numeric key may take: always finite, within ``lo`` and ``hi`` (None: unbounded),
    each bound closed unless said open. Every int and float key of the schema declares one
    (:func:`ranged`); a value outside is refused at load time with the key named."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def holds(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return self.hi is None or (value < self.hi if self.hi_open else value <= self.hi)

    def describe(self, integer: bool) -> str:
        """ "an integer >= 1", "a number in [0, 1)", ... as error messages say it."""
        kind = "an integer" if integer else "a finite number"
        lo, hi = _number_text(self.lo), _number_text(self.hi)
        if self.lo is not None and self.hi is not None:
            return f"{kind} in {'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{kind} {'>' if self.lo_open else '>='} {lo}"
        if self.hi is not None:
            return f"{kind} {'<' if self.hi_open else '<='} {hi}"
        return kind


def _number_text(x: float | None) -> str:
    return "" if x is None else str(int(x)) if float(x).is_integer() else f"{x:g}"


def ranged(default: Any = dataclasses.MISSING, lo=None, hi=None, *, lo_open=False, hi_open=False, factory=None):
    """A dataclass field whose value (each value, for a list) must lie in :class:`Range` (lo, hi)."""
    metadata = {"range": Range(lo, hi, lo_open, hi_open)}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


DEVICE_PATTERN = r"auto|cpu|mps|cuda(:\d+)?"
DEVICE_TEXT = "auto, cpu, cuda, cuda:N (a GPU index) or mps"
SEED_MAX = 2**63 - 1  # torch and numpy generators take 64-bit seeds; step seeds wrap below 2**63


@dataclass
class DataConfig:
    dataset: str = "cifar10"  # one of DATASETS
    root: str | None = None  # dataset folder (cifar*, fashion_mnist; imagefolder: holds train/ and val/; hf: see below)
    train_file: str | None = None  # npz: training arrays
    test_file: str | None = None  # npz: test arrays
    # hf only (root: a DatasetDict saved with save_to_disk, or a folder of parquet files; ait.data.hf):
    image_column: str | None = None  # the column of the images; None: the dataset's single Image column
    label_column: str = "label"  # the column of the integer labels (a ClassLabel's names become the classes)
    train_split: str = "train"  # the split trained on
    test_split: str = "test"  # the split tested on (e.g. "validation")
    download: bool = False  # cifar: fetch the official archive when the folder is absent
    label_noise: float = ranged(0.0, 0, 1)  # fraction of training labels replaced by random classes (Table 3)
    train_fraction: float = ranged(1.0, 0, 1, lo_open=True)  # stratified fraction of the training set kept (Table 4)
    val_fraction: float = ranged(0.0, 0, 1, hi_open=True)  # class-balanced share of those held out as a validation set
    # Both limits warn when the samples kept leave out classes of the whole set (a file sorted by class).
    train_limit: int | None = ranged(None, 1)  # keep the first N training samples (imagefolder: N evenly spaced)
    test_limit: int | None = ranged(None, 1)  # evaluate on the first N test samples only (imagefolder: N evenly spaced)
    synthetic_size: int = ranged(512, 1, 1_000_000)  # synthetic: number of training samples (tests and smoke runs)
    # imagefolder only (ImageNet layout root/{train,val}/<class>/<image>; views are strategy.views "rrc"):
    image_size: int = ranged(224, 8, 4096)  # side of the training views and of the evaluation centre crop
    eval_resize: int | None = ranged(None, 8, 8192)  # shorter side before the centre crop; None: image_size / 0.875
    workers: int = ranged(8, 0, 256)  # DataLoader processes decoding images (per rank); 0: in the training process
    skip_corrupt: bool = False  # a file that fails to decode is replaced by the next one instead of failing
    verify_images: bool = False  # decode every file once before training; with skip_corrupt drop bad ones


@dataclass
class StrategyConfig:
    name: str = "ait"  # a name of ait.strategies.STRATEGIES
    networks: list[str] = field(default_factory=lambda: ["resnet32"])  # model names, one per network
    views: list[str] = field(default_factory=lambda: ["rp", "rp"])  # recipe names, one per view

    @property
    def definition(self) -> strategies.Strategy:
        """This strategy's entry in :mod:`ait.strategies` (the name must be valid)."""
        return strategies.get(self.name)

    def branches(self) -> list[tuple[int, int]]:
        """(network index, view index) pairs trained each step."""
        return self.definition.branches(len(self.networks), len(self.views))

    def samples_per_step(self, batch_size: int) -> int:
        """Samples drawn per step when every network sees ``batch_size`` images per step."""
        return self.definition.samples_per_step(batch_size, len(self.networks), len(self.views))


@dataclass
class ModelOptions:
    """How one architecture of ``strategy.networks`` is built and first initialised (``models: {NAME: ...}``)."""

    # Its factory's keyword arguments (timm: drop_path_rate, img_size; torchvision: image_size).
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None  # initial weights: a .safetensors / .pt state dict (a published checkpoint, ...)
    replace_head: bool = False  # with weights: a classifier head of another class count keeps its fresh init
    pretrained: bool = False  # timm: its pretrained weights, from the local Hugging Face cache only
    split_bn: bool = False  # a BatchNorm per view in training, the first view's in evaluation (AugMix's)


@dataclass
class ConsistencyConfig:
    weight: float = ranged(1.0, 0)  # lambda; the paper uses 1 for AIT and 3 for multi-AIT
    layer: str = "logits"  # one of LAYERS (paper sec. 4.2.1)
    metric: str = "kl"  # one of ait.losses.METRICS
    detach_target: bool = True  # stop-gradient on each KL direction's target, as the authors' code
    temperature: float = ranged(1.0, 0, lo_open=True)


OPTIMIZERS = ("sgd", "adamw")


@dataclass
class OptimConfig:
    name: str = "sgd"  # one of OPTIMIZERS: "sgd" (the paper's) or "adamw" (modern recipes: ViTs, ConvNeXts)
    lr: float = ranged(0.1, 0, lo_open=True)
    momentum: float = ranged(0.9, 0, 1, hi_open=True)  # sgd
    betas: list[float] = ranged(lo=0, hi=1, hi_open=True, factory=lambda: [0.9, 0.999])  # adamw
    nesterov: bool = False
    weight_decay: float | None = ranged(None, 0)  # None: sgd 5e-4 for wide ResNets, else 1e-4; adamw 0.05
    schedule: str = "step"  # "step" (the paper's), "cosine", or "onecycle" (OneCycleLR's curve; no warm-up key)
    milestones: list[int] = ranged(lo=0, factory=lambda: [80, 120])  # epochs, for "step"
    gamma: float = ranged(0.1, 0, 1, lo_open=True)
    warmup_epochs: float = ranged(0.0, 0)  # linear warm-up from lr / 10, in epochs


@dataclass
class TrainConfig:
    epochs: int = ranged(160, 1)
    batch_size: int = ranged(128, 1)  # images per network per step (AIT: batch_size / views samples per step)
    eval_every: int = ranged(1, 1)  # evaluate on the test set every k epochs (and always after the last)
    eval_batch_size: int = ranged(500, 1)
    precision: str = "auto"  # "auto" (bf16 where it helps), "bf16", "fp32"
    channels_last: bool | None = None  # None: on where it helps (CPU and CUDA convolutions)
    device: str = "auto"  # "auto" (cuda if available, else cpu), "cpu", "cuda", "cuda:1"
    num_threads: int | None = ranged(None, 1, 1024)  # torch CPU threads; None = torch's default
    compile: bool = False  # torch.compile the training forward passes (GPUs; it did not help on CPUs)
    cuda_graphs: bool = False  # capture the whole step once in a CUDA graph and replay it (one CUDA device)
    max_steps_per_epoch: int | None = ranged(None, 1)  # cut epochs short (smoke tests)
    progress: str = "auto"  # "bar", "plain" (one line per epoch, for logs), "none", "auto"
    checkpoint: bool = True  # save the whole training state at the end of each epoch
    checkpoint_every_steps: int | None = ranged(None, 1)  # also save every N steps (long epochs, preemptible jobs)
    max_nonfinite_skips: int = ranged(0, 0)  # steps with a NaN/inf loss that may be skipped before the run fails
    label_smoothing: float = ranged(0.0, 0, 1, hi_open=True)  # of the training cross-entropy; 0: the paper's
    loggers: list[str] = field(default_factory=list)  # csv, tensorboard, mlflow, wandb (ait.callbacks), or yours
    log_every: int = ranged(50, 1)  # per-step scalars of the loggers every N global steps
    sync_batchnorm: bool = False  # distributed: BatchNorm statistics over the global batch
    dist_timeout_s: float = ranged(1800.0, 0, lo_open=True)  # distributed: a collective waiting longer fails the run


@dataclass
class Config:
    name: str = "run"
    seed: int = ranged(0, 0, SEED_MAX)
    out_dir: str = "runs"  # run directories are created under it
    data: DataConfig = field(default_factory=DataConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    models: dict[str, ModelOptions] = field(default_factory=dict)  # per name of strategy.networks (optional)
    consistency: ConsistencyConfig = field(default_factory=ConsistencyConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> Config:
        """Check values that types alone do not; raises ConfigError naming the key."""
        _check_data(self.data)
        _check_strategy(self.strategy, self.data.dataset == "imagefolder")
        s = self.strategy
        _check_models(self.models, s.networks, s.definition.views_per_network(len(s.networks), len(s.views)))
        _check_training(self.consistency, self.optim, self.train, self.strategy)
        return self


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


# ----------------------------------------------------------------------------------------------
# Building a Config from plain data, strictly.


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(key: str, value: Any, tp: Any) -> Any:
    """Check ``value`` against the annotation ``tp``, converting where it is lossless."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg)
            except ConfigError as err:
                errors.append(err)
        raise errors[0]
    if tp is Any:
        return _plain(key, value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {_string_key(key, k): _coerce(f"{key}.{k}", v, args[1]) for k, v in value.items()}
    if origin is list:
        if isinstance(value, str):  # "rp,rg" is the paper's way of writing a list of views
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        number = _number(value)
        if isinstance(number, int):
            return number
        if isinstance(number, float) and number.is_integer():
            return int(number)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        number = _number(value)
        if number is not None:
            return float(number)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            # YAML 1.1 reads unquoted on/off/yes/no as booleans; say so, since the user typed a word.
            raise ConfigError(
                f"{key}: expected a string, got {value!r} (YAML reads unquoted on/off/yes/no as "
                f"true/false; quote the word, e.g. {key}: 'off')"
            )
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported type {_type_name(tp)}")  # pragma: no cover


def _string_key(key: str, name: Any) -> str:
    if not isinstance(name, str):
        raise ConfigError(f"{key}: keys must be strings, got {name!r}")
    return name


def _plain(key: str, value: Any) -> Any:
    """``value`` when it is plain data (numbers, strings, booleans, null, lists and mappings of
    them), which a config can be saved as; ConfigError otherwise (YAML's dates, for one)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(f"{key}[{i}]", v) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {_string_key(key, k): _plain(f"{key}.{k}", v) for k, v in value.items()}
    raise ConfigError(f"{key}: expected plain data (numbers, strings, lists, mappings), got {value!r}")


def _number(value: Any) -> int | float | None:
    """``value`` as a Python number, or None. Strings count: YAML 1.1 reads 1e-3 and 5e-4 (no dot)
    as text, and a user who writes them means numbers; so do "1_000", ".5" and "+2"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        for parse in (int, float):
            try:
                return parse(text)
            except ValueError:
                continue
    return None


def _unknown_key(prefix: str, key: str, valid: list[str]) -> ConfigError:
    where = f"{prefix}.{key}" if prefix else key
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown config key {where!r}{hint} Valid keys here: {', '.join(valid)}")


def _from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise _unknown_key(prefix, str(key), list(fields))
        dotted = f"{prefix}.{key}" if prefix else key
        kwargs[key] = _coerce(dotted, value, hints[key])
        if "range" in fields[key].metadata:
            _check_range(dotted, kwargs[key], fields[key].metadata["range"], hints[key])
    return cls(**kwargs)


def _check_range(key: str, value: Any, valid: Range, tp: Any) -> None:
    """``value`` (each element of a list; None passes) within ``valid``, else ConfigError naming ``key``."""
    integer = tp is int or int in typing.get_args(tp)
    for i, v in enumerate(value) if isinstance(value, list) else [(None, value)]:
        if v is not None and not valid.holds(v):
            where = key if i is None else f"{key}[{i}]"
            optional = type(None) in typing.get_args(tp)
            raise ConfigError(f"{where}: expected {'null or ' if optional else ''}{valid.describe(integer)}, got {v!r}")


def config_from_dict(data: dict[str, Any]) -> Config:
    """A validated Config from plain data (as read from YAML); unknown keys are errors."""
    return _from_dict(Config, data).validate()


def apply_override(data: dict[str, Any], override: str) -> None:
    """Apply ``"a.b.c=value"`` in place; the value is parsed as YAML ("3" -> 3, "[1, 2]" -> list)."""
    if "=" not in override:
        raise ConfigError(f"override {override!r}: expected KEY=VALUE, e.g. consistency.weight=3")
    key, raw = override.split("=", 1)
    parts = key.strip().split(".")
    cls: Any = Config
    node = data
    for depth, part in enumerate(parts):
        if typing.get_origin(cls) is dict or cls is Any:  # a mapping's own key (a model name, a kwarg)
            hints = {part: typing.get_args(cls)[1] if cls is not Any else Any}
        else:
            hints = typing.get_type_hints(cls)
        if part not in hints:
            raise _unknown_key(".".join(parts[:depth]), part, list(hints))
        if depth == len(parts) - 1:
            try:
                node[part] = yaml.safe_load(raw) if raw.strip() else ""
            except yaml.YAMLError as err:
                raise ConfigError(f"override {override!r}: value is not valid YAML ({err})") from None
        else:
            cls = hints[part]
            if not (dataclasses.is_dataclass(cls) or typing.get_origin(cls) is dict or cls is Any):
                raise ConfigError(f"override {override!r}: {'.'.join(parts[: depth + 1])} has no sub-keys")
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {override!r}: {'.'.join(parts[: depth + 1])} is not a mapping")


def add_override_option(parser, help_text: str = "override a config value, e.g. --set consistency.weight=3") -> None:
    """The ``--set KEY=VALUE`` option (repeatable, into ``args.overrides``) of every command taking overrides."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=f"{help_text} (repeatable)"
    )


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping of a YAML config file; ConfigError naming the file for anything else."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; expected a YAML config file (e.g. configs/smoke/*.yaml)")
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (UTF-8); expected a YAML config file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror or err})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if data is None:
        raise ConfigError(
            f"{path}: holds no config keys (empty, or comments only); a config names at least its data, "
            "e.g. configs/smoke/synthetic_resnet20_ait.yaml"
        )
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return data


def load_config(source: str | Path | dict | Config | None = None, overrides: list[str] | tuple = ()) -> Config:
    """A validated Config from a YAML path, a dict, a Config or None (defaults), plus overrides."""
    if isinstance(source, Config):
        data = source.to_dict()
    elif isinstance(source, dict):
        data = dict(source)
    elif source is None:
        data = {}
    else:
        data = read_yaml(source)
    data = _deep_copy(data)
    for override in overrides:
        apply_override(data, override)
    try:
        return config_from_dict(data)
    except ConfigError as err:
        if isinstance(source, (str, Path)):
            err.args = (f"{source}: {err}",)  # the same error (an UnknownModelError stays one), placed
            raise err.with_traceback(None) from None
        raise


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


def _resolved_or_raw(data: dict[str, Any]) -> dict[str, Any]:
    try:
        return resolve_data_paths(config_from_dict(_deep_copy(data))).to_dict()
    except ConfigError:  # not valid under the current schema: compare what was written
        return data


# The data keys that name files or folders: a run resolves them when it starts (resolve_data_paths).
DATA_PATH_KEYS = ("root", "train_file", "test_file")
DATA_ROOT_VARIABLE = "AIT_DATA"


def resolve_data_path(path: str) -> str:
    """``path`` as an absolute path: ``~`` expanded, a relative path taken under ``$AIT_DATA`` when
    that is set and under the working directory otherwise (no symlink is followed)."""
    path = os.path.expanduser(path)
    if os.path.isabs(path):
        return os.path.normpath(path)
    return os.path.abspath(os.path.join(os.environ.get(DATA_ROOT_VARIABLE) or os.getcwd(), path))


def resolve_data_paths(config: Config) -> Config:
    """The config with every data path absolute (:func:`resolve_data_path`), so that its run can be
    evaluated and resumed from any folder, and a relative path and its absolute form are one run."""
    resolved = {k: resolve_data_path(v) for k in DATA_PATH_KEYS if (v := getattr(config.data, k))}
    return dataclasses.replace(config, data=dataclasses.replace(config.data, **resolved))


def data_paths_written(config: Config) -> dict[str, dict[str, str]]:
    """{"data.KEY": {"written": as in the config, "resolved": absolute}} for each data path: what
    env.json records of a run's paths."""
    return {
        f"data.{k}": {"written": v, "resolved": resolve_data_path(v)}
        for k in DATA_PATH_KEYS
        if (v := getattr(config.data, k))
    }


# Keys that may change when a run is resumed: they do not change what is computed.
RESUME_MAY_CHANGE = (
    "out_dir",
    "data.workers",
    "train.progress",
    "train.num_threads",
    "train.cuda_graphs",  # the same step, captured and replayed (ait.engine.graphs)
    "train.eval_batch_size",
    "train.checkpoint_every_steps",
    "train.max_nonfinite_skips",
    "train.dist_timeout_s",
    "train.loggers",
    "train.log_every",
)


def config_differences(a: dict[str, Any], b: dict[str, Any], ignore: tuple = ()) -> list[str]:
    """Dotted keys whose values differ between two plain config dicts, as "key: a -> b".

    Both sides are first resolved (defaults filled in), so a config saved before a key was added to
    the schema still matches a current config that leaves that key at its default.
    """
    a, b = _resolved_or_raw(a), _resolved_or_raw(b)
    out: list[str] = []

    def walk(x: Any, y: Any, prefix: str) -> None:
        if isinstance(x, dict) and isinstance(y, dict):
            for key in sorted(set(x) | set(y)):
                walk(x.get(key), y.get(key), f"{prefix}.{key}" if prefix else key)
        elif x != y and prefix not in ignore:
            out.append(f"{prefix}: {x!r} -> {y!r}")

    walk(a, b, "")
    return out


def config_fingerprint(config: Config) -> str:
    """A short hex digest of what the config computes: the resolved config without the keys a
    resumed run may change (RESUME_MAY_CHANGE). Recorded in env.json and every checkpoint."""
    data = config.to_dict()
    for dotted in RESUME_MAY_CHANGE:
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        node.pop(last, None)
    return hashlib.blake2b(json.dumps(data, sort_keys=True).encode(), digest_size=16).hexdigest()


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested plain data (a config as a dict) as {"optim.lr": 0.1, "models.timm:x.kwargs.img_size": 32, ...}:
    every mapping opened, every other value (lists too) left as it is."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def dump_yaml(config: Config) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
