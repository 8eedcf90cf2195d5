"""Frame types and the one conversion every entry point shares.

``Frame`` is uint8 HxWx3 BGR (OpenCV's order), contiguous; ``Alpha`` is uint8
HxW, 255 = person; ``Prob`` is float32 HxW in 0..1 at model resolution.
:func:`as_bgr` brings whatever a caller hands in to a ``Frame``, so that
sources, sinks and the pipeline agree on one layout.
"""

from __future__ import annotations

import warnings
from typing import Any, cast

import cv2
import numpy as np
from numpy.typing import NDArray

from .errors import InputWarning, SettingsError

__all__ = ["F32", "U8", "as_bgr"]

U8 = NDArray[np.uint8]
F32 = NDArray[np.float32]


def as_bgr(frame: NDArray[Any]) -> U8:
    """Any image array -> contiguous uint8 HxWx3 BGR.

    Accepts grayscale (HxW or HxWx1), BGRA, 16-bit (0..65535), float (0..1)
    and bool images. Values are read as what the dtype means, and where an
    array plainly holds another range the likely intent is taken with an
    :class:`~blurcam.errors.InputWarning` rather than a wrong picture: a
    uint16 frame whose values go no higher than 255, or a float one whose
    values go above 2, is read as 8-bit values; a float frame a little
    outside 0..1, and other integers outside 0..255, are clipped with a
    warning.

    Raises:
        SettingsError: not an image shape, an unsupported dtype, NaN or infinite
            values, or float values beyond any image range.
    """
    a = np.asarray(frame)
    if a.ndim not in (2, 3) or a.size == 0:
        raise SettingsError(f"expected an HxW or HxWxC image, got shape {a.shape}")
    if a.dtype != np.uint8:
        a = _to_u8(a)
    if a.ndim == 2:
        a = cv2.cvtColor(a, cv2.COLOR_GRAY2BGR)
    elif a.shape[2] == 1:
        a = cv2.cvtColor(a[:, :, 0], cv2.COLOR_GRAY2BGR)
    elif a.shape[2] == 4:
        a = cv2.cvtColor(a, cv2.COLOR_BGRA2BGR)
    elif a.shape[2] != 3:
        raise SettingsError(f"expected 1, 3 or 4 channels, got {a.shape[2]}")
    return np.ascontiguousarray(a)


def _warn(message: str) -> None:
    warnings.warn(message, InputWarning, stacklevel=4)


def _to_u8(a: NDArray[Any]) -> U8:
    """A non-uint8 image as uint8 0..255 (see :func:`as_bgr`)."""
    if a.dtype == np.bool_:
        return cast(U8, a.astype(np.uint8) * np.uint8(255))
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise SettingsError("the frame holds NaN or infinite values")
        top = float(a.max())
        if top > 255.0 or float(a.min()) < -1.0:
            raise SettingsError(
                f"a float frame must hold 0..1 (or 0..255), got values {a.min():g}..{top:g}"
            )
        if top > 2.0:  # far beyond 0..1: a 0..255 picture in a float array
            _warn(f"a {a.dtype} frame with values up to {top:g}: read as 0..255, not 0..1")
            return np.clip(a + 0.5, 0, 255).astype(np.uint8)
        if top > 1.0 + 1e-3 or float(a.min()) < -1e-3:
            _warn(f"a {a.dtype} frame with values {a.min():g}..{top:g}: clipped to 0..1")
        return np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if not np.issubdtype(a.dtype, np.integer):
        raise SettingsError(f"unsupported image dtype {a.dtype}")
    lo, hi = int(a.min()), int(a.max())
    if a.dtype == np.uint16:
        if hi > 255:
            return cast(U8, (a >> 8).astype(np.uint8))
        _warn("a uint16 frame with values no higher than 255: read as 8-bit values")
    elif lo < 0 or hi > 255:
        _warn(f"a {a.dtype} frame with values {lo}..{hi}: clipped to 0..255")
    return cast(U8, np.clip(a, 0, 255).astype(np.uint8))
