"""Mask stages: temporal smoothing at model resolution, then image-guided refinement.

Everything here is a pure function over numpy arrays. History (the previous
mask) goes *in* as an argument, as in MediaPipe's smoothing calculator; the
caller (``pipeline.Stream``) owns it.

Conventions: ``prob`` is float32 HxW in 0..1 at model resolution; ``guide`` is
uint8 HxWx3 BGR at working resolution; ``alpha`` is float32 0..1 (working
resolution) or uint8 0..255 (full resolution, 255 = person).
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from .settings import MaskSettings

__all__ = [
    "is_scene_cut",
    "refine_guided",
    "smooth_temporal",
    "to_alpha",
    "upsample_alpha",
    "working_size",
]

F32 = NDArray[np.float32]
U8 = NDArray[np.uint8]


def is_scene_cut(prob: F32, prev: F32, threshold: float) -> bool:
    """True when the mask changed so much that history would only smear (a cut, a jump)."""
    return float(cv2.norm(prob, prev, cv2.NORM_L1)) / prob.size > threshold


def smooth_temporal(prob: F32, prev: F32 | None, settings: MaskSettings) -> F32:
    """Blend the new probability with the previous mask where the new one is unsure.

    The weight of the new mask is ``1 - smoothing * (1 - confidence)`` with
    ``confidence = |2p - 1|``: a pixel the model is sure about takes the new
    value at once (no lag trail behind motion), a pixel near 0.5 (the flickery
    edge) leans on history. A scene cut drops history. Returns a new array.
    """
    if prev is None or settings.smoothing == 0.0 or prev.shape != prob.shape:
        return prob.copy()
    if is_scene_cut(prob, prev, settings.scene_cut):
        return prob.copy()
    conf = np.abs(prob * 2.0 - 1.0)
    w_new = 1.0 - settings.smoothing * (1.0 - conf)
    return (prev + w_new * (prob - prev)).astype(np.float32, copy=False)


def working_size(frame_size: tuple[int, int], width: int) -> tuple[int, int]:
    """(w, h) of the working resolution: ``width`` wide (never upscaled), same aspect."""
    w, h = frame_size
    if w <= width:
        return w, h
    return width, max(1, round(h * width / w))


def _box(x: F32, r: int) -> F32:
    return cv2.boxFilter(x, cv2.CV_32F, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def refine_guided(prob: F32, guide: U8, settings: MaskSettings) -> F32:
    """Edge-aware refinement of the mask by the image (He et al.'s guided filter).

    ``prob`` (any resolution) is upsampled to the guide's resolution and
    filtered with the colour guide's luminance, so the mask edge snaps to image
    edges (hair, fingers) instead of the blocky model grid. Written with
    ``cv2.boxFilter`` because ``cv2.ximgproc`` is not in opencv-headless.
    Returns float32 0..1 at the guide's resolution.
    """
    h, w = guide.shape[:2]
    p = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)
    if not settings.refine:
        return p
    i = cv2.cvtColor(guide, cv2.COLOR_BGR2GRAY).astype(np.float32)
    i *= np.float32(1.0 / 255.0)
    r = max(1, round(settings.refine_radius * w / 480))
    mean_i = _box(i, r)
    mean_p = _box(p, r)
    cov_ip = _box(i * p, r) - mean_i * mean_p
    var_i = _box(i * i, r) - mean_i * mean_i
    a = cov_ip / (var_i + np.float32(settings.refine_eps))
    b = mean_p - a * mean_i
    q = _box(a, r) * i + _box(b, r)
    return q


def to_alpha(q: F32, settings: MaskSettings) -> F32:
    """Map probability to alpha: a soft ramp between ``edge_low`` and ``edge_high``."""
    lo, hi = settings.edge_low, settings.edge_high
    a = (q - np.float32(lo)) * np.float32(1.0 / (hi - lo))
    return np.clip(a, 0.0, 1.0, out=a)


def upsample_alpha(alpha: F32, size: tuple[int, int], out: U8 | None = None) -> U8:
    """Float alpha 0..1 at working resolution -> uint8 0..255 at ``size`` (w, h), one resize."""
    a8 = cv2.convertScaleAbs(alpha, alpha=255.0)
    if a8.shape[1] == size[0] and a8.shape[0] == size[1]:
        if out is not None:
            out[...] = a8
            return out
        return a8
    return cv2.resize(a8, size, dst=out, interpolation=cv2.INTER_LINEAR)
