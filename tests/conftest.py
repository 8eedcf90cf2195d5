"""Shared fixtures: synthetic frames and a model-free segmenter.

Tests never need ``../shared``; those that use it skip with a reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

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


def synthetic_frame(
    w: int = 320, h: int = 240, cx: float = 0.5, r: float = 0.3
) -> NDArray[np.uint8]:
    """A textured background (gradient + stripes) with a flat-coloured disc 'person'."""
    x = np.linspace(0, 255, w, dtype=np.float32)
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    bg = np.empty((h, w, 3), np.uint8)
    bg[..., 0] = x[None, :] * 0.5 + y * 0.5
    bg[..., 1] = (((np.arange(w) // 8) % 2) * 200)[None, :]
    bg[..., 2] = 255 - x[None, :]
    cv2.circle(bg, (int(cx * w), h // 2), int(r * min(w, h)), (40, 90, 200), -1)
    return bg


def disc_mask(w: int = 320, h: int = 240, cx: float = 0.5, r: float = 0.3) -> NDArray[np.uint8]:
    m = np.zeros((h, w), np.uint8)
    cv2.circle(m, (int(cx * w), h // 2), int(r * min(w, h)), 255, -1)
    return m


class FakeSegmenter:
    """Answers the true disc mask of :func:`synthetic_frame` (or any fixed mask), at 64x48.

    With ``delay`` it sleeps per call, to drive runners with a slow model.
    """

    name = "fake"
    input_size = (64, 48)

    def __init__(self, mask: NDArray[np.uint8] | None = None, delay: float = 0.0) -> None:
        self.mask = mask
        self.delay = delay
        self.calls = 0

    def __call__(self, frame: NDArray[np.uint8]) -> NDArray[np.float32]:
        import time

        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        m = self.mask
        if m is None:
            # person = pixels of the disc colour
            m = (np.abs(frame.astype(np.int16) - (40, 90, 200)).sum(axis=2) < 30).astype(
                np.uint8
            ) * 255
        small = cv2.resize(m, self.input_size, interpolation=cv2.INTER_AREA)
        return (small.astype(np.float32) / 255.0).astype(np.float32)

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


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
