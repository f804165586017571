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
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ait import strategies

LAYERS = ("feature_map", "feature", "logits")
DATASETS = ("cifar10", "cifar100", "fashion_mnist", "npz", "synthetic", "imagefolder")


class ConfigError(ValueError):
    """A config file or override that does not describe a valid run."""

    exit_status = 2  # `ait` ends with this status and a one-line message (ait.cli.run_handler)


@dataclass
class DataConfig:
    dataset: str = "cifar10"  # one of DATASETS
    root: str | None = None  # dataset folder (cifar*, fashion_mnist; imagefolder: holds train/ and val/)
    train_file: str | None = None  # npz: training arrays
    test_file: str | None = None  # npz: test arrays
    download: bool = False  # cifar: fetch the official archive when the folder is absent
    label_noise: float = 0.0  # fraction of training labels replaced by random classes (Table 3)
    train_fraction: float = 1.0  # stratified fraction of the training set kept (Table 4)
    train_limit: int | None = None  # keep only the first N training samples (imagefolder: N evenly spaced ones)
    test_limit: int | None = None  # evaluate on the first N test samples only (imagefolder: N evenly spaced)
    synthetic_size: int = 512  # synthetic: number of training samples (tests and smoke runs)
    # imagefolder only (ImageNet layout root/{train,val}/<class>/<image>; views are strategy.views "rrc"):
    image_size: int = 224  # side of the training views and of the evaluation centre crop
    eval_resize: int | None = None  # shorter side before the centre crop; None = image_size * 256 / 224
    workers: int = 8  # DataLoader processes decoding images (per rank); 0 decodes in the training process
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
class ConsistencyConfig:
    weight: float = 1.0  # lambda; the paper uses 1 for AIT and 3 for multi-AIT
    layer: str = "logits"  # one of LAYERS (paper sec. 4.2.1)
    metric: str = "kl"  # one of ait.losses.METRICS
    detach_target: bool = True  # stop-gradient on each KL direction's target, as the authors' code
    temperature: float = 1.0


@dataclass
class OptimConfig:
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float | None = None  # None: per architecture, 5e-4 for wide ResNets, else 1e-4
    schedule: str = "step"  # "step" (the paper's) or "cosine"
    milestones: list[int] = field(default_factory=lambda: [80, 120])  # epochs, for "step"
    gamma: float = 0.1
    warmup_epochs: float = 0.0  # linear warm-up from lr / 10, in epochs


@dataclass
class TrainConfig:
    epochs: int = 160
    batch_size: int = 128  # images per network per step (AIT: batch_size / views samples per step)
    eval_every: int = 1  # evaluate on the test set every k epochs (and always after the last)
    eval_batch_size: int = 500
    precision: str = "auto"  # "auto" (bf16 where it helps), "bf16", "fp32"
    channels_last: bool | None = None  # None: on where it helps (CPU and CUDA convolutions)
    device: str = "auto"  # "auto" (cuda if available, else cpu), "cpu", "cuda", "cuda:1"
    num_threads: int | None = None  # torch CPU threads; None = torch's default
    compile: bool = False  # torch.compile the training forward passes (GPUs; it did not help on CPUs)
    max_steps_per_epoch: int | None = None  # cut epochs short (smoke tests)
    progress: str = "auto"  # "bar", "plain" (one line per epoch, for logs), "none", "auto"
    checkpoint: bool = True  # save the whole training state at the end of each epoch
    checkpoint_every_steps: int | None = None  # also save every N steps (long epochs, preemptible jobs)
    max_nonfinite_skips: int = 0  # steps with a NaN/inf loss that may be skipped before the run fails
    sync_batchnorm: bool = False  # distributed: BatchNorm statistics over the global batch
    dist_timeout_s: float = 1800.0  # distributed: a collective waiting longer than this fails the run


@dataclass
class Config:
    name: str = "run"
    seed: int = 0
    out_dir: str = "runs"  # run directories are created under it
    data: DataConfig = field(default_factory=DataConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    consistency: ConsistencyConfig = field(default_factory=ConsistencyConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> Config:
        """Check values that types alone do not; raises ConfigError naming the key."""
        _check_data(self.data)
        _check_strategy(self.strategy, self.data.dataset == "imagefolder")
        _check_training(self.consistency, self.optim, self.train, self.strategy)
        return self


def _choice(key: str, value: Any, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, allowed))}")


def _check(key: str, ok: bool, expected: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key}: expected {expected}, got {value!r}")


def _check_data(d: DataConfig) -> None:
    _choice("data.dataset", d.dataset, DATASETS)
    _check("data.label_noise", 0.0 <= d.label_noise <= 1.0, "a fraction in [0, 1]", d.label_noise)
    _check("data.train_fraction", 0.0 < d.train_fraction <= 1.0, "a fraction in (0, 1]", d.train_fraction)
    if d.dataset == "npz":
        _check("data.train_file", bool(d.train_file), "a path to an .npz file", d.train_file)
        _check("data.test_file", bool(d.test_file), "a path to an .npz file", d.test_file)
    if d.dataset == "imagefolder":
        layout = "the folder holding train/<class>/<images> and val/<class>/<images> (e.g. data/imagenet)"
        _check("data.root", bool(d.root), layout, d.root)
        _check("data.image_size", d.image_size >= 8, "an integer >= 8 (pixels)", d.image_size)
        _check(
            "data.eval_resize",
            d.eval_resize is None or d.eval_resize >= d.image_size,
            f"null or an integer >= data.image_size ({d.image_size})",
            d.eval_resize,
        )
        _check("data.workers", d.workers >= 0, "an integer >= 0", d.workers)


def _check_strategy(s: StrategyConfig, streamed: bool) -> None:
    """The strategy's name, networks and views, and whether they fit each other and the data."""
    from ait import models  # late: keep `import ait.config` light (models import torch)

    _choice("strategy.name", s.name, strategies.names())
    for i, name in enumerate(s.networks):
        _choice(f"strategy.networks[{i}]", name, models.available())
    for i, name in enumerate(s.views):
        _check_view(f"strategy.views[{i}]", name, streamed)
    n, v = len(s.networks), len(s.views)
    entry = s.definition
    _check("strategy", entry.accepts(n, v), f"{entry.shape} for {s.name!r}", {"networks": s.networks, "views": s.views})


def _check_view(key: str, name: str, streamed: bool) -> None:
    """A view recipe: made on the device from in-memory data, or by the image-folder loader."""
    from ait import views  # late: views import torch

    if streamed and name not in views.LOADER_RECIPES:
        raise ConfigError(
            f"{key}: {name!r} is not a view of data.dataset=imagefolder, whose "
            f"views are made by its loader: use {', '.join(map(repr, views.LOADER_RECIPES))} "
            "(RandomResizedCrop + flip), e.g. strategy.views=[rrc, rrc] for AIT"
        )
    if not streamed and name in views.LOADER_RECIPES:
        raise ConfigError(
            f"{key}: {name!r} (RandomResizedCrop + flip) is made by the "
            "image-folder loader, so it needs data.dataset=imagefolder; in-memory datasets use "
            "the batch recipes (rh, rp, rg, rc, rpg, ...)"
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
    _check("consistency.weight", c.weight >= 0, "a number >= 0", c.weight)
    _check("consistency.temperature", c.temperature > 0, "a number > 0", c.temperature)
    _check("optim.lr", o.lr > 0, "a number > 0", o.lr)
    _choice("optim.schedule", o.schedule, ("step", "cosine"))
    _check("optim.milestones", list(o.milestones) == sorted(o.milestones), "increasing epochs", o.milestones)
    _check("optim.weight_decay", o.weight_decay is None or o.weight_decay >= 0, "null or >= 0", o.weight_decay)
    _check("train.epochs", t.epochs >= 1, "an integer >= 1", t.epochs)
    _check("train.batch_size", t.batch_size >= 1, "an integer >= 1", t.batch_size)
    per_network = s.definition.views_per_network(len(s.networks), len(s.views))
    _check(
        "train.batch_size",
        t.batch_size % per_network == 0,
        f"a multiple of the number of views ({per_network}): all views of a sample share a step",
        t.batch_size,
    )
    _check("train.eval_every", t.eval_every >= 1, "an integer >= 1", t.eval_every)
    _check(
        "train.checkpoint_every_steps",
        t.checkpoint_every_steps is None or t.checkpoint_every_steps >= 1,
        "null or an integer >= 1",
        t.checkpoint_every_steps,
    )
    _check("train.max_nonfinite_skips", t.max_nonfinite_skips >= 0, "an integer >= 0", t.max_nonfinite_skips)
    _choice("train.precision", t.precision, ("auto", "bf16", "fp32"))
    _choice("train.progress", t.progress, ("auto", "bar", "plain", "none"))


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
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
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
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise _unknown_key(prefix, str(key), names)
        kwargs[key] = _coerce(f"{prefix}.{key}" if prefix else key, value, hints[key])
    return cls(**kwargs)


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
            if not dataclasses.is_dataclass(cls):
                raise ConfigError(f"override {override!r}: {'.'.join(parts[: depth + 1])} has no sub-keys")
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {override!r}: {'.'.join(parts[: depth + 1])} is not a mapping")


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
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
            raise ConfigError(f"{source}: {err}") from None
        raise


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


def _resolved_or_raw(data: dict[str, Any]) -> dict[str, Any]:
    try:
        return config_from_dict(_deep_copy(data)).to_dict()
    except ConfigError:  # not valid under the current schema: compare what was written
        return data


# Keys that may change when a run is resumed: they do not change what is computed.
RESUME_MAY_CHANGE = (
    "out_dir",
    "data.workers",
    "train.progress",
    "train.num_threads",
    "train.eval_batch_size",
    "train.checkpoint_every_steps",
    "train.max_nonfinite_skips",
    "train.dist_timeout_s",
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


def dump_yaml(config: Config) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
