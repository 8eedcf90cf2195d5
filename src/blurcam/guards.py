"""Guards against the failures users notice most: a blurred face, a stranger kept in view.

Pure functions; per-stream state (tracked faces, the previous main-person
region) is owned by ``pipeline.Stream`` and passed in.

* :func:`protect_faces` forces tracked faces to foreground (the centre of the
  detector's box, rounded below the chin, plus what the model once saw there),
  so an auto-exposure swing that makes the model drop the face cannot blur it.
* :func:`keep_main` keeps only the main person: the connected region that
  continues last frame's main region, or, on the first frame, the largest and
  most central one.
* :func:`face_search_rect` picks where the face detector looks: a square
  around the person, so a face in a 16:9 frame is large enough for the
  short-range detector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

from .face import Face

__all__ = ["face_search_rect", "faces_to_frame", "keep_main", "protect_faces"]

F32 = NDArray[np.float32]
U8 = NDArray[np.uint8]


def face_search_rect(prob: F32, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Rectangle ``(x0, y0, x1, y1)`` in pixels of a ``size`` (w, h) frame to run the detector on.

    A wide frame is cut to a square (its height) centred on the person
    (``prob`` > 0.5, any resolution), or the centre square with no person:
    letterboxing all of a 16:9 frame into the detector's 128x128 input would
    make a face at call distance too small for it. A tall or square frame is
    used whole.
    """
    w, h = size
    if h >= w:
        return 0, 0, w, h
    xs = np.nonzero((prob > 0.5).any(axis=0))[0]
    cx = (xs[0] + xs[-1] + 1) / 2.0 / prob.shape[1] * w if xs.size else w / 2.0
    x0 = int(min(max(0.0, cx - h / 2.0), w - h))
    return x0, 0, x0 + h, h


def faces_to_frame(
    faces: Sequence[Face], rect: tuple[int, int, int, int], size: tuple[int, int]
) -> list[Face]:
    """Faces found in the crop ``rect`` -> faces in 0..1 of the whole ``size`` frame."""
    x0, y0, x1, y1 = rect
    w, h = size
    sx, sy = (x1 - x0) / w, (y1 - y0) / h
    ox, oy = x0 / w, y0 / h
    out = []
    for f in faces:
        b = f.box
        out.append(Face((ox + b[0] * sx, oy + b[1] * sy, ox + b[2] * sx, oy + b[3] * sy), f.score))
    return out


_KEEP_GRID = 32
_RIM = 0.02  # soft rim of the held core, part of its size
_SEEN = 0.25  # mean remembered alpha in the face box below which it is not forced


def _rect(f: Face, scale: float, w: int, h: int) -> tuple[int, int, int, int]:
    (cx, cy), (bw, bh) = f.center, f.size
    hx, hy = scale * bw * w / 2.0, scale * bh * h / 2.0
    return (
        max(0, int(np.floor(cx * w - hx))),
        max(0, int(np.floor(cy * h - hy))),
        min(w, int(np.ceil(cx * w + hx))),
        min(h, int(np.ceil(cy * h + hy))),
    )


def protect_faces(
    alpha: F32, faces: Sequence[Face], scale: float = 0.8, core: float = 0.8
) -> list[Face]:
    """Keep every tracked face in the foreground: raises ``alpha`` in place.

    ``alpha`` is float32 0..1 at any resolution, ``faces`` in 0..1 of it.
    Two parts, so that the guard costs little where the model is right:

    * the centre ``core`` of the box is held at 1 always, with a thin soft
      rim: its upper half as the whole rectangle (forehead, temples, the side
      of the head), its lower half as an ellipse, because the jaw narrows and
      the box's lower corners are background or shoulder beside the chin
      (forcing them is what cost portrait mIoU; the upper corners are hair or
      head and cost almost nothing);
    * in the inner ``scale`` of the box, the highest alpha the model ever gave
      each place since the face was first tracked is remembered on a small
      grid that moves with the box (``Face.keep``) and held: when an exposure
      swing makes the model drop part of the face, it stays at least as
      opaque as the model once made it (a cheek edge at 0.6 at normal
      exposure stays 0.6 when the frame is blown out).

    The box must not jitter for this to hold: ``face.track_faces`` keeps a
    confirmed track's box on re-detection.

    A face the model never saw as part of a person (mean remembered alpha
    under a quarter of its box) is not forced at all: a face on a poster, a
    false detection, or a stranger removed by ``people=main`` stays in the
    background.

    Returns the faces with what was learnt, to pass in next frame.
    """
    h, w = alpha.shape
    out = []
    for f in faces:
        x0, y0, x1, y1 = _rect(f, scale, w, h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            out.append(f)
            continue
        roi = alpha[y0:y1, x0:x1]
        seen = cast(
            F32,
            cv2.resize(
                roi,
                (_KEEP_GRID, _KEEP_GRID),
                interpolation=cv2.INTER_AREA,
            ),
        )
        keep = seen if f.keep is None else cast(F32, np.maximum(f.keep, seen))
        out.append(replace(f, keep=keep))
        if float(keep.mean()) < _SEEN:
            continue  # never part of a person (a poster, a stranger under people=main)
        np.maximum(
            roi, cv2.resize(keep, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR), out=roi
        )
        _hold_core(alpha, f, core)
    return out


def _hold_core(alpha: F32, f: Face, core: float) -> None:
    """Hold the centre ``core`` of the box at 1: upper half rectangle, lower half ellipse.

    A thin rim (``_RIM``, 2% of the core's size, at least a pixel) falls off
    softly so the held region draws no hard step; a wider one (8%) cost 0.4
    points of portrait boundary F for no gain on the exposure ramp.
    """
    h, w = alpha.shape
    x0, y0, x1, y1 = _rect(f, core, w, h)
    if x1 <= x0 or y1 <= y0:
        return
    (cx, cy), (bw, bh) = f.center, f.size
    ax, ay = core * bw * w / 2.0, core * bh * h / 2.0
    if ax < 1.0 or ay < 1.0:
        return
    rim = max(1.0, _RIM * 2.0 * min(ax, ay))
    ox0, oy0 = max(0, int(np.floor(cx * w - ax - rim))), max(0, int(np.floor(cy * h - ay - rim)))
    ox1, oy1 = min(w, int(np.ceil(cx * w + ax + rim))), min(h, int(np.ceil(cy * h + ay + rim)))
    if ox1 <= ox0 or oy1 <= oy0:
        return
    xs = (np.arange(ox0, ox1, dtype=np.float32) + 0.5 - np.float32(cx * w)) / np.float32(ax)
    ys = (np.arange(oy0, oy1, dtype=np.float32) + 0.5 - np.float32(cy * h)) / np.float32(ay)
    y, x = ys[:, None], xs[None, :]
    # upper half: the rectangle (|x|, |y| <= 1); lower half: the ellipse
    r = np.where(y < 0, np.maximum(np.abs(x), np.abs(y)), np.sqrt(x * x + y * y))
    # 1 inside, falling to 0 over ``rim`` pixels outside
    m = np.clip((1.0 + rim / min(ax, ay) - r) * (min(ax, ay) / rim), 0.0, 1.0).astype(np.float32)
    roi = alpha[oy0:oy1, ox0:ox1]
    np.maximum(roi, m, out=roi)


_K5 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))


def keep_main(prob: F32, prev_main: NDArray[np.bool_] | None) -> tuple[F32, NDArray[np.bool_]]:
    """Keep only the main person in ``prob`` (float32 0..1, model resolution).

    Regions are the connected components of ``prob > 0.5``. The main one is
    the component overlapping last frame's main region most (``prev_main``,
    bool, same shape), so a second person walking in front does not take
    over; without history (or when it vanished), the component with the
    largest area weighted by closeness to the centre. Returns a new
    probability in which everything more than a few pixels from the main
    region is 0 (so its soft edge and attached hands stay), and the main
    region (bool) to pass in next frame.
    """
    h, w = prob.shape
    fg = (prob > 0.5).astype(np.uint8)
    n, labels, stats, cents = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n <= 1:
        empty = np.zeros((h, w), bool)
        return prob.copy(), empty
    best = 0
    if prev_main is not None and prev_main.shape == prob.shape and prev_main.any():
        counts = np.bincount(labels[prev_main], minlength=n)
        counts[0] = 0
        if counts.max() > 0:
            best = int(counts.argmax())
    if best == 0:
        areas = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
        dx = (cents[1:, 0] / w - 0.5) * 2.0
        dy = (cents[1:, 1] / h - 0.5) * 2.0
        centrality = 1.0 - 0.5 * np.clip(np.hypot(dx, dy), 0.0, 1.5) / 1.5
        best = int(np.argmax(areas * centrality)) + 1
    main = labels == best
    keep = cv2.dilate(main.astype(np.uint8), _K5) > 0
    out = np.where(keep, prob, np.float32(0.0)).astype(np.float32)
    return out, main
