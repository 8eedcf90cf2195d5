"""Frame types and the one conversion every entry point shares.

``Frame`` is uint8 HxWx3 BGR (OpenCV's order), contiguous; ``Alpha`` is uint8
HxW, 255 = person; ``Prob`` is float32 HxW in 0..1 at model resolution.
:func:`as_bgr` brings whatever a caller hands in to a ``Frame``, so that
sources, sinks and the pipeline agree on one layout.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from .errors import SettingsError

__all__ = ["F32", "U8", "as_bgr"]

U8 = NDArray[np.uint8]
F32 = NDArray[np.float32]


def as_bgr(frame: NDArray[Any]) -> U8:
    """Any image array -> contiguous uint8 HxWx3 BGR.

    Accepts grayscale (HxW or HxWx1), BGRA, and 16-bit or float images, so
    that callers with odd inputs get a result instead of a crash.
    """
    a = np.asarray(frame)
    if a.ndim not in (2, 3) or a.size == 0:
        raise SettingsError(f"expected an HxW or HxWxC image, got shape {a.shape}")
    if a.dtype != np.uint8:
        if a.dtype == np.uint16:
            a = (a >> 8).astype(np.uint8)
        elif np.issubdtype(a.dtype, np.floating):
            a = np.clip(np.nan_to_num(a) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        elif np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_:
            a = np.clip(a, 0, 255).astype(np.uint8)
        else:
            raise SettingsError(f"unsupported image dtype {a.dtype}")
    if a.ndim == 2:
        a = cv2.cvtColor(a, cv2.COLOR_GRAY2BGR)
    elif a.shape[2] == 1:
        a = cv2.cvtColor(a[:, :, 0], cv2.COLOR_GRAY2BGR)
    elif a.shape[2] == 4:
        a = cv2.cvtColor(a, cv2.COLOR_BGRA2BGR)
    elif a.shape[2] != 3:
        raise SettingsError(f"expected 1, 3 or 4 channels, got {a.shape[2]}")
    return np.ascontiguousarray(a)
