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


def pytest_collection_modifyitems(config, items) -> None:
    """Mark every test skipped without a GPU as ``cuda`` (``@pytest.mark.skipif(not
    torch.cuda.is_available(), reason="needs CUDA")``, or an explicit ``@pytest.mark.cuda``), so
    that ``pytest -m cuda`` -- scripts/gpu_check.sh on a GPU machine -- runs all of them."""
    for item in items:
        reasons = [str(m.kwargs.get("reason", "")) for m in item.iter_markers(name="skipif")]
        if any("cuda" in r.lower() or "gpu" in r.lower() for r in reasons):
            item.add_marker(pytest.mark.cuda)
