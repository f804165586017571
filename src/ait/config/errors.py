"""The errors of a config that does not describe a valid run."""

from __future__ import annotations

import yaml


class ConfigError(ValueError):
    """A config file or override that does not describe a valid run."""

    exit_status = 2  # `ait` ends with this status and a one-line message (ait.cli.run_handler)


class InvalidYAMLError(ConfigError, yaml.YAMLError):
    """Text that is not valid YAML, or a mapping that gives a key twice, in one line naming where.

    A yaml.YAMLError too, so that code catching PyYAML's errors catches it unchanged."""


class UnknownModelError(ConfigError):
    """A network name that cannot be built in this process (``model``: the name); a run directory's
    reader adds which plugin module the run recorded for it."""

    def __init__(self, message: str, model: str):
        super().__init__(message)
        self.model = model
