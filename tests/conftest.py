"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

import ait_testutils  # noqa: F401  (registers the tiny test network)
from ait_testutils import SHARED_DATA


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real CIFAR subsets not found at {SHARED_DATA}")
    return SHARED_DATA
