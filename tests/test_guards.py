"""Guards: faces never blurred (exposure swings), only the main person kept."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from blurcam import Settings
from blurcam.evaluate import synthetic
from blurcam.face import Face, track_faces
from blurcam.guards import face_search_rect, faces_to_frame, keep_main, protect_faces
from blurcam.pipeline import Stream
from blurcam.settings import GuardSettings
from blurcam.testing import FakeFaceDetector, FakeSegmenter, synthetic_frame

BOX = (0.4, 0.2, 0.6, 0.5)


def _inner(
    box: tuple[float, float, float, float], shape: tuple[int, int], frac: float = 0.8
) -> np.ndarray:
    h, w = shape
    x0, y0, x1, y1 = box
    cx, cy, bw, bh = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    m = np.zeros(shape, bool)
    m[
        int(np.floor((cy - frac * bh / 2) * h)) : int(np.ceil((cy + frac * bh / 2) * h)),
        int(np.floor((cx - frac * bw / 2) * w)) : int(np.ceil((cx + frac * bw / 2) * w)),
    ] = True
    return m


def test_protect_faces_holds_core_and_learns_what_model_saw() -> None:
    alpha = np.zeros((100, 200), np.float32)
    core = _inner(BOX, alpha.shape, 0.6)
    inner = _inner(BOX, alpha.shape, 0.8)
    # frame 1: the model sees the face (all of the inner box is person)
    alpha[inner] = 1.0
    faces = protect_faces(alpha, [Face(BOX, 0.9)])
    assert faces[0].keep is not None and faces[0].keep.min() > 0.99
    # frame 2: the model drops the whole face -> everything it saw is held
    alpha2 = np.zeros_like(alpha)
    protect_faces(alpha2, faces)
    assert alpha2[inner].min() >= 0.5 and alpha2[core].min() == 1.0
    assert alpha2[:, :60].max() == 0.0  # far from the face nothing changes
    # a face seen only in part: its core is forced, the rest only where it was seen
    alpha3 = np.zeros_like(alpha)
    alpha3[core] = 1.0
    faces3 = protect_faces(alpha3, [Face(BOX, 0.9)])
    alpha3[:] = 0.0
    protect_faces(alpha3, faces3)
    assert alpha3[core].min() == 1.0 and (alpha3[inner & ~core] < 0.5).any()
    # a face never seen as part of a person (a poster): not forced at all
    alpha4 = np.zeros_like(alpha)
    protect_faces(alpha4, [Face(BOX, 0.9)])
    assert alpha4.max() == 0.0


class ExposureSegmenter(FakeSegmenter):
    """Finds the disc like FakeSegmenter, but loses it when the frame is dark or blown out."""

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        p = super().__call__(frame)
        mean = float(frame.mean())
        return p if 60 < mean < 170 else np.zeros_like(p)


def test_face_guard_keeps_face_through_exposure_ramp() -> None:
    """The face-guard test: brightness 0.3x -> 1.7x; no face pixel may go to the background."""
    base = synthetic_frame(240, 240, r=0.35)
    gains = synthetic.exposure_gains(40)
    box = (0.42, 0.3, 0.58, 0.6)  # inside the disc
    face = _inner(box, base.shape[:2])
    for guard in (False, True):
        detector = FakeFaceDetector(box)  # square frame: searched whole
        st = Stream(
            Settings(guards=GuardSettings(face=guard, face_interval=10)),
            ExposureSegmenter(),
            face_detector=detector,
        )
        lost = []
        for f in synthetic.exposure_ramp(base, gains):
            st.process(f)
            lost.append(int((st.last_alpha[face] < 128).sum()))
        if guard:
            assert sum(lost) == 0
            assert detector.calls < 15  # a low rate, tracked between
        else:
            assert sum(lost) > 0  # the model does lose it: the test can fail


def test_face_guard_exposure_ramp_real_models(shared_dir: Path) -> None:
    """Real selfie model + real face detector on a dev portrait, as in docs/QUALITY.md."""
    data = shared_dir / "data"
    img = cv2.imread(str(data / "portraits/images/00012.jpg"))
    msk = cv2.imread(str(data / "portraits/masks/00012.png"), 0)
    bg = synthetic.load_background(shared_dir, size=(640, 360))
    frame, truth = synthetic.paste(img, msk, bg, 0, 0, 0.95)
    st = Stream(Settings())
    st.process(frame)
    assert st.composite.faces, "no face found on the reference frame"
    inner = _inner(st.composite.faces[0].box, truth.shape) & (truth > 127)
    for f in synthetic.exposure_ramp(frame, synthetic.exposure_gains(30)):
        st.process(f)
        assert (st.last_alpha[inner] < 128).sum() == 0  # the 0%
    st.close()


def test_face_core_is_rectangle_above_oval_below() -> None:
    """The forced core: the upper corners of the box (head, hair) held, the lower ones (beside the
    chin: background) not; the centre always."""
    alpha = np.zeros((100, 200), np.float32)
    weak = Face(BOX, 0.9, keep=np.full((32, 32), 0.3, np.float32))  # seen, never confident
    protect_faces(alpha, [weak], core=0.8)
    core = np.argwhere(_inner(BOX, alpha.shape, 0.8))
    (ya, xa), (yb, xb) = core.min(axis=0), core.max(axis=0)
    assert alpha[ya + 1, xa + 1] == 1.0 and alpha[ya + 1, xb - 1] == 1.0  # upper corners
    assert alpha[yb - 1, xa + 1] < 0.5 and alpha[yb - 1, xb - 1] < 0.5  # lower corners
    assert alpha[(ya + yb) // 2, xa + 1] == 1.0 and alpha[yb - 1, (xa + xb) // 2] == 1.0


def test_face_guard_remembers_how_sure_the_model_was() -> None:
    """A part of the face the model gave only 0.6 at normal exposure stays foreground when
    the model drops it (the remembered alpha is held, not only confident pixels)."""
    alpha = np.zeros((100, 200), np.float32)
    inner = _inner(BOX, alpha.shape, 0.8)
    alpha[inner] = 0.6
    alpha[_inner(BOX, alpha.shape, 0.4)] = 1.0
    faces = protect_faces(alpha, [Face(BOX, 0.9)], core=0.0)
    alpha[:] = 0.0
    protect_faces(alpha, faces, core=0.0)
    assert alpha[inner].min() >= 0.5


def test_redetection_jitter_does_not_move_the_box() -> None:
    """A re-detection a few pixels off keeps the tracked box (and what the guard learnt
    stays on the face); a detection far off moves it."""
    grey = np.full((90, 160), 128, np.uint8)
    track = Face(BOX, 0.9, age=5, keep=np.ones((32, 32), np.float32))
    near = Face((0.41, 0.21, 0.605, 0.505), 0.8)
    (t,) = track_faces([track], [near], grey)
    assert t.box == BOX and t.age == 0 and t.keep is not None
    far = Face((0.5, 0.3, 0.7, 0.6), 0.8)
    (t,) = track_faces([track], [far], grey)
    assert t.box == far.box and t.keep is not None


def test_face_search_rect() -> None:
    prob = np.zeros((36, 64), np.float32)
    prob[5:, 40:56] = 1.0  # person on the right of a 16:9 frame
    x0, y0, x1, y1 = face_search_rect(prob, (640, 360))
    assert (x1 - x0, y1 - y0) == (360, 360) and x0 == 640 - 360
    assert face_search_rect(prob, (300, 400)) == (0, 0, 300, 400)
    f = faces_to_frame([Face((0.0, 0.0, 0.5, 0.5), 0.9)], (280, 0, 640, 360), (640, 360))
    assert f[0].box == pytest.approx((280 / 640, 0.0, 460 / 640, 0.5))


def _two_people(big_x: float, small_x: float, w: int = 64, h: int = 36) -> np.ndarray:
    p = np.zeros((h, w), np.float32)
    cv2.circle(p, (int(big_x * w), h // 2), 12, 1.0, -1)
    cv2.circle(p, (int(small_x * w), h // 2), 5, 1.0, -1)
    return p


def test_keep_main_picks_large_central_and_follows_it() -> None:
    p = _two_people(0.5, 0.9)
    out, main = keep_main(p, None)
    assert out[18, 32] == 1.0 and out[18, 57] == 0.0 and main[18, 32]
    # a bigger stranger walks in on the left: the tracked person stays the main one
    p2 = p.copy()
    p2[:, :14] = 1.0  # larger than the main person, not touching them
    out2, _ = keep_main(p2, main)
    assert out2[18, 32] == 1.0 and out2[18, 4] == 0.0
    empty, m = keep_main(np.zeros_like(p), main)
    assert not m.any() and empty.max() == 0.0


def test_main_person_only_in_pipeline() -> None:
    """The main-person test: a second, smaller person walking past is blurred away."""
    w, h = 320, 240
    for people, kept in (("all", True), ("main", False)):
        st = Stream(Settings(guards=GuardSettings(face=False, people=people)), FakeSegmenter())
        for t in range(6):
            f = synthetic_frame(w, h, cx=0.45, r=0.3)
            sx = int((0.95 - 0.03 * t) * w)
            cv2.circle(f, (sx, h // 3), 18, (40, 90, 200), -1)
            st.process(f)
            assert st.last_alpha[h // 2, int(0.45 * w)] == 255
            assert bool(st.last_alpha[h // 3, sx] > 127) is kept
