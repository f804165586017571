"""Argument types shared by the ``ait`` commands' parsers (argparse names the option in its error)."""

from __future__ import annotations

import argparse
import math

from ait.config import SEED_MAX


def positive_int(text: str) -> int:
    """An integer >= 1, for counts and sizes (``--epochs``, ``--jobs``, ``--top-k``, ...)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def count_int(text: str) -> int:
    """An integer >= 0 (``--gpus-per-run``: 0 for none)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """A finite number of seconds > 0 (``--budget-s``: nan would turn the budget off, silently)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds > 0, got {text!r}")
    return value


def seed_int(text: str) -> int:
    """A seed as the config takes one (``seed``): an integer in [0, 2**63 - 1]."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, {SEED_MAX}], got {text!r}")
    return value


class CommandParser(argparse.ArgumentParser):
    """argparse with a one-line error (the command, the option and what was expected; exit status
    2) instead of the usage block before it; ``--help`` still prints the usage. Subcommands made by
    ``add_subparsers`` are of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
