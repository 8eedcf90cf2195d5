"""Face detector: anchors, decoding, NMS, letterbox, model check, tracking."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from blurcam.errors import ModelError
from blurcam.face import (
    FACE_MODEL,
    Face,
    FaceDetector,
    decode_faces,
    letterbox,
    plausible,
    ssd_anchors,
    track_faces,
    weighted_nms,
)
from blurcam.segment.registry import bundled_path


def test_anchors_match_mediapipe_layout() -> None:
    a = ssd_anchors()
    assert a.shape == (896, 2)
    # first layer: 16x16 grid, two anchors per cell, centres at (i + 0.5) / 16
    assert np.allclose(a[0], [0.5 / 16, 0.5 / 16]) and np.allclose(a[1], a[0])
    assert np.allclose(a[2], [1.5 / 16, 0.5 / 16])
    # second group: 8x8 grid, six anchors per cell
    assert np.allclose(a[512:518], [0.5 / 8, 0.5 / 8])
    assert np.allclose(a[-1], [7.5 / 8, 7.5 / 8])


def test_decode_places_box_relative_to_anchor() -> None:
    anchors = ssd_anchors()
    reg = np.zeros((1, 896, 16), np.float32)
    logits = np.full((1, 896, 1), -10.0, np.float32)
    i = 512 + 6 * (3 * 8 + 4)  # 8x8 grid cell x=4, y=3: centre (4.5/8, 3.5/8)
    reg[0, i, :4] = [6.4, -12.8, 32.0, 64.0]  # +0.05, -0.1 in x, y; 0.25 x 0.5 box
    reg[0, i, 4:6] = [-12.8, 0.0]  # first keypoint (right eye): 0.1 left of the anchor
    reg[0, i, 14:16] = [0.0, 25.6]  # last keypoint (left ear): 0.2 below it
    logits[0, i, 0] = 5.0
    boxes, scores = decode_faces(reg, logits, anchors)
    assert boxes.shape == (1, 16) and scores[0] == pytest.approx(1 / (1 + np.exp(-5.0)))
    cx, cy = 4.5 / 8 + 0.05, 3.5 / 8 - 0.1
    assert np.allclose(boxes[0, :4], [cx - 0.125, cy - 0.25, cx + 0.125, cy + 0.25], atol=1e-6)
    ax, ay = 4.5 / 8, 3.5 / 8
    assert np.allclose(boxes[0, 4:6], [ax - 0.1, ay], atol=1e-6)
    assert np.allclose(boxes[0, 14:16], [ax, ay + 0.2], atol=1e-6)
    empty, _ = decode_faces(reg, np.full_like(logits, -200.0), anchors)  # no overflow warning
    assert empty.shape == (0, 16)


def test_weighted_nms_merges_overlaps_keeps_separate() -> None:
    boxes = np.array(
        [[0.1, 0.1, 0.3, 0.3], [0.12, 0.1, 0.32, 0.3], [0.6, 0.6, 0.8, 0.8]], np.float32
    )
    scores = np.array([0.9, 0.9, 0.7], np.float32)
    b, s = weighted_nms(boxes, scores)
    assert len(b) == 2 and s[0] == pytest.approx(0.9)
    assert np.allclose(b[0], [0.11, 0.1, 0.31, 0.3], atol=1e-6)
    # keypoint columns after the box are averaged with it
    kps = np.array([[0.2, 0.2], [0.22, 0.2], [0.7, 0.7]], np.float32)
    bk, _ = weighted_nms(np.hstack([boxes, kps]), scores)
    assert bk.shape == (2, 6) and np.allclose(bk[0, 4:], [0.21, 0.2], atol=1e-6)


def test_letterbox_maps_back() -> None:
    frame = np.zeros((90, 160, 3), np.uint8)
    frame[30:60, 40:80] = 255
    sq, (sx, sy, ox, oy) = letterbox(frame)
    assert sq.shape == (128, 128, 3)
    ys, xs = np.nonzero(sq[:, :, 0] > 127)
    # the white block's left/top edge in the square, back to frame coordinates
    assert (xs.min() / 128 - ox) / sx == pytest.approx(40 / 160, abs=0.02)
    assert (ys.min() / 128 - oy) / sy == pytest.approx(30 / 90, abs=0.03)


def test_detector_refuses_altered_model(tmp_path: Path) -> None:
    bad = tmp_path / FACE_MODEL
    shutil.copy(bundled_path(FACE_MODEL), bad)
    data = bytearray(bad.read_bytes())
    data[-100] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="corrupt or replaced"):
        FaceDetector(bad)
    with pytest.raises(ModelError, match="not found"):
        FaceDetector(tmp_path / "missing.tflite")


def test_detector_finds_nothing_in_noise_and_runs_any_size() -> None:
    rng = np.random.default_rng(1)
    with FaceDetector() as d:
        for shape in ((37, 53, 3), (240, 320, 3), (720, 1280, 3)):
            faces = d(rng.integers(0, 256, shape, dtype=np.uint8))
            assert all(0.0 <= v <= 1.0 for f in faces for v in f.box)
        assert d(np.zeros((120, 160, 3), np.uint8)) == []


def test_detector_finds_real_face_in_person(shared_dir: Path) -> None:
    img = cv2.imread(str(shared_dir / "data/portraits/images/00002.jpg"))
    mask = cv2.imread(str(shared_dir / "data/portraits/masks/00002.png"), 0)
    with FaceDetector() as d:
        for gain in (1.0, 0.3, 1.7):  # gain-normalised input: exposure does not matter
            faces = d(cv2.convertScaleAbs(img, alpha=gain))
            assert len(faces) == 1 and faces[0].score > 0.8
            x0, y0, x1, y1 = faces[0].box
            h, w = mask.shape
            inner = mask[int(y0 * h) : int(y1 * h), int(x0 * w) : int(x1 * w)]
            assert (inner > 127).mean() > 0.9


def _scene(dx: int) -> np.ndarray:
    g = np.zeros((72, 128), np.uint8)
    cv2.circle(g, (40 + dx, 30), 10, 200, -1)
    cv2.circle(g, (36 + dx, 27), 2, 50, -1)
    cv2.circle(g, (44 + dx, 27), 2, 50, -1)
    return g


def test_tracking_follows_moving_face_and_drops_it_at_once() -> None:
    """Between detections a face is followed (keypoints too); a face the detector does not
    confirm, or that the tracker cannot find (the camera panned away), is dropped at once."""
    g0 = _scene(0)
    kps = ((36 / 128, 27 / 72), (44 / 128, 27 / 72))
    det = Face((28 / 128, 18 / 72, 52 / 128, 42 / 72), 0.9, keypoints=kps)
    tracks = track_faces([], [det], g0)
    assert len(tracks) == 1 and tracks[0].patch is not None and tracks[0].match == 1.0
    g1 = _scene(6)
    tracks = track_faces(tracks, None, g1)
    assert tracks[0].center[0] == pytest.approx((40 + 6) / 128, abs=1.5 / 128)
    assert tracks[0].keypoints[0][0] == pytest.approx((36 + 6) / 128, abs=1.5 / 128)
    assert tracks[0].age == 1 and tracks[0].match > 0.9
    assert tracks[0].shift == pytest.approx(6 / 24, abs=0.05) and tracks[0].light < 0.05
    darker = track_faces(track_faces([], [det], g0), None, (g0 * 0.5).astype(np.uint8))
    assert darker[0].shift < 0.05 and darker[0].light > 0.5  # the light changed, not the face
    # the detector runs and does not find it: gone, not held for 30 frames
    assert track_faces(tracks, [], g1) == []
    # the camera pans: the face is no longer anywhere near its box
    rng = np.random.default_rng(3)
    wall = cv2.GaussianBlur(rng.integers(0, 256, (72, 128), dtype=np.uint8), (5, 5), 2)
    assert track_faces(tracks, None, wall) == []


def test_plausible_keypoints() -> None:
    """Keypoints of a face (eyes level, nose and mouth below) pass; scattered ones (a knee
    the detector scored as a face) do not; a turned head keeps its roll."""
    box = (0.4, 0.4, 0.6, 0.6)
    size = (100, 100)
    face = ((0.46, 0.46), (0.54, 0.46), (0.5, 0.51), (0.5, 0.55))
    assert plausible(Face(box, 0.9, keypoints=face), size)
    assert plausible(Face(box, 0.9), size)  # no keypoints: taken as it is
    tilted = tuple((0.5 + (y - 0.5), 0.5 - (x - 0.5)) for x, y in face)  # turned 90 degrees
    assert plausible(Face(box, 0.9, keypoints=tilted), size)
    upside = tuple((1.0 - x, 1.0 - y) for x, y in face)  # turned 180 degrees
    assert plausible(Face(box, 0.9, keypoints=upside), size)
    close_eyes = ((0.49, 0.46), (0.51, 0.46), (0.5, 0.51), (0.5, 0.6))
    assert not plausible(Face(box, 0.9, keypoints=close_eyes), size)
    mouth_above = ((0.46, 0.46), (0.54, 0.46), (0.5, 0.51), (0.5, 0.4))
    assert not plausible(Face(box, 0.9, keypoints=mouth_above), size)


def test_detection_keeps_what_the_track_learnt() -> None:
    g0 = _scene(0)
    box = (28 / 128, 18 / 72, 52 / 128, 42 / 72)
    learnt = np.ones((32, 32), np.float32)
    tracks = [Face(box, 0.9, keep=learnt, patch=g0[18:42, 28:52].copy())]
    out = track_faces(tracks, [Face(box, 0.95)], g0)
    assert len(out) == 1 and out[0].score == 0.95 and out[0].keep is learnt


def test_coarse_to_fine_match_finds_the_exact_place() -> None:
    import cv2

    from blurcam.face import _match

    rng = np.random.default_rng(5)
    win = cv2.GaussianBlur(rng.integers(0, 256, (90, 120), dtype=np.uint8), (5, 5), 1.5)
    for x, y in ((0, 0), (13, 7), (37, 21), (120 - 40, 90 - 32)):
        patch = win[y : y + 32, x : x + 40].copy()
        best, loc = _match(win, patch)
        assert loc == (x, y) and best > 0.99
    small = win[5:15, 9:21].copy()  # under 16 px: matched at full resolution
    assert _match(win, small)[1] == (9, 5)
