from __future__ import annotations

import numpy as np
import pytest

from blurcam import BackgroundBlur, Settings, SettingsError
from blurcam.pipeline import Stream, as_bgr
from blurcam.settings import EffectSettings, MaskSettings
from conftest import FakeSegmenter, disc_mask, synthetic_frame


def test_person_pixels_exact_background_changed(frame: np.ndarray) -> None:
    bb = BackgroundBlur(strength=0.8, segmenter=FakeSegmenter())
    out = bb.process(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8
    alpha = bb.last_alpha
    assert alpha is not None and alpha.shape == frame.shape[:2] and alpha.dtype == np.uint8
    person = alpha == 255
    back = alpha == 0
    assert person.mean() > 0.15 and back.mean() > 0.3
    assert np.array_equal(out[person], frame[person])
    diff = np.abs(out.astype(int) - frame.astype(int)).sum(axis=2)
    assert (diff[back] > 0).mean() > 0.5  # the striped background is blurred


def test_alpha_matches_true_mask(frame: np.ndarray) -> None:
    bb = BackgroundBlur(segmenter=FakeSegmenter())
    bb.process(frame)
    truth = disc_mask() > 127
    pred = bb.last_alpha > 127
    iou = (truth & pred).sum() / (truth | pred).sum()
    assert iou > 0.95


def test_strength_zero_is_identity(frame: np.ndarray) -> None:
    bb = BackgroundBlur(strength=0.0, segmenter=FakeSegmenter())
    assert np.array_equal(bb.process(frame), frame)


def test_stronger_blur_removes_more_detail(frame: np.ndarray) -> None:
    import cv2

    def detail(s: float) -> float:
        out = BackgroundBlur(strength=s, segmenter=FakeSegmenter()).process(frame)
        back = disc_mask() == 0
        lap = cv2.Laplacian(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.CV_32F)
        return float(np.abs(lap[back]).mean())

    assert detail(0.2) > detail(0.5) > detail(1.0)


def test_reset_forgets_history(frame: np.ndarray) -> None:
    st = Stream(Settings(mask=MaskSettings(smoothing=0.9)), FakeSegmenter())
    st.process(frame)
    assert st.frames == 1
    st.reset()
    assert st.frames == 0 and st.last_alpha is None


def test_infer_false_reuses_mask(frame: np.ndarray) -> None:
    seg = FakeSegmenter()
    st = Stream(Settings(), seg)
    st.process(frame)
    st.process(frame, infer=False)
    assert seg.calls == 1


def test_settings_validation() -> None:
    with pytest.raises(SettingsError):
        EffectSettings(strength=1.5)
    with pytest.raises(SettingsError):
        EffectSettings(kind="sparkles")
    with pytest.raises(SettingsError):
        MaskSettings(smoothing=1.0)
    with pytest.raises(ValueError):  # SettingsError is a ValueError
        BackgroundBlur(strength=-0.1)


@pytest.mark.parametrize(
    "img",
    [
        np.zeros((7, 9), np.uint8),
        np.zeros((7, 9, 1), np.uint8),
        np.zeros((7, 9, 4), np.uint8),
        np.zeros((7, 9, 3), np.uint16),
        np.zeros((7, 9, 3), np.float32),
    ],
)
def test_as_bgr_accepts_odd_inputs(img: np.ndarray) -> None:
    out = as_bgr(img)
    assert out.shape == (7, 9, 3) and out.dtype == np.uint8


def test_odd_sizes_keep_shape() -> None:
    for w, h in [(1, 1), (3, 5), (33, 17)]:
        f = synthetic_frame(max(w, 8), max(h, 8))[:h, :w]
        out = BackgroundBlur(segmenter=FakeSegmenter()).process(f)
        assert out.shape == (h, w, 3)


def test_main_person_survives_frames_without_inference() -> None:
    import cv2

    from blurcam.settings import GuardSettings

    f = synthetic_frame(320, 240, cx=0.45, r=0.3)
    cv2.circle(f, (300, 40), 15, (40, 90, 200), -1)  # a second, small "person" in a corner
    st = Stream(Settings(guards=GuardSettings(face=False, people="main")), FakeSegmenter())
    st.process(f)
    assert st.last_alpha is not None and st.last_alpha[40, 300] == 0
    st.process(f, infer=False)
    assert st.last_alpha[40, 300] == 0  # the carried mask keeps only the main person
    assert st.last_alpha[120, 144] == 255
