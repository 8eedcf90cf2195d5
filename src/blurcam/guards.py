"""Guards against the failures users notice most: a blurred face, a stranger kept in view.

Pure functions; per-stream state (tracked faces, the previous main-person
region) is owned by ``pipeline.Stream`` and passed in.

* :func:`protect_faces` forces tracked faces to foreground (the head ellipse
  from the detector's box and keypoints, where the model once saw person),
  so an auto-exposure swing that makes the model drop part of a face cannot
  blur it; a face the model does not see as a person's is never forced.
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
from .frame import F32

__all__ = [
    "face_ellipse",
    "face_search_rect",
    "faces_to_frame",
    "keep_main",
    "near_main",
    "protect_faces",
]


def face_search_rect(prob: F32 | None, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Rectangle ``(x0, y0, x1, y1)`` in pixels of a ``size`` (w, h) frame to run the detector on.

    A wide frame is cut to a square (its height) centred on the person
    (``prob`` > 0.5, any resolution), or the centre square with no person
    (or no ``prob``):
    letterboxing all of a 16:9 frame into the detector's 128x128 input would
    make a face at call distance too small for it. A tall or square frame is
    used whole.
    """
    w, h = size
    if h >= w:
        return 0, 0, w, h
    xs = np.zeros(0, np.intp) if prob is None else np.nonzero((prob > 0.5).any(axis=0))[0]
    cx = w / 2.0
    if prob is not None and xs.size:
        cx = (xs[0] + xs[-1] + 1) / 2.0 / prob.shape[1] * w
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
        kps = tuple((ox + x * sx, oy + y * sy) for x, y in f.keypoints)
        box = (ox + b[0] * sx, oy + b[1] * sy, ox + b[2] * sx, oy + b[3] * sy)
        out.append(Face(box, f.score, keypoints=kps))
    return out


_KEEP_GRID = 32
_RIM = 0.04  # soft rim of the ellipses, part of the smaller semi-axis
_SEEN = 0.5  # share of the face the model must see as person, or the face is dropped
_LIFT = 0.1  # head ellipse centre above the box centre, in box heights (forehead, hair)
_HEAD = (0.6, 0.75)  # semi-axes of the head ellipse, in box widths and heights
_FACE = (0.5, 0.5)  # semi-axes of the face ellipse: inscribed in the box
_STEADY = 0.9  # template match under which a face has changed (turned, moved fast): relearnt
_LIT = 0.8  # ... or, under an exposure swing (clipping lowers the correlation), this
_STILL = 0.05  # ... while it stayed put (box sizes moved since the last frame)
_LIGHT = 0.1  # ... and its brightness changed (|log| ratio of mean grey)

Ellipse = tuple[float, float, float, float, float]


def face_ellipse(face: Face, size: tuple[int, int], *, head: bool = True) -> Ellipse:
    """The head (or, ``head`` False, the face) ellipse of ``face`` in a ``size`` (w, h) frame.

    Returns ``(cx, cy, ax, ay, angle)``: centre and semi-axes in pixels,
    ``angle`` in radians (the head's roll: the line through the eyes, from
    the detector's keypoints; 0 without them). The detector's box runs from
    the brow to the chin and about ear to ear. The face ellipse is inscribed
    in it (eyes, cheeks, mouth, chin); the head ellipse is a fifth
    wider and half taller, centred a tenth of the box higher (forehead,
    temples, hair, jaw). Both turn with the head.
    """
    w, h = size
    (cx, cy), (bw, bh) = face.center, face.size
    angle = 0.0
    if len(face.keypoints) >= 2:
        (rx, ry), (lx, ly) = face.keypoints[0], face.keypoints[1]
        ex, ey = (lx - rx) * w, (ly - ry) * h
        if ex * ex + ey * ey > 1.0:
            # the subject's right eye is on the image's left: ex > 0 for an upright face
            angle = float(np.clip(np.arctan2(ey, ex), -np.pi / 3, np.pi / 3))
    lift = _LIFT * bh * h if head else 0.0
    ax, ay = _HEAD if head else _FACE
    return (
        cx * w + lift * np.sin(angle),
        cy * h - lift * np.cos(angle),
        ax * bw * w,
        ay * bh * h,
        angle,
    )


def _ellipse_roi(e: Ellipse, w: int, h: int) -> tuple[int, int, int, int] | None:
    cx, cy, ax, ay, ang = e
    c, s = abs(np.cos(ang)), abs(np.sin(ang))
    rim = 1.0 + _RIM * min(ax, ay)
    hx, hy = ax * c + ay * s + rim, ax * s + ay * c + rim
    x0, y0 = max(0, int(np.floor(cx - hx))), max(0, int(np.floor(cy - hy)))
    x1, y1 = min(w, int(np.ceil(cx + hx))), min(h, int(np.ceil(cy + hy)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return x0, y0, x1, y1


def _ellipse_mask(e: Ellipse, roi: tuple[int, int, int, int]) -> F32:
    """1 inside the ellipse, falling to 0 over a thin rim outside, on the ``roi`` grid."""
    cx, cy, ax, ay, ang = e
    x0, y0, x1, y1 = roi
    xs = np.arange(x0, x1, dtype=np.float32) + np.float32(0.5 - cx)
    ys = np.arange(y0, y1, dtype=np.float32) + np.float32(0.5 - cy)
    c, s = np.float32(np.cos(ang)), np.float32(np.sin(ang))
    # the ellipse's own axes, scaled to its semi-axes: a rank-one sum per axis
    u = np.add.outer(ys * (s / np.float32(ax)), xs * (c / np.float32(ax)))
    v = np.add.outer(ys * (c / np.float32(ay)), xs * (-s / np.float32(ay)))
    r: F32 = cv2.magnitude(u, v)
    m = min(ax, ay)
    rim = max(1.0, _RIM * m) / m
    # (1 + rim - r) / rim, clipped to 0..1
    r *= np.float32(-1.0 / rim)
    r += np.float32((1.0 + rim) / rim)
    np.clip(r, 0.0, 1.0, out=r)
    return r


def protect_faces(alpha: F32, faces: Sequence[Face]) -> list[Face]:
    """Keep the faces of people in the foreground: raises ``alpha`` in place.

    ``alpha`` is float32 0..1 at any resolution (the person mask before the
    guard), ``faces`` in 0..1 of it. The guard can only protect a face, and
    only a face the model sees as part of a person; what it raises is
    face-shaped (:func:`face_ellipse`, from the detector's box and keypoints,
    turned with the head), never a rectangle:

    * a face less than half of whose face ellipse is person in ``alpha`` now
      has left the person mask (a track left on a wall after a pan, a face on
      a poster, a stranger removed by ``people=main``, a small full-body
      person whose head the model sees smaller than the box): it is not
      protected, and it is dropped from the returned list (and so from
      tracking);
    * the rest applies while the face is steady: it stayed put (``Face.shift``
      under 5% of its box since the last frame) and looks like its template
      (``Face.match`` at least 0.9: the correlation is blind to gain and
      stays above 0.9 through the 60-frame 0.3x..1.7x exposure ramp), or at
      least 0.8 where its brightness changed by over 10% (``Face.light``):
      clipped highlights lower the correlation of a face in a fast exposure
      swing (30 frames: 0.82). A face that turned or moved (DAVIS dancers:
      0.65-0.85; a swaying person, match 0.95 but a tenth of its box per
      frame, whose held outline trailed a halo: synthetic set mIoU -0.013)
      keeps the model's own answer, and its memory is relearnt from this
      frame, so no stale outline is ever held;
    * each face remembers the highest alpha the model gave each place of its
      head ellipse (``Face.keep``, a 32x32 grid that moves with the face).
      In the head ellipse each place is held at the least of that memory
      over its neighbourhood (3x3 cells): an exposure swing cannot blur what
      the model saw, and the head's outline is never pushed out (a place
      beside the head the model never called person keeps what the model
      says now);
    * the face ellipse (inscribed in the detector's box: eyes, cheeks,
      mouth, always a person's if it is a face) is held at 1 whole, so the
      face stays whole up to its edge where the model bites into it (two of
      the 132 dev portraits lose a cheek to the raw model at normal exposure:
      6% and 15% of the face; holding only the places next to what the model
      saw left 3% of one of them blurred).

    Returns the faces still protected, with what was learnt, to pass in next
    frame.
    """
    h, w = alpha.shape
    out = []
    for f in faces:
        head = face_ellipse(f, (w, h))
        roi = _ellipse_roi(head, w, h)
        if roi is None:
            continue
        x0, y0, x1, y1 = roi
        in_face = _ellipse_mask(face_ellipse(f, (w, h), head=False), roi)
        a = alpha[y0:y1, x0:x1]
        area = float(in_face.sum())
        if area < 1.0 or float((a * in_face).sum()) < _SEEN * area:
            continue  # the model does not see a person's face here: nothing to protect
        seen = cast(F32, cv2.resize(a, (_KEEP_GRID, _KEEP_GRID), interpolation=cv2.INTER_AREA))
        alike = f.match >= _STEADY or (f.match >= _LIT and f.light >= _LIGHT)
        steady = f.shift <= _STILL and alike
        fresh = f.keep is None or f.keep.shape != seen.shape or not steady
        keep = seen if fresh else np.maximum(cast(F32, f.keep), seen)
        out.append(replace(f, keep=keep))
        if not steady:
            continue  # the face turned or moved fast: the model's own answer stands
        held = cv2.resize(_around(keep), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        np.maximum(a, np.minimum(_ellipse_mask(head, roi), held), out=a)
        np.maximum(a, in_face, out=a)
    return out


_K3 = np.ones((3, 3), np.uint8)


def _around(keep: F32) -> F32:
    """What the model once saw at a place and all around it (3x3 cells): the held alpha."""
    return cast(F32, cv2.erode(keep, _K3, borderType=cv2.BORDER_REPLICATE))


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
    return near_main(prob, main), main


def near_main(prob: F32, main: NDArray[np.bool_] | None) -> F32:
    """``prob`` with everything more than 2 pixels from ``main`` (bool, same shape) set to 0:
    what :func:`keep_main` keeps of any map (a new array; ``main`` None: unchanged)."""
    if main is None or main.shape != prob.shape:
        return prob
    keep = cv2.dilate(main.astype(np.uint8), _K5) > 0
    return cast(F32, np.where(keep, prob, np.float32(0.0)).astype(np.float32))
