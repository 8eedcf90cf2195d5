"""Mask stages: motion-gated temporal smoothing (no lag), fast guided refinement."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blurcam import Settings
from blurcam.evaluate import synthetic
from blurcam.mask import (
    motion_guide,
    motion_map,
    refine_guided,
    settle_alpha,
    sharpen_edge,
    smooth_temporal,
    to_alpha,
)
from blurcam.pipeline import Stream
from blurcam.settings import GuardSettings, MaskSettings
from blurcam.testing import synthetic_frame

MS = MaskSettings()


def _person_cutout() -> tuple[np.ndarray, np.ndarray]:
    """A 'person': a flat ellipse with a head, and its exact mask."""
    img = np.full((200, 120, 3), (40, 90, 200), np.uint8)
    m = np.zeros((200, 120), np.uint8)
    cv2.ellipse(m, (60, 150), (55, 70), 0, 0, 360, 255, -1)
    cv2.circle(m, (60, 55), 35, 255, -1)
    return img, m


class NoisySegmenter:
    """The true mask at 64x36 plus per-frame noise (what a real model's flicker looks like).

    The truth is found from the person colour; the noise is strongest in the
    uncertain band along the edge, plus some random background speckle.
    """

    name = "noisy"
    input_size = (64, 36)

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        m = (np.abs(frame.astype(np.int16) - (40, 90, 200)).sum(axis=2) < 30).astype(np.float32)
        p = cv2.resize(m, self.input_size, interpolation=cv2.INTER_AREA)
        band = (p > 0.02) & (p < 0.98)
        band = cv2.dilate(band.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        p = p + band * self.rng.uniform(-0.35, 0.35, p.shape).astype(np.float32)
        p += (self.rng.random(p.shape) < 0.01) * np.float32(0.6)
        return np.clip(p, 0.0, 1.0).astype(np.float32)

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


def _background(w: int = 320, h: int = 180) -> np.ndarray:
    bg = synthetic_frame(w, h, r=0.0)
    return cv2.GaussianBlur(bg, (0, 0), 3)  # smooth scene: motion is the person's


def _run(frames: list[np.ndarray], mask_settings: MaskSettings) -> list[np.ndarray]:
    st = Stream(Settings(mask=mask_settings, guards=GuardSettings(face=False)), NoisySegmenter())
    out = []
    for f in frames:
        st.process(f)
        out.append(st.last_alpha.copy())
    return out


def test_lag_is_zero_on_moving_person() -> None:
    """The lag test: a person swaying fast; blurcam's mask must not trail them."""
    img, m = _person_cutout()
    path = synthetic.MotionPath(amplitude=0.2, period=30, scale=0.9)
    seq = list(synthetic.moving_person(img, m, _background(), 45, path))
    frames, truths = [f for f, _ in seq], [t for _, t in seq]
    ours = _run(frames, MaskSettings())
    errs = synthetic.lag_errors(ours, truths, 2)
    assert synthetic.lag_frames(ours, truths) == 0
    assert errs[0] < 0.5 * errs[1]


def test_flicker_much_lower_where_nothing_moves() -> None:
    """A still person under a noisy model: the mask must stop boiling."""
    img, m = _person_cutout()
    frame, truth = synthetic.paste(img, m, _background(), 0, 0, 0.9)
    frames, truths = [frame] * 30, [truth] * 30
    raw = _run(frames, MaskSettings(smoothing=0.0, hold=0.0))
    ours = _run(frames, MaskSettings())
    assert synthetic.flicker(ours, truths) < 0.5 * synthetic.flicker(raw, truths)


def test_lag_metric_finds_a_known_delay() -> None:
    img, m = _person_cutout()
    seq = list(synthetic.moving_person(img, m, _background(), 30))
    truths = [t for _, t in seq]
    delayed = [truths[0], truths[0], *truths[:-2]]
    assert synthetic.lag_frames(delayed, truths) == 2
    assert synthetic.lag_frames(truths, truths) == 0


def test_motion_map_ignores_exposure_and_finds_motion() -> None:
    f = _background()
    g0 = motion_guide(f, (64, 36))
    assert motion_map(g0, None, MS) is None
    assert motion_map(g0, g0, MS).max() == 0.0
    brighter = motion_guide(cv2.convertScaleAbs(f, alpha=1.0, beta=20), (64, 36))
    assert motion_map(brighter, g0, MS).mean() < 0.05  # a global gain change is not motion
    moved = f.copy()
    cv2.rectangle(moved, (100, 50), (160, 120), (255, 255, 255), -1)
    mm = motion_map(motion_guide(moved, (64, 36)), g0, MS)
    assert mm[12:22, 22:30].min() == 1.0 and mm[:, 45:].max() == 0.0


def test_still_pixels_hold_a_dropped_region_moving_pixels_follow() -> None:
    prev = np.zeros((20, 20), np.float32)
    prev[2:8, 2:8] = 1.0  # a hand, confidently person last frame
    now = np.zeros_like(prev)  # the model dropped it
    still = np.zeros_like(prev)
    held = smooth_temporal(now, prev, MS, still)
    assert held[4, 4] >= MS.hold - 1e-6  # kept (alpha ramp maps 0.6 to 0.5)
    moved = np.ones_like(prev)
    assert smooth_temporal(now, prev, MS, moved).max() == 0.0  # follows at once
    # over a few still frames the hold decays: no permanent ghost
    p = prev
    for _ in range(5):
        p = smooth_temporal(now, p, MS, still)
    assert p.max() < MS.edge_low  # gone from the alpha within 5 frames
    for _ in range(9):
        p = smooth_temporal(now, p, MS, still)
    assert p.max() < 0.05


def test_confident_pixels_follow_at_once_without_motion_map() -> None:
    prev = np.zeros((10, 10), np.float32)
    now = prev.copy()
    now[:2, :2] = 1.0
    assert np.allclose(smooth_temporal(now, prev, MS), now)
    unsure = prev.copy()
    unsure[:2, :2] = 0.5
    assert smooth_temporal(unsure, prev, MS).max() < 0.5  # leans on history


def test_scene_cut_drops_history() -> None:
    prev = np.zeros((8, 8), np.float32)
    now = np.ones_like(prev)
    out = smooth_temporal(now, prev, MS, np.zeros_like(prev))
    assert np.array_equal(out, now)


def test_settle_alpha_damps_jitter_passes_real_changes_and_converges() -> None:
    prev = np.zeros((6, 8), np.uint8)
    prev[:, 4:] = 255
    prev[:, 3] = 128  # the soft edge column
    now = prev.copy()
    now[:, 3] = 168  # the edge jittered by 40 levels: damped to 20% of the step
    now[0, :3] = 255  # a limb appeared: followed at once
    now[1, 4:] = 0  # a region dropped by more than alpha_step: followed at once
    now[2, 0] = 2  # a change too small to blend: taken as is (no uint8 rounding ghost)
    out = settle_alpha(now.copy(), prev, MS)
    assert abs(int(out[3, 3]) - round(128 + 0.2 * 40)) <= 1
    assert (out[0, :3] == 255).all() and (out[1, 4:] == 0).all() and out[2, 0] == 2
    assert settle_alpha(now.copy(), None, MS).tobytes() == now.tobytes()
    off = MaskSettings(alpha_hold=0.0)
    assert settle_alpha(now.copy(), prev, off).tobytes() == now.tobytes()
    # a steady new value is reached exactly within a few frames: no stuck offset
    a = prev
    for _ in range(20):
        a = settle_alpha(now.copy(), a, MS)
    assert a.tobytes() == now.tobytes()


def test_photo_path_does_not_settle_on_the_previous_frame() -> None:
    """process_image has no past: the alpha of a video frame before it must not leak in."""
    img, m = _person_cutout()
    frame, _ = synthetic.paste(img, m, _background(), 0, 0, 0.9)
    shifted, _ = synthetic.paste(img, m, _background(), 12, 0, 0.9)
    alphas = []
    for hold in (MS.alpha_hold, 0.0):  # the same noisy model draws in both streams
        s = Settings(mask=MaskSettings(alpha_hold=hold), guards=GuardSettings(face=False))
        st = Stream(s, NoisySegmenter(1))
        st.process(shifted)
        st.process_image(frame)
        assert st.last_alpha is not None
        alphas.append(st.last_alpha.copy())
    assert np.array_equal(alphas[0], alphas[1])


def test_refine_snaps_edge_to_image() -> None:
    """A blocky low-res mask of a sharp vertical edge ends on the image edge after refinement."""
    w, h = 480, 270
    guide = np.full((h, w, 3), 30, np.uint8)
    guide[:, 203:] = 220
    truth = np.zeros((h, w), bool)
    truth[:, 203:] = True
    prob = np.zeros((9, 16), np.float32)
    prob[:, 7:] = 1.0  # model edge at 7/16*480 = 210: 7 px off, blurry when upsampled
    plain = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR) > 0.6
    refined = to_alpha(refine_guided(prob, guide, MS), MS) > 0.5
    assert (refined != truth).sum() < 0.85 * (plain != truth).sum()


def test_sharpen_edge_steep_above_the_edge_soft_below() -> None:
    """The person edge (ramp midpoint) maps to 0.5; slope k above it, k/4 below; 0 is off."""
    mid = (MS.edge_low + MS.edge_high) / 2.0
    k = MS.refine_sharpen
    p = np.array([[0.0, mid - 0.1, mid, mid + 0.02, mid + 0.2, 1.0]], np.float32)
    out = sharpen_edge(p.copy(), MS)
    assert out.dtype == np.float32
    np.testing.assert_allclose(
        out[0], [0.0, 0.5 - 0.1 * k / 4, 0.5, 0.5 + 0.02 * k, 1.0, 1.0], atol=1e-6
    )
    off = MaskSettings(refine_sharpen=0.0)
    assert np.array_equal(sharpen_edge(p.copy(), off), p)


@settings(max_examples=25, deadline=None)
@given(
    w=st.integers(8, 300),
    h=st.integers(8, 200),
    pw=st.integers(4, 64),
    ph=st.integers(4, 64),
    seed=st.integers(0, 1000),
)
def test_refine_and_alpha_shapes_and_range(w: int, h: int, pw: int, ph: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    guide = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    prob = rng.random((ph, pw), dtype=np.float32)
    q = refine_guided(prob, guide, MS)
    a = to_alpha(q, MS)
    assert a.shape == (h, w) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    s = smooth_temporal(
        prob, rng.random((ph, pw), dtype=np.float32), MS, rng.random((ph, pw), dtype=np.float32)
    )
    assert s.min() >= 0.0 and s.max() <= 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hold": 1.0},
        {"motion_low": 20.0, "motion_high": 10.0},
        {"refine_coarse": 4},
        {"refine_sharpen": 0.5},
        {"refine_sharpen_video": 0.5},
        {"alpha_hold": 1.0},
        {"alpha_step": 1.5},
    ],
)
def test_mask_settings_validation(kwargs: dict[str, float]) -> None:
    from blurcam import SettingsError

    with pytest.raises(SettingsError):
        MaskSettings(**kwargs)  # type: ignore[arg-type]


def test_exposure_gains_ramp() -> None:
    g = synthetic.exposure_gains(41)
    assert g[0] == pytest.approx(1.0) and g[-1] == pytest.approx(1.0)
    assert g.min() == pytest.approx(0.3) and g.max() == pytest.approx(1.7)


def test_refine_step_follows_person_size() -> None:
    from blurcam.mask import refine_step

    big = np.zeros((36, 64), np.float32)
    big[2:, 10:50] = 1.0  # head and shoulders filling the frame
    small = np.zeros((36, 64), np.float32)
    small[20:30, 30:34] = 1.0  # a distant full-body person
    assert refine_step(big, 640, MS) == 4
    assert refine_step(small, 270, MS) == 1
    no_person = refine_step(np.zeros((36, 64), np.float32), 270, MS)
    assert no_person == min(4, max(1, round(270 / MS.refine_coarse)))
