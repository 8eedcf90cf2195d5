"""Mask quality metrics: region (IoU), boundary (F-score) and temporal (flicker).

Pure functions over numpy arrays. A *mask* may be given as uint8 0..255
(255 = person, as the PNGs and ``Stream.last_alpha`` are), as bool, or as
float 0..1; :func:`as_unit` brings any of them to float32 0..1 and
:func:`binarize` thresholds at one half. Region and boundary metrics look at
the binary mask; the temporal ones keep the soft alpha, because a soft edge
that wobbles is what a viewer sees as flicker.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from ..frame import F32

__all__ = [
    "BOUNDARY_TOLERANCE",
    "FAR_TOLERANCE",
    "as_unit",
    "binarize",
    "boundary_f",
    "boundary_pixels",
    "boundary_tolerance",
    "dtssd",
    "far_false_positives",
    "iou",
    "temporal_change",
]

BOOL = NDArray[np.bool_]

BOUNDARY_TOLERANCE = 0.005  # fraction of the image diagonal (issue 3)
FAR_TOLERANCE = 0.02  # fraction of the image diagonal beyond which a false positive is "far"


def as_unit(mask: NDArray[np.generic]) -> F32:
    """Any mask -> float32 HxW in 0..1 (uint8/uint16 are scaled by their maximum value)."""
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[:, :, 0]
    if m.ndim != 2:
        raise ValueError(f"expected an HxW mask, got shape {m.shape}")
    out: F32 = m.astype(np.float32)
    if m.dtype == np.uint8:
        out *= np.float32(1.0 / 255.0)
    elif m.dtype == np.uint16:
        out *= np.float32(1.0 / 65535.0)
    elif m.dtype != np.bool_:
        np.clip(out, 0.0, 1.0, out=out)
    return out


def binarize(mask: NDArray[np.generic]) -> BOOL:
    """Person where the mask is at least one half (uint8: >= 128)."""
    m = np.asarray(mask)
    if m.dtype == np.bool_:
        return m
    if m.dtype == np.uint8:
        return m >= 128
    return as_unit(m) >= 0.5


def _check_shapes(a: NDArray[np.generic], b: NDArray[np.generic]) -> None:
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(f"mask shapes differ: {a.shape[:2]} vs {b.shape[:2]}")


def iou(pred: NDArray[np.generic], gt: NDArray[np.generic]) -> float:
    """Intersection over union of the binarised masks; 1.0 when both are empty."""
    _check_shapes(pred, gt)
    p, g = binarize(pred), binarize(gt)
    union = int(np.count_nonzero(p | g))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(p & g)) / union


def boundary_tolerance(shape: tuple[int, ...], fraction: float = BOUNDARY_TOLERANCE) -> int:
    """Tolerance in pixels: ``fraction`` of the diagonal, rounded up, at least 1."""
    h, w = shape[:2]
    return max(1, math.ceil(fraction * math.hypot(h, w)))


def boundary_pixels(mask: NDArray[np.generic]) -> BOOL:
    """Inner boundary of the binarised mask: person pixels with a 4-neighbour outside.

    The image border is not a boundary (erosion pads with the maximum), as in
    the DAVIS benchmark, so a person cut by the frame edge is not penalised.
    """
    m = binarize(mask).astype(np.uint8)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    eroded = cv2.erode(m, cross, borderType=cv2.BORDER_REPLICATE)
    return (m > eroded).astype(bool)


def _dilate(b: BOOL, radius: int) -> BOOL:
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(b.astype(np.uint8), disc).astype(bool)


def boundary_f(
    pred: NDArray[np.generic],
    gt: NDArray[np.generic],
    tolerance: int | None = None,
) -> float:
    """Boundary F-score: precision/recall of boundary pixels matched within ``tolerance``.

    Precision is the share of predicted boundary pixels within ``tolerance``
    pixels (a disc) of a ground-truth boundary pixel; recall the reverse.
    The default tolerance is 0.5% of the image diagonal (5 px at 854x480,
    5 px at 600x800). Both boundaries empty -> 1.0; only one empty -> 0.0.
    """
    _check_shapes(pred, gt)
    r = boundary_tolerance(gt.shape) if tolerance is None else int(tolerance)
    bp, bg = boundary_pixels(pred), boundary_pixels(gt)
    n_p, n_g = int(np.count_nonzero(bp)), int(np.count_nonzero(bg))
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0
    precision = int(np.count_nonzero(bp & _dilate(bg, r))) / n_p
    recall = int(np.count_nonzero(bg & _dilate(bp, r))) / n_g
    if precision + recall == 0.0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def far_false_positives(
    pred: NDArray[np.generic], gt: NDArray[np.generic], fraction: float = FAR_TOLERANCE
) -> float:
    """Share of the frame (0..1) marked person farther than ``fraction`` of the diagonal from truth.

    An edge a few pixels off does not count; what counts is person where no
    person is near: a face box left on a wall, a shadow, a stranger the truth
    leaves out. Distance is Euclidean from the nearest true person pixel
    (``fraction`` 0.02: 20 px at 854x480, 20 px at 600x800). With no true
    person, every predicted person pixel is far.
    """
    _check_shapes(pred, gt)
    p = binarize(pred)
    n = int(np.count_nonzero(p))
    if n == 0:
        return 0.0
    g = binarize(gt)
    if not g.any():
        return n / p.size
    tol = fraction * math.hypot(*gt.shape[:2])
    # distance of every pixel to the nearest true person pixel (the zeros of ~g)
    dist = cv2.distanceTransform((~g).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)
    return int(np.count_nonzero(p & (dist > tol))) / p.size


def dtssd(
    pred_prev: NDArray[np.generic],
    pred: NDArray[np.generic],
    gt_prev: NDArray[np.generic],
    gt: NDArray[np.generic],
) -> float:
    """Flicker of one frame pair: ``sqrt(mean(((p_t - p_{t-1}) - (g_t - g_{t-1}))^2)) * 100``.

    Alphas in 0..1 (soft, not thresholded). 0 when the prediction changes
    exactly as the ground truth does; a prediction that wobbles while the
    truth stands still scores above 0. A sequence's flicker is the mean over
    its consecutive pairs.
    """
    for a in (pred, gt_prev, gt):
        _check_shapes(pred_prev, a)
    d = (as_unit(pred) - as_unit(pred_prev)) - (as_unit(gt) - as_unit(gt_prev))
    return float(np.sqrt(np.mean(np.square(d, dtype=np.float64)))) * 100.0


def temporal_change(
    pred_prev: NDArray[np.generic],
    pred: NDArray[np.generic],
    gt_prev: NDArray[np.generic] | None = None,
    gt: NDArray[np.generic] | None = None,
) -> float:
    """Mean absolute change of the soft alpha between two frames, x 100.

    With ground truth, only pixels whose truth did not change count (the
    "mask should be still here" pixels the data README suggests), so real
    motion is not read as flicker. Without it (clips with no ground truth),
    every pixel counts. 0 when no pixel qualifies.
    """
    _check_shapes(pred_prev, pred)
    d = np.abs(as_unit(pred) - as_unit(pred_prev))
    if gt_prev is not None and gt is not None:
        _check_shapes(pred, gt)
        still = binarize(gt) == binarize(gt_prev)
        if not still.any():
            return 0.0
        d = d[still]
    return float(np.mean(d, dtype=np.float64)) * 100.0
