"""Argument types shared by the ``ait`` commands' parsers (argparse names the option in its error)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from ait.config import SEED_MAX


def _checked(text: str, parse: Callable[[str], Any], ok: Callable[[Any], bool], expected: str) -> Any:
    """``parse(text)`` when it parses and ``ok`` holds; else argparse's error saying ``expected``."""
    try:
        value = parse(text)
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1, for counts and sizes (``--epochs``, ``--jobs``, ``--top-k``, ...)."""
    return _checked(text, int, lambda v: v >= 1, "an integer >= 1")


def count_int(text: str) -> int:
    """An integer >= 0 (``--gpus-per-run``: 0 for none)."""
    return _checked(text, int, lambda v: v >= 0, "an integer >= 0")


def positive_seconds(text: str) -> float:
    """A finite number of seconds > 0 (``--budget-s``: nan would turn the budget off, silently)."""
    return _checked(text, float, lambda v: math.isfinite(v) and v > 0, "a finite number of seconds > 0")


def seed_int(text: str) -> int:
    """A seed as the config takes one (``seed``): an integer in [0, 2**63 - 1]."""
    return _checked(text, int, lambda v: 0 <= v <= SEED_MAX, f"an integer in [0, {SEED_MAX}]")


class CommandParser(argparse.ArgumentParser):
    """argparse with a one-line error (the command, the option and what was expected; exit status
    2) instead of the usage block before it; ``--help`` still prints the usage. Subcommands made by
    ``add_subparsers`` are of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
