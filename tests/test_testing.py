"""blurcam.testing: the public stand-ins users build their own tests on."""

from __future__ import annotations

import numpy as np

from blurcam import BackgroundBlur, Segmenter
from blurcam.testing import FakeFaceDetector, FakeSegmenter, disc_mask, synthetic_frame


def test_fake_segmenter_has_the_segmenter_shape_and_finds_the_disc() -> None:
    seg = FakeSegmenter()
    assert isinstance(seg, Segmenter)
    prob = seg(synthetic_frame(cx=0.3))
    assert prob.shape == (48, 64) and prob.dtype == np.float32
    truth = disc_mask(64, 48, cx=0.3) > 127
    assert ((prob > 0.5) == truth).mean() > 0.95
    assert seg.calls == 1


def test_the_docstring_recipe_holds() -> None:
    bb = BackgroundBlur(segmenter=FakeSegmenter())
    bb.process(synthetic_frame())
    assert bb.last_alpha is not None
    assert (bb.last_alpha > 127).sum() > 0.9 * (disc_mask() > 127).sum()


def test_fake_face_detector_sees_the_face_unless_told_to_miss_dark_frames() -> None:
    det = FakeFaceDetector((0.4, 0.3, 0.6, 0.6))
    assert det(synthetic_frame())[0].box == (0.4, 0.3, 0.6, 0.6)
    assert det(np.zeros((8, 8, 3), np.uint8))[0].box == (0.4, 0.3, 0.6, 0.6)
    shy = FakeFaceDetector((0.4, 0.3, 0.6, 0.6), misses_below=40)
    assert shy(np.zeros((8, 8, 3), np.uint8)) == []
    assert det.calls == 2 and shy.calls == 1
