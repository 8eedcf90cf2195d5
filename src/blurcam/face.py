"""Face detection (MediaPipe short-range BlazeFace via LiteRT) and tracking between detections.

The model (``segment/models/face_detection_short_range.tflite``, Apache-2.0,
from mediapipe 0.10.21) takes a 128x128 RGB image in -1..1 and answers, per
each of 896 SSD anchors, a box + 6 keypoints (offsets in input pixels from
the anchor centre: the subject's right eye, left eye, nose tip, mouth
centre, right ear tragion, left ear tragion) and a score logit. Anchors are
not in the file: they are generated here from MediaPipe's ``SsdAnchorsCalculator`` options for this
model (4 layers, strides 8/16/16/16, fixed size), and the boxes decoded as
its ``TensorsToDetectionsCalculator`` does, with weighted non-maximum
suppression.

Detection is robust to exposure swings because the input is gain-normalised
first (mean luminance brought to mid-grey); between detections a face is
followed by normalised cross-correlation of its grey patch at model
resolution, which gain changes do not disturb either. A face the detector
does not confirm when it runs, or that the tracker loses (the camera moved
away, the face left), is dropped at once: a track is never held where no
face is seen.

:class:`FaceDetector` owns its interpreter (one per stream, no globals);
decoding and tracking are pure functions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

import cv2
import numpy as np

from .errors import ModelError
from .frame import F32, U8
from .segment.litert import LiteRTModel
from .segment.registry import bundled_path
from .segment.spec import ModelSpec

__all__ = [
    "FACE_MODEL",
    "FACE_MODEL_SHA256",
    "KEYPOINTS",
    "Face",
    "FaceDetector",
    "decode_faces",
    "letterbox",
    "plausible",
    "ssd_anchors",
    "track_faces",
    "weighted_nms",
]

log = logging.getLogger(__name__)


FACE_MODEL = "face_detection_short_range.tflite"
FACE_MODEL_SHA256 = "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"
_INPUT = 128


@dataclass(frozen=True, slots=True)
class Face:
    """One face: box ``(x0, y0, x1, y1)`` in 0..1 of the frame, detector score.

    ``keypoints`` are the detector's six landmarks ``(x, y)`` in 0..1 of the
    frame (the subject's right eye, left eye, nose tip, mouth centre, right
    ear, left ear; see :data:`KEYPOINTS`), or empty when unknown. ``age``
    counts frames since the detector last confirmed it (0 = just detected);
    ``patch`` is the grey template tracking follows (model resolution), or
    None; ``keep`` is what the face guard learnt of this face (float32 0..1
    on a small grid around the head, see ``guards.protect_faces``), or None;
    ``match`` how well the face still looks like its template (normalised
    correlation of the last tracking step; 1 when just detected) and
    ``shift`` how far it moved in that step, in box sizes, and ``light``
    how much its brightness changed since the template (``|log|`` of the
    ratio of mean grey levels; both 0 when just detected).
    """

    box: tuple[float, float, float, float]
    score: float
    age: int = 0
    patch: U8 | None = None
    keep: F32 | None = None
    keypoints: tuple[tuple[float, float], ...] = ()
    match: float = 1.0
    shift: float = 0.0
    light: float = 0.0

    @property
    def center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2.0, (y0 + y1) / 2.0

    @property
    def size(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return x1 - x0, y1 - y0

    def moved(self, dx: float, dy: float) -> Face:
        """The same face shifted by ``(dx, dy)`` (0..1 of the frame), keypoints included."""
        x0, y0, x1, y1 = self.box
        kps = tuple((x + dx, y + dy) for x, y in self.keypoints)
        return replace(self, box=(x0 + dx, y0 + dy, x1 + dx, y1 + dy), keypoints=kps)


KEYPOINTS = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")


def plausible(face: Face, size: tuple[int, int]) -> bool:
    """Whether the keypoints of ``face`` (in a ``size`` (w, h) frame) are laid out as a face's.

    The detector now and then scores a knee, a fold of a sweater or a patch
    of hair as a face (DAVIS breakdance: scores 0.6-0.7, as high as real
    faces there); its keypoints then land anywhere. A face seen from the
    front or three-quarters has its nose and mouth below the line through
    the eyes, the mouth further down than the nose, the eyes at least a
    quarter of the box width apart and at least 0.7 of the eye-to-mouth
    drop apart (dev portraits and DAVIS faces: 0.28-0.43 and 0.75-1.12;
    the false detections there: 0.12-0.31 and 0.47-0.63). A face without
    keypoints is taken as it is.
    """
    if len(face.keypoints) < 4:
        return True
    w, h = size
    (rx, ry), (lx, ly), (nx, ny), (mx, my) = ((x * w, y * h) for x, y in face.keypoints[:4])
    ex, ey = lx - rx, ly - ry
    eyes = float(np.hypot(ex, ey))
    if eyes < 1e-6:
        return False
    # "down" in the face's frame: the eye line turned a quarter clockwise (image y is down)
    dx, dy = -ey / eyes, ex / eyes
    cx, cy = (rx + lx) / 2.0, (ry + ly) / 2.0
    nose = (nx - cx) * dx + (ny - cy) * dy
    mouth = (mx - cx) * dx + (my - cy) * dy
    return 0.0 < nose < mouth and eyes >= 0.7 * mouth and eyes >= 0.25 * face.size[0] * w


def ssd_anchors(
    input_size: int = _INPUT,
    strides: tuple[int, ...] = (8, 16, 16, 16),
    anchor_offset: float = 0.5,
) -> F32:
    """Anchor centres (N x 2, x then y, in 0..1) of MediaPipe's short-range face model.

    With ``fixed_anchor_size`` and one aspect ratio (plus the interpolated
    scale), each layer adds two anchors per cell, and consecutive layers of
    the same stride share one grid: 16x16x2 + 8x8x6 = 896 anchors.
    """
    out: list[F32] = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        per_cell = 2 * (j - i)
        n = int(np.ceil(input_size / strides[i]))
        ys, xs = np.mgrid[0:n, 0:n].astype(np.float32)
        cx = (xs + anchor_offset) / n
        cy = (ys + anchor_offset) / n
        grid = np.stack([cx.ravel(), cy.ravel()], axis=1)
        out.append(np.repeat(grid, per_cell, axis=0))
        i = j
    return np.concatenate(out).astype(np.float32)


def letterbox(frame: U8, size: int = _INPUT) -> tuple[U8, tuple[float, float, float, float]]:
    """Fit ``frame`` into a ``size`` square keeping its aspect, padding with black.

    Returns the square and ``(sx, sy, ox, oy)``: a point ``u`` in 0..1 of the
    square is ``(u - o) / s`` in 0..1 of the frame.
    """
    h, w = frame.shape[:2]
    k = size / max(w, h)
    nw, nh = max(1, round(w * k)), max(1, round(h * k))
    sq = np.zeros((size, size, 3), np.uint8)
    x0, y0 = (size - nw) // 2, (size - nh) // 2
    sq[y0 : y0 + nh, x0 : x0 + nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
    return sq, (nw / size, nh / size, x0 / size, y0 / size)


def decode_faces(
    regressors: F32,
    logits: F32,
    anchors: F32,
    *,
    min_score: float = 0.5,
    input_size: int = _INPUT,
) -> tuple[F32, F32]:
    """Raw outputs -> (detections N x 16, scores N), both in 0..1 of the input.

    A detection row is the box ``x0, y0, x1, y1`` then the six keypoints as
    ``x, y`` pairs (:data:`KEYPOINTS`). ``regressors`` is (896, 16) or (1,
    896, 16): box centre offset, width, height, then the keypoints' offsets,
    all in input pixels from the anchor centre; ``logits`` (896,) or (1,
    896, 1). Only anchors scoring at least ``min_score`` (after a sigmoid of
    the logit clipped to +-100, as MediaPipe does) are kept.
    """
    reg = np.asarray(regressors, np.float32).reshape(-1, regressors.shape[-1])
    lg = np.clip(np.asarray(logits, np.float64).reshape(-1), -100.0, 100.0)
    scores = 1.0 / (1.0 + np.exp(-lg))
    keep = scores >= min_score
    n_kp = max(0, (reg.shape[1] - 4) // 2)
    if not keep.any():
        return np.zeros((0, 4 + 2 * n_kp), np.float32), np.zeros(0, np.float32)
    r, a, sc = reg[keep], anchors[keep], scores[keep]
    cx = r[:, 0] / input_size + a[:, 0]
    cy = r[:, 1] / input_size + a[:, 1]
    hw = r[:, 2] / input_size / 2.0
    hh = r[:, 3] / input_size / 2.0
    cols = [cx - hw, cy - hh, cx + hw, cy + hh]
    for k in range(n_kp):
        cols += [r[:, 4 + 2 * k] / input_size + a[:, 0], r[:, 5 + 2 * k] / input_size + a[:, 1]]
    return np.stack(cols, axis=1).astype(np.float32), sc.astype(np.float32)


def _iou(box: F32, boxes: F32) -> F32:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return cast(F32, (inter / np.maximum(area + areas - inter, 1e-9)).astype(np.float32))


def weighted_nms(boxes: F32, scores: F32, iou: float = 0.3) -> tuple[F32, F32]:
    """MediaPipe's weighted NMS: overlapping boxes are averaged, weighted by score.

    ``boxes`` is N x 4 (``x0, y0, x1, y1``) or wider: columns after the box
    (keypoints) are averaged alike; overlap is judged on the box alone.
    """
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    out_b, out_s = [], []
    alive = np.ones(len(boxes), bool)
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        ov = _iou(boxes[i], boxes) >= iou
        ov &= alive
        w = scores[ov]
        out_b.append((boxes[ov] * w[:, None]).sum(0) / w.sum())
        out_s.append(scores[i])
        alive &= ~ov
    if not out_b:
        return np.zeros((0, boxes.shape[1]), np.float32), np.zeros(0, np.float32)
    return np.asarray(out_b, np.float32), np.asarray(out_s, np.float32)


def normalise_gain(img: U8, target: float = 118.0) -> U8:
    """Scale brightness so the mean luminance is ``target`` (gain clipped to 0.5..6)."""
    m = float(cv2.mean(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))[0])
    gain = min(6.0, max(0.5, target / max(m, 1.0)))
    if abs(gain - 1.0) < 0.05:
        return img
    return cast(U8, cv2.convertScaleAbs(img, alpha=gain))


def face_spec(path: Path) -> ModelSpec:
    """The face model as the model template sees it: a 128x128 RGB input in -1..1 and the
    bundled file's sha256 (checked at load, as every bundled model's is)."""
    return ModelSpec(
        name="face-short-range",
        path=path,
        input_size=(_INPUT, _INPUT),
        scale=2.0 / 255.0,
        mean=(1.0, 1.0, 1.0),
        sha256=FACE_MODEL_SHA256,
        licence="Apache-2.0 (MediaPipe)",
    )


class FaceDetector:
    """MediaPipe short-range face detector; ``__call__(frame) -> list[Face]``.

    ``path`` defaults to the bundled model, whose sha256 is checked at load.

    Raises:
        ModelError: the model file is missing, altered, or will not load.
    """

    def __init__(
        self, path: Path | None = None, *, threads: int = 1, min_score: float = 0.5
    ) -> None:
        path = path or bundled_path(FACE_MODEL)
        if not path.is_file():
            raise ModelError(f"face model not found: {path}")
        try:
            self._model = LiteRTModel(face_spec(path), threads=threads)
            self._model.allocate()
        except ModelError as e:
            raise ModelError(f"face model: {e}") from e
        names = [o["name"] for o in self._model.outputs]
        self._reg = names.index("regressors") if "regressors" in names else 0
        self._cls = names.index("classificators") if "classificators" in names else len(names) - 1
        self._buf = np.zeros((1, _INPUT, _INPUT, 3), np.float32)
        self._anchors = ssd_anchors()
        self.min_score = min_score

    def __call__(self, frame: U8) -> list[Face]:
        """Faces in a BGR uint8 frame of any size, best first, boxes in 0..1 of the frame;
        detections whose keypoints are not laid out as a face's are left out
        (:func:`plausible`)."""
        sq, (sx, sy, ox, oy) = letterbox(frame)
        sq = normalise_gain(sq)
        rgb = cv2.cvtColor(sq, cv2.COLOR_BGR2RGB)
        np.multiply(rgb, np.float32(2.0 / 255.0), out=self._buf[0], casting="unsafe")
        self._buf -= np.float32(1.0)
        out = self._model.run(self._buf)
        reg, cls = out[self._reg], out[self._cls]
        boxes, scores = decode_faces(reg, cls, self._anchors, min_score=self.min_score)
        boxes, scores = weighted_nms(boxes, scores)
        faces = []
        for b, s in zip(boxes, scores, strict=True):
            x0, x1 = (b[0] - ox) / sx, (b[2] - ox) / sx
            y0, y1 = (b[1] - oy) / sy, (b[3] - oy) / sy
            x0, y0 = max(0.0, float(x0)), max(0.0, float(y0))
            x1, y1 = min(1.0, float(x1)), min(1.0, float(y1))
            kps = tuple(
                (float((b[i] - ox) / sx), float((b[i + 1] - oy) / sy))
                for i in range(4, len(b) - 1, 2)
            )
            face = Face((x0, y0, x1, y1), float(s), keypoints=kps)
            if x1 > x0 and y1 > y0 and plausible(face, (frame.shape[1], frame.shape[0])):
                faces.append(face)
        return faces

    def close(self) -> None:
        self._model.close()

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _patch_rect(face: Face, size: tuple[int, int]) -> tuple[int, int, int, int]:
    w, h = size
    x0, y0, x1, y1 = face.box
    return (
        max(0, int(x0 * w)),
        max(0, int(y0 * h)),
        min(w, int(np.ceil(x1 * w))),
        min(h, int(np.ceil(y1 * h))),
    )


def _with_patch(face: Face, grey: U8) -> Face:
    size = (grey.shape[1], grey.shape[0])
    x0, y0, x1, y1 = _patch_rect(face, size)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return replace(face, patch=None)
    return replace(face, patch=grey[y0:y1, x0:x1].copy())


def _match(win: U8, patch: U8) -> tuple[float, tuple[int, int]]:
    """Best normalised cross-correlation of ``patch`` in ``win``: (score, top-left).

    Coarse to fine: the search runs at half resolution (a sixteenth of the
    work; it was ~0.25 ms a frame at 720p, a tenth of the composite stage),
    then the full-resolution match is taken within 2 pixels of that place.
    Small patches are matched at full resolution directly.
    """
    ph, pw = patch.shape
    if ph < 16 or pw < 16:
        res = cv2.matchTemplate(win, patch, cv2.TM_CCOEFF_NORMED)
        _, best, _, loc = cv2.minMaxLoc(res)
        return float(best), (int(loc[0]), int(loc[1]))
    half = cv2.resize(win, (win.shape[1] // 2, win.shape[0] // 2), interpolation=cv2.INTER_AREA)
    p2 = cv2.resize(patch, (pw // 2, ph // 2), interpolation=cv2.INTER_AREA)
    _, _, _, (cx, cy) = cv2.minMaxLoc(cv2.matchTemplate(half, p2, cv2.TM_CCOEFF_NORMED))
    x0 = min(max(0, 2 * cx - 2), win.shape[1] - pw)
    y0 = min(max(0, 2 * cy - 2), win.shape[0] - ph)
    x1 = min(win.shape[1], x0 + pw + 4)
    y1 = min(win.shape[0], y0 + ph + 4)
    res = cv2.matchTemplate(win[y0:y1, x0:x1], patch, cv2.TM_CCOEFF_NORMED)
    _, best, _, loc = cv2.minMaxLoc(res)
    return float(best), (x0 + int(loc[0]), y0 + int(loc[1]))


def _follow(face: Face, grey: U8, min_match: float) -> Face | None:
    """``face`` moved to where its patch matches best (search window: one box around),
    or None when it matches nowhere well (the camera moved away, the face left).

    A patch without texture matches anywhere: such a face stays where it is
    (the face guard drops it as soon as the person mask leaves it)."""
    if face.patch is None or float(face.patch.std()) < 4.0:
        return replace(face, age=face.age + 1)
    size = (grey.shape[1], grey.shape[0])
    ph, pw = face.patch.shape
    x0, y0, _, _ = _patch_rect(face, size)
    sx0, sy0 = max(0, x0 - pw // 2), max(0, y0 - ph // 2)
    sx1, sy1 = min(size[0], x0 + pw + pw // 2), min(size[1], y0 + ph + ph // 2)
    win = grey[sy0:sy1, sx0:sx1]
    if win.shape[0] < ph or win.shape[1] < pw:
        return None
    best, loc = _match(win, face.patch)
    if not np.isfinite(best) or best < min_match:
        return None
    dx = (sx0 + loc[0] - x0) / size[0]
    dy = (sy0 + loc[1] - y0) / size[1]
    bw, bh = face.size
    shift = float(np.hypot(dx / max(bw, 1e-6), dy / max(bh, 1e-6)))
    ph, pw = face.patch.shape
    now = win[loc[1] : loc[1] + ph, loc[0] : loc[0] + pw]
    light = abs(float(np.log((float(now.mean()) + 1.0) / (float(face.patch.mean()) + 1.0))))
    moved = face.moved(dx, dy)
    return replace(moved, age=face.age + 1, match=float(best), shift=shift, light=light)


_SAME = 0.8  # IoU of a re-detection with its track under which the box jumps


def track_faces(
    tracks: list[Face], detections: list[Face] | None, grey: U8, *, min_match: float = 0.6
) -> list[Face]:
    """Next tracked faces from the previous ones, this frame's detections and its grey image.

    ``detections`` is None on frames where the detector did not run: every
    track is then moved by template matching in ``grey`` (any resolution;
    model resolution is enough), and a track whose face matches nowhere in
    its search window by at least ``min_match`` (normalised correlation) is
    dropped: the camera panned away or the face left, and a held box would
    protect a wall. When the detector ran, its detections are the faces:
    each takes the place (and what the guard learnt) of the track it
    overlaps, and a track no detection confirms is dropped at once. Pure:
    the inputs are not changed.
    """
    moved = [t for t in (_follow(t, grey, min_match) for t in tracks) if t is not None]
    if detections is None:
        return moved
    out = []
    for d in detections:
        db = np.asarray(d.box, np.float32)
        ious = [float(_iou(db, np.asarray([t.box], np.float32))[0]) for t in moved]
        j = int(np.argmax(ious)) if ious else -1
        keep = None
        if j >= 0 and ious[j] > 0.2:
            keep = moved[j].keep  # what the guard learnt follows the face
            if ious[j] >= _SAME:
                # the detector confirms the track: keep its box and keypoints, so
                # detector jitter (a few pixels, more under an exposure swing) does not
                # shift the protected region and what the guard learnt off the face
                d = replace(d, box=moved[j].box, keypoints=moved[j].keypoints or d.keypoints)
        out.append(replace(_with_patch(d, grey), keep=keep))
    return out
