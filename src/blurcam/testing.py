"""Model-free stand-ins for tests, yours and ours: a fake segmenter, a fake face detector and
the synthetic frames they understand.

A pipeline test with the real model needs the model's runtime and gives answers
that move with its version; these give exact, fast, known answers::

    from blurcam import BackgroundBlur
    from blurcam.testing import FakeSegmenter, disc_mask, synthetic_frame

    bb = BackgroundBlur(segmenter=FakeSegmenter())
    out = bb.process(synthetic_frame())
    assert (bb.last_alpha > 127).sum() > 0.9 * (disc_mask() > 127).sum()

:class:`FakeSegmenter` has the :class:`~blurcam.segment.Segmenter` shape;
:class:`FakeFaceDetector` the shape ``Stream(face_detector=...)`` takes.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
from numpy.typing import NDArray

from .face import Face
from .frame import F32, U8

__all__ = ["PERSON_BGR", "FakeFaceDetector", "FakeSegmenter", "disc_mask", "synthetic_frame"]

PERSON_BGR = (40, 90, 200)  # the flat colour of the synthetic "person"


def synthetic_frame(w: int = 320, h: int = 240, cx: float = 0.5, r: float = 0.3) -> U8:
    """A textured background (gradient + stripes) with a flat-coloured disc "person".

    The disc is centred at ``cx`` (fraction of the width) and half the height,
    with radius ``r`` times the shorter side; uint8 HxWx3 BGR.
    """
    x = np.linspace(0, 255, w, dtype=np.float32)
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    bg = np.empty((h, w, 3), np.uint8)
    bg[..., 0] = x[None, :] * 0.5 + y * 0.5
    bg[..., 1] = (((np.arange(w) // 8) % 2) * 200)[None, :]
    bg[..., 2] = 255 - x[None, :]
    cv2.circle(bg, (int(cx * w), h // 2), int(r * min(w, h)), PERSON_BGR, -1)
    return bg


def disc_mask(w: int = 320, h: int = 240, cx: float = 0.5, r: float = 0.3) -> U8:
    """The true mask (uint8 HxW, 255 = person) of :func:`synthetic_frame` with these arguments."""
    m = np.zeros((h, w), np.uint8)
    cv2.circle(m, (int(cx * w), h // 2), int(r * min(w, h)), 255, -1)
    return m


class FakeSegmenter:
    """Answers the true disc mask of :func:`synthetic_frame` (or any fixed mask), at 64x48.

    Without ``mask`` the person is every pixel of :data:`PERSON_BGR`'s colour,
    so it follows a disc that moves. With ``delay`` it sleeps per call, to
    drive runners with a slow model. ``calls`` counts the model runs.
    """

    name = "fake"
    input_size = (64, 48)

    def __init__(self, mask: NDArray[np.uint8] | None = None, delay: float = 0.0) -> None:
        self.mask = mask
        self.delay = delay
        self.calls = 0

    def __call__(self, frame: U8) -> F32:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        m = self.mask
        if m is None:
            near = np.abs(frame.astype(np.int16) - PERSON_BGR).sum(axis=2) < 30
            m = near.astype(np.uint8) * 255
        small = cv2.resize(m, self.input_size, interpolation=cv2.INTER_AREA)
        return (small.astype(np.float32) / 255.0).astype(np.float32)

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


class FakeFaceDetector:
    """Reports a fixed face ``box`` (x0, y0, x1, y1 in 0..1 of its input) on every frame,
    whatever the exposure (the real one normalises the gain first); with ``misses_below``
    it misses the face on frames darker than that mean. ``calls`` counts the runs."""

    def __init__(
        self, box: tuple[float, float, float, float], misses_below: float | None = None
    ) -> None:
        self.box = box
        self.misses_below = misses_below
        self.calls = 0

    def __call__(self, frame: U8) -> list[Face]:
        self.calls += 1
        dark = self.misses_below is not None and frame.mean() < self.misses_below
        return [] if dark else [Face(self.box, 0.9)]
