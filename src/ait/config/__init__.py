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

Where each part lives (each imports only those below it):

- :mod:`ait.config.resume`: the keys a resumed run may change, two configs' differences, a fingerprint.
- :mod:`ait.config.loading`: plain data (a YAML file, ``--set`` overrides) into a Config, strictly.
- :mod:`ait.config.paths`: the data paths, resolved against ``$AIT_DATA``; the run directory's layout.
- :mod:`ait.config.schema`: the dataclasses, their defaults and each numeric key's range.
- :mod:`ait.config.checks`: what values mean together (``Config.validate``), and the names allowed.
- :mod:`ait.config.errors`: ConfigError, which every command turns into exit status 2.

Everything a user or another module needs is imported from ``ait.config`` itself.
"""

from ait.config.checks import DATASETS, DEVICE_PATTERN, DEVICE_TEXT, LAYERS, OPTIMIZERS, stays_inside
from ait.config.errors import ConfigError, InvalidYAMLError, UnknownModelError
from ait.config.loading import (
    add_override_option,
    apply_override,
    config_from_dict,
    dump_yaml,
    flatten,
    load_config,
    parse_yaml,
    read_yaml,
)
from ait.config.paths import (
    DATA_PATH_KEYS,
    DATA_ROOT_VARIABLE,
    data_paths_written,
    resolve_data_path,
    resolve_data_paths,
    run_dir_under,
)
from ait.config.resume import RESUME_MAY_CHANGE, config_differences, config_fingerprint
from ait.config.schema import (
    SEED_MAX,
    Config,
    ConsistencyConfig,
    DataConfig,
    ModelOptions,
    OptimConfig,
    Range,
    StrategyConfig,
    TrainConfig,
    ranged,
)

__all__ = [
    "DATASETS",
    "DATA_PATH_KEYS",
    "DATA_ROOT_VARIABLE",
    "DEVICE_PATTERN",
    "DEVICE_TEXT",
    "LAYERS",
    "OPTIMIZERS",
    "RESUME_MAY_CHANGE",
    "SEED_MAX",
    "Config",
    "ConfigError",
    "ConsistencyConfig",
    "DataConfig",
    "ModelOptions",
    "OptimConfig",
    "Range",
    "StrategyConfig",
    "TrainConfig",
    "InvalidYAMLError",
    "UnknownModelError",
    "add_override_option",
    "apply_override",
    "config_differences",
    "config_fingerprint",
    "config_from_dict",
    "data_paths_written",
    "dump_yaml",
    "flatten",
    "load_config",
    "ranged",
    "parse_yaml",
    "read_yaml",
    "resolve_data_path",
    "resolve_data_paths",
    "run_dir_under",
    "stays_inside",
]
