"""Blend the person layer over the background layer with the soft alpha."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["blend"]

U8 = NDArray[np.uint8]


def blend(fg: U8, bg: U8, alpha: U8, out: U8 | None = None) -> U8:
    """``out = (fg * a + bg * (255 - a)) / 255`` in uint8, per pixel.

    ``alpha`` is uint8 HxW, 255 = person. Where alpha is 255 the result is
    exactly ``fg`` and where it is 0 exactly ``bg``: OpenCV's saturating
    multiply with scale 1/255 rounds ``x*255/255`` back to ``x``.
    """
    a3 = cv2.cvtColor(alpha, cv2.COLOR_GRAY2BGR)
    f = cv2.multiply(fg, a3, scale=1.0 / 255.0)
    b = cv2.multiply(bg, cv2.bitwise_not(a3), scale=1.0 / 255.0)
    return cv2.add(f, b, dst=out)
