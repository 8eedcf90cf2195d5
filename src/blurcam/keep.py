"""Selective unblur: keep a marked point or box sharp, and follow it as it moves.

An object held up to the camera (a mug, a page, a product) is not a person, so
the segmenter puts it in the background. The user marks it once (a point or a
box, by CLI flag, library call or a click in the web page); :class:`KeepTracker`
follows it frame to frame and :func:`apply_keep` raises the alpha to 255 inside
its box (with a feathered border) before the effect runs, so the object is
composited from the camera frame like the person.

Which tracker: opencv-python-headless 5 ships ``TrackerMIL`` (no model file,
~10-30 ms per frame, fixed box size) and ``TrackerNano``/``TrackerVit``/
``TrackerDaSiamRPN`` (each needs separate ONNX weights); the contrib trackers
(KCF, CSRT, MedianFlow) are not in the headless wheel. So the tracker here is a
small median-flow tracker of our own: pyramidal Lucas-Kanade on corner points
inside the box, forward-backward checked, median displacement and median scale
change. Its answer is checked against the object's look (normalised
correlation with a template that is refreshed while matches are good); when
too few points survive or the result does not look like the object (a jump
further than the flow can follow, points slid onto the background), template
matching within one box size of the last position decides. It runs on the
working-resolution grey image (~480 px wide) in ~3 ms.

Boxes are ``(x, y, w, h)`` floats in the pixel coordinates of the images the
tracker is given.
"""

from __future__ import annotations

import logging
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

from .frame import U8

__all__ = ["Box", "KeepTracker", "apply_keep", "box_from_point", "clip_box", "iou"]

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]

_MIN_POINTS = 6  # fewer surviving flow points than this -> template matching
_MAX_SCALE_STEP = 1.15  # largest size change accepted between two frames
_GOOD_MATCH = 0.7  # template correlation that confirms a position (and refreshes the template)
_MIN_MATCH = 0.35  # below this the object is taken as lost for the frame
_LK_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)


def box_from_point(point: tuple[float, float], side: float, size: tuple[int, int]) -> Box:
    """A ``side`` x ``side`` box centred on ``point``, shifted to lie inside ``size`` (w, h)."""
    x, y = point
    side = min(side, size[0], size[1])
    return clip_box((x - side / 2, y - side / 2, side, side), size)


def clip_box(box: Box, size: tuple[int, int]) -> Box:
    """Shift (then shrink if needed) ``box`` so it lies inside an image of ``size`` (w, h)."""
    x, y, w, h = box
    fw, fh = size
    w = float(min(max(w, 2.0), fw))
    h = float(min(max(h, 2.0), fh))
    x = float(min(max(x, 0.0), fw - w))
    y = float(min(max(y, 0.0), fh - h))
    return x, y, w, h


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _int_box(box: Box) -> tuple[int, int, int, int]:
    x, y, w, h = box
    x0, y0 = round(x), round(y)
    return x0, y0, max(1, round(x + w) - x0), max(1, round(y + h) - y0)


class KeepTracker:
    """Follows one box through a sequence of grey images (median flow + template fallback).

    >>> t = KeepTracker(gray0, (x, y, w, h))  # doctest: +SKIP
    >>> box = t.update(gray1)                 # the box in gray1
    """

    def __init__(self, gray: U8, box: Box) -> None:
        self._start(gray, box)

    def _start(self, gray: U8, box: Box) -> None:
        self._size = (gray.shape[1], gray.shape[0])
        self.box = clip_box(box, self._size)
        self._prev = gray.copy()  # owned: callers reuse their buffers
        self._template = self._crop(gray, self.box)
        self.lost = 0  # frames in a row without a confident match

    @staticmethod
    def _crop(gray: U8, box: Box) -> U8:
        x, y, w, h = _int_box(box)
        return cast(U8, gray[y : y + h, x : x + w].copy())

    def _points(self, gray: U8) -> NDArray[np.float32]:
        x, y, w, h = _int_box(self.box)
        m = np.zeros(gray.shape, np.uint8)
        m[y : y + h, x : x + w] = 255
        pts = cv2.goodFeaturesToTrack(
            gray, 80, 0.01, max(2.0, min(w, h) / 12.0), mask=m, blockSize=5
        )
        if pts is not None and len(pts) >= _MIN_POINTS:
            return pts.reshape(-1, 1, 2).astype(np.float32)
        # a flat object: a grid still moves with it where it has any texture
        gx = np.linspace(x + 0.1 * w, x + 0.9 * w, 8, dtype=np.float32)
        gy = np.linspace(y + 0.1 * h, y + 0.9 * h, 8, dtype=np.float32)
        g = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 1, 2)
        return g.astype(np.float32)

    def _flow(self, gray: U8) -> Box | None:
        p0 = self._points(self._prev)
        p1, st1, _ = cv2.calcOpticalFlowPyrLK(  # type: ignore[call-overload,unused-ignore]
            self._prev, gray, p0, None, winSize=(15, 15), maxLevel=3, criteria=_LK_CRITERIA
        )
        if p1 is None:
            return None
        back, st2, _ = cv2.calcOpticalFlowPyrLK(  # type: ignore[call-overload,unused-ignore]
            gray, self._prev, p1, None, winSize=(15, 15), maxLevel=3, criteria=_LK_CRITERIA
        )
        if back is None:
            return None
        fb = np.linalg.norm((p0 - back).reshape(-1, 2), axis=1)
        ok = (st1.ravel() == 1) & (st2.ravel() == 1)
        if ok.sum() < _MIN_POINTS:
            return None
        ok &= fb <= max(1.0, float(np.median(fb[ok])))
        if ok.sum() < _MIN_POINTS:
            return None
        a = p0.reshape(-1, 2)[ok]
        b = p1.reshape(-1, 2)[ok]
        dx, dy = np.median(b - a, axis=0)
        scale = 1.0
        if len(a) >= 2:
            i, j = np.triu_indices(min(len(a), 40), 1)
            d0 = np.linalg.norm(a[i] - a[j], axis=1)
            d1 = np.linalg.norm(b[i] - b[j], axis=1)
            good = d0 > 2.0
            if good.any():
                scale = float(np.median(d1[good] / d0[good]))
        scale = float(np.clip(scale, 1 / _MAX_SCALE_STEP, _MAX_SCALE_STEP))
        x, y, w, h = self.box
        cx, cy = x + w / 2 + float(dx), y + h / 2 + float(dy)
        w, h = w * scale, h * scale
        return cx - w / 2, cy - h / 2, w, h

    def _score(self, gray: U8, box: Box) -> float:
        """Normalised correlation of ``box`` in ``gray`` with the template (-1..1)."""
        x, y, w, h = _int_box(clip_box(box, self._size))
        crop = gray[y : y + h, x : x + w]
        th, tw = self._template.shape[:2]
        if crop.size == 0 or tw < 3 or th < 3:
            return -1.0
        crop = cast(U8, cv2.resize(crop, (tw, th), interpolation=cv2.INTER_LINEAR))
        res = cv2.matchTemplate(crop, self._template, cv2.TM_CCOEFF_NORMED)
        v = float(res[0, 0])
        return v if np.isfinite(v) else -1.0

    def _match(self, gray: U8) -> tuple[Box, float] | None:
        """Template search within one box size around the last position."""
        x, y, w, h = _int_box(self.box)
        tmpl = self._template
        if tmpl.shape[:2] != (h, w):
            tmpl = cast(U8, cv2.resize(tmpl, (w, h), interpolation=cv2.INTER_LINEAR))
        fh, fw = gray.shape[:2]
        x0, y0 = max(0, x - w), max(0, y - h)
        x1, y1 = min(fw, x + 2 * w), min(fh, y + 2 * h)
        region = gray[y0:y1, x0:x1]
        if region.shape[0] < h or region.shape[1] < w or w < 3 or h < 3:
            return None
        res = cv2.matchTemplate(region, tmpl, cv2.TM_CCOEFF_NORMED)
        _, score, _, loc = cv2.minMaxLoc(res)
        if not np.isfinite(score):
            return None
        return (float(x0 + loc[0]), float(y0 + loc[1]), float(w), float(h)), float(score)

    def update(self, gray: U8) -> Box:
        """Follow the box into ``gray`` (same size as before); returns the new box.

        The flow answer is checked against the object's look (the template,
        refreshed whenever the match is good); when it does not look right
        (the object jumped further than the flow can follow, or the points
        slid onto the background) template matching around the last position
        decides. When neither is confident the box stays where it was
        (``lost`` counts those frames) rather than jumping.
        """
        if (gray.shape[1], gray.shape[0]) != self._size:
            # the stream changed size: scale the box along, restart from here
            sx, sy = gray.shape[1] / self._size[0], gray.shape[0] / self._size[1]
            x, y, w, h = self.box
            self._start(gray, (x * sx, y * sy, w * sx, h * sy))
            return self.box
        new: Box | None = self._flow(gray)
        score = -1.0 if new is None else self._score(gray, new)
        if score < _GOOD_MATCH:
            found = self._match(gray)
            if found is not None and found[1] > score:
                new, score = found
        if new is None or score < _MIN_MATCH:
            self.lost += 1
            log.debug("keep tracker: no confident match (%d frames)", self.lost)
        else:
            self.lost = 0
            self.box = clip_box(new, self._size)
            if score >= _GOOD_MATCH:  # follow slow changes of look (turning, light)
                self._template = self._crop(gray, self.box)
        self._prev[...] = gray
        return self.box


def apply_keep(alpha: U8, box: Box, feather: float = 0.08) -> None:
    """Raise ``alpha`` (uint8 HxW, full resolution) to 255 inside ``box``. In place.

    The border ramps over ``feather`` of the box's shorter side, so the kept
    region does not end in a hard seam; existing person alpha is never lowered
    (a max, not a paste).
    """
    fh, fw = alpha.shape[:2]
    x, y, w, h = _int_box(clip_box(box, (fw, fh)))
    if w < 1 or h < 1:
        return
    ramp = max(1.0, feather * min(w, h))
    rx = np.minimum(np.arange(w), np.arange(w)[::-1]).astype(np.float32) + 1.0
    ry = np.minimum(np.arange(h), np.arange(h)[::-1]).astype(np.float32) + 1.0
    patch = np.minimum.outer(ry, rx) * np.float32(255.0 / ramp)
    patch8 = cv2.convertScaleAbs(np.minimum(patch, 255.0))
    roi = alpha[y : y + h, x : x + w]
    np.maximum(roi, patch8, out=roi)
