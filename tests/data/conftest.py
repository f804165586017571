"""Fixtures for the ait.data tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_testutils import SHARED_DATA


@pytest.fixture
def shared_data() -> Path:
    """<repo>/../shared/data (real CIFAR .npz files); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    return SHARED_DATA
