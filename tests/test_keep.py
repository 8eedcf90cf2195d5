"""Selective unblur: a kept box is sharp and follows a moving object."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blurcam import Settings
from blurcam.keep import KeepTracker, apply_keep, box_from_point, clip_box, iou
from blurcam.pipeline import Stream
from blurcam.settings import EffectSettings
from blurcam.testing import FakeSegmenter

W, H = 320, 240


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """A static textured background and a differently textured 60x50 'object'."""
    rng = np.random.default_rng(1)
    bg = cv2.GaussianBlur(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), (0, 0), 1.2)
    obj = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    cv2.rectangle(obj, (0, 0), (59, 49), (255, 255, 255), 2)
    return bg, obj


def _moving(n: int = 30, scale_to: float = 1.0) -> list[tuple[np.ndarray, tuple[int, ...]]]:
    """Frames of the object moving on a curve (and optionally growing), with true boxes."""
    bg, obj = _scene()
    out = []
    for i in range(n):
        t = i / (n - 1)
        s = 1.0 + (scale_to - 1.0) * t
        ow, oh = round(60 * s), round(50 * s)
        x = round(30 + 180 * t)
        y = round(60 + 60 * np.sin(2 * np.pi * t))
        f = bg.copy()
        f[y : y + oh, x : x + ow] = cv2.resize(obj, (ow, oh), interpolation=cv2.INTER_LINEAR)
        out.append((f, (x, y, ow, oh)))
    return out


@pytest.mark.parametrize("scale_to", [1.0, 1.4])
def test_tracked_box_follows_a_moving_object(scale_to: float) -> None:
    frames = _moving(30, scale_to)
    gray = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f, _ in frames]
    tr = KeepTracker(gray[0], frames[0][1])
    ious = [iou(tr.box, frames[0][1])]
    for g, (_, truth) in zip(gray[1:], frames[1:], strict=True):
        ious.append(iou(tr.update(g), truth))
    assert min(ious) >= 0.7, [round(v, 2) for v in ious]


def test_tracker_holds_still_when_lost() -> None:
    bg, _ = _scene()
    g = cv2.cvtColor(bg, cv2.COLOR_BGR2GRAY)
    tr = KeepTracker(g, (100, 80, 60, 50))
    flat = np.full_like(g, 128)  # everything vanished
    box = tr.update(flat)
    assert iou(box, (100, 80, 60, 50)) > 0.9
    assert tr.lost >= 1


def test_stream_keeps_the_moving_object_sharp() -> None:
    """Through the whole stream: the object stays pixel-exact while the rest is blurred."""
    frames = _moving(30)
    empty = np.zeros((H, W), np.uint8)  # no person at all
    e = EffectSettings(kind="blur", strength=0.8, keep_box=frames[0][1])
    stream = Stream(Settings(effect=e), FakeSegmenter(mask=empty))
    for f, (x, y, w, h) in frames:
        out = stream.process(f)
        inner = (slice(y + 6, y + h - 6), slice(x + 6, x + w - 6))
        assert np.array_equal(out[inner], f[inner])
        kb = stream.keep_box
        assert kb is not None and iou(kb, (x, y, w, h)) >= 0.7
    far = (slice(0, 40), slice(W - 80, W))  # a corner the object never visits
    assert not np.array_equal(out[far], f[far])


def test_keep_point_without_tracking_is_a_fixed_square() -> None:
    f, _ = _scene()
    e = EffectSettings(kind="blur", keep_point=(100, 100), keep_size=0.25, keep_track=False)
    st = Stream(Settings(effect=e), FakeSegmenter(mask=np.zeros((H, W), np.uint8)))
    out = st.process(f)
    side = 0.25 * H
    inner = (slice(round(100 - side / 2) + 4, round(100 + side / 2) - 4),) * 2
    assert np.array_equal(out[inner], f[inner])
    assert st.keep_box is None  # nothing tracked


def test_changing_the_keep_target_restarts_the_tracker() -> None:
    frames = _moving(3)
    seg = FakeSegmenter(mask=np.zeros((H, W), np.uint8))
    st = Stream(Settings(effect=EffectSettings(keep_box=(10, 10, 40, 40))), seg)
    st.process(frames[0][0])
    st.update(Settings(effect=EffectSettings(keep_box=(200, 150, 50, 40))))
    st.process(frames[1][0])
    assert st.keep_box is not None and iou(st.keep_box, (200, 150, 50, 40)) > 0.9
    st.update(Settings(effect=EffectSettings()))
    st.process(frames[2][0])
    assert st.keep_box is None


def test_apply_keep_raises_never_lowers_and_feathers() -> None:
    a = np.zeros((100, 100), np.uint8)
    a[:, :30] = 200
    apply_keep(a, (20, 20, 40, 40))
    assert a[40, 40] == 255 and a[5, 5] == 200 and a[5, 50] == 0
    assert 0 < a[20, 40] < 255  # the feathered border
    assert a[40, 21] >= 200  # existing alpha kept where higher


@settings(max_examples=50, deadline=None)
@given(
    x=st.floats(-50, 400),
    y=st.floats(-50, 300),
    side=st.floats(1, 500),
    w=st.integers(8, 300),
    h=st.integers(8, 300),
)
def test_boxes_always_land_inside_the_frame(
    x: float, y: float, side: float, w: int, h: int
) -> None:
    bx, by, bw, bh = box_from_point((x, y), side, (w, h))
    assert bx >= 0 and by >= 0 and bx + bw <= w + 1e-6 and by + bh <= h + 1e-6
    a = np.zeros((h, w), np.uint8)
    apply_keep(a, clip_box((x, y, side, side), (w, h)))
    assert a.max() == 255 or min(w, h) < 3


def test_tracking_maps_between_working_and_full_resolution() -> None:
    """At 1280x720 the tracker runs on the 480-wide working frame; boxes are in full pixels."""
    frames = [
        (cv2.resize(f, (1280, 720), interpolation=cv2.INTER_NEAREST), (x * 4, y * 3, w * 4, h * 3))
        for f, (x, y, w, h) in _moving(12)
    ]
    e = EffectSettings(kind="bokeh", keep_box=frames[0][1])
    stream = Stream(Settings(effect=e), FakeSegmenter(mask=np.zeros((720, 1280), np.uint8)))
    for f, (x, y, w, h) in frames:
        out = stream.process(f)
        kb = stream.keep_box
        assert kb is not None and iou(kb, (x, y, w, h)) >= 0.7
        inner = (slice(y + 20, y + h - 20), slice(x + 20, x + w - 20))
        assert np.array_equal(out[inner], f[inner])
