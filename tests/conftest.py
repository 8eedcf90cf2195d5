"""Shared fixtures: synthetic frames and a model-free segmenter (from :mod:`blurcam.testing`).

Tests never need ``../shared``; those that use it skip with a reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from blurcam.testing import FakeSegmenter, synthetic_frame

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.slow`` tests (long soak, long fuzz, SIGKILL drills) run only on request:
    ``pytest -m slow`` or ``BLURCAM_SLOW=1``."""
    if "slow" in (config.getoption("-m") or "") or os.environ.get("BLURCAM_SLOW"):
        return
    skip = pytest.mark.skip(reason="slow: opt in with -m slow or BLURCAM_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def frame() -> NDArray[np.uint8]:
    return synthetic_frame()


@pytest.fixture
def fake_segmenter() -> FakeSegmenter:
    return FakeSegmenter()


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not present (evaluation data and reference models)")
    return SHARED
