"""Mask stages: motion-aligned temporal smoothing (no lag), fast guided refinement, the
photo views, the rescue of dropped people."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blurcam import Settings
from blurcam.evaluate import synthetic
from blurcam.mask import (
    align_previous,
    apply_floor,
    explained,
    matte,
    matte_photo,
    person_thickness,
    refine_guided,
    refine_weight,
    rescue_floor,
    segment_views,
    sharpen_edge,
    smooth_temporal,
    to_alpha,
    uncertainty,
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
    """The true mask at 256x144 plus per-frame noise (what a real model's flicker looks like).

    The truth is found from the person colour; the noise is strongest in the
    uncertain band along the edge, plus some random background speckle.
    """

    name = "noisy"
    input_size = (256, 144)

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
    raw = _run(frames, MaskSettings(smoothing=0.0))
    ours = _run(frames, MaskSettings())
    assert synthetic.flicker(ours, truths) < 0.5 * synthetic.flicker(raw, truths)


def test_lag_metric_finds_a_known_delay() -> None:
    img, m = _person_cutout()
    seq = list(synthetic.moving_person(img, m, _background(), 30))
    truths = [t for _, t in seq]
    delayed = [truths[0], truths[0], *truths[:-2]]
    assert synthetic.lag_frames(delayed, truths) == 2
    assert synthetic.lag_frames(truths, truths) == 0


def _textured(w: int = 256, h: int = 144, seed: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w), dtype=np.uint8), (0, 0), 2.0)


def test_align_previous_moves_history_with_the_image() -> None:
    """The previous mask follows the image's motion (optical flow); an exposure change is
    not a mismatch; where the image changed unexplained, history is not trusted."""
    g0 = _textured()
    prev = np.zeros(g0.shape, np.float32)
    prev[40:100, 80:140] = 1.0
    g1 = np.roll(g0, 6, axis=1)  # the camera panned: everything moved 6 px right
    flow = cv2.DISOpticalFlow.create(cv2.DISOpticalFlow_PRESET_ULTRAFAST)
    warped, reliable = align_previous(prev, g1, g0, flow, MS)
    assert warped[70, 140:144].min() > 0.9 and warped[70, 80:84].max() < 0.1  # moved along
    assert np.median(reliable[20:-20, 20:-20]) > 0.9
    still, _ = align_previous(prev, g1, g0, None, MS)  # no flow: history in place
    assert np.array_equal(still, prev)
    brighter = cv2.convertScaleAbs(g0, alpha=1.0, beta=25)
    _, rel = align_previous(prev, brighter, g0, flow, MS)
    assert np.median(rel) > 0.9  # a global exposure change is not a mismatch
    changed = g0.copy()
    changed[50:90, 100:160] = 250  # something new (a white shirt) stepped in
    _, rel = align_previous(prev, changed, g0, flow, MS)
    assert rel[60:80, 115:145].mean() < 0.3 and np.median(rel) > 0.9


def test_history_steadies_only_where_the_warp_is_trusted() -> None:
    """Where the aligned history is trusted it weighs at least ``hold`` (a one-frame dropout
    is halved, not followed); where it is not, the model is followed at once (no lag)."""
    prev = np.zeros((20, 20), np.float32)
    prev[2:8, 2:8] = 1.0  # confidently person last frame
    now = np.zeros_like(prev)  # the model dropped it for a frame
    trusted = np.ones_like(prev)
    held = smooth_temporal(now, prev, MS, trusted)
    assert held[4, 4] == pytest.approx(MS.hold)
    assert smooth_temporal(now, prev, MS, np.zeros_like(prev)).max() == 0.0  # follows at once
    p = prev  # the model keeps dropping it: gone within two frames, no ghost
    for _ in range(2):
        p = smooth_temporal(now, p, MS, trusted)
    assert p.max() < 0.5


def test_confident_pixels_follow_at_once_without_reliability() -> None:
    prev = np.zeros((10, 10), np.float32)
    now = prev.copy()
    now[:2, :2] = 1.0
    np.testing.assert_allclose(smooth_temporal(now, prev, MS), now, atol=1e-3)
    unsure = prev.copy()
    unsure[:2, :2] = 0.5
    assert smooth_temporal(unsure, prev, MS).max() < 0.5  # leans on history


def test_uncertainty_is_mediapipes() -> None:
    p = np.array([0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0], np.float32)
    u = uncertainty(p)
    assert u[3] == pytest.approx(1.0, abs=1e-3) and u[0] == pytest.approx(0.0, abs=1e-3)
    np.testing.assert_allclose(u, u[::-1], atol=0.02)  # symmetric about 0.5 (256 levels)
    assert (np.diff(u[:4]) > 0).all() and u[2] > 1.0 - abs(2 * 0.3 - 1)  # flatter than |2p-1|


def test_scene_cut_drops_history() -> None:
    prev = np.zeros((8, 8), np.float32)
    now = np.ones_like(prev)
    out = smooth_temporal(now, prev, MS, np.ones_like(prev))
    assert np.array_equal(out, now)


def test_photo_path_does_not_use_the_previous_frame() -> None:
    """process_image has no past: a video frame before it must not leak in."""
    img, m = _person_cutout()
    frame, _ = synthetic.paste(img, m, _background(), 0, 0, 0.9)
    shifted, _ = synthetic.paste(img, m, _background(), 12, 0, 0.9)
    alphas = []
    for before in (shifted, None):
        seg = NoisySegmenter(1)
        st = Stream(Settings(guards=GuardSettings(face=False)), seg)
        if before is not None:
            st.process(before)
        else:
            seg(shifted)  # the same noise draws in both streams
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
    """The person edge (``refine_edge``) maps to 0.5; slope k above it, k/4 below; 0 is off."""
    mid = MS.refine_edge
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
        {"warp_low": 20.0, "warp_high": 10.0},
        {"flow_width": 8},
        {"refine_coarse": 4},
        {"refine_sharpen": 0.5},
        {"refine_sharpen_video": 0.5},
        {"refine_thick_low": 0.3, "refine_thick_high": 0.2},
        {"refine_upscale_low": 2.0, "refine_upscale_high": 1.0},
        {"photo_views": 3},
        {"photo_width": 16},
        {"matte_band": -1.0},
        {"matte_radius": 0},
        {"matte_eps": 0.0},
        {"matte_iters": -1},
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


def test_refinement_fades_out_on_thin_people_and_without_detail() -> None:
    """Head-and-shoulders (thick) gets the refinement, a small full-body figure (thin) does
    not; nor does a photo the model sees at about its own resolution."""
    portrait = np.zeros((64, 64), np.float32)
    cv2.ellipse(portrait, (32, 72), (44, 36), 0, 0, 360, 1.0, -1)  # shoulders, cut by the frame
    cv2.circle(portrait, (32, 24), 18, 1.0, -1)  # head
    figure = np.zeros((64, 64), np.float32)
    figure[20:60, 30:34] = 1.0  # a distant standing person
    assert person_thickness(portrait) > 0.2 > 0.05 > person_thickness(figure)
    assert person_thickness(np.zeros_like(figure)) == 0.0
    assert refine_weight(portrait, MS, (480, 480)) == 1.0
    assert refine_weight(figure, MS, (480, 480)) == 0.0
    assert refine_weight(portrait, MS, (64, 64)) == 0.0  # nothing finer than the model's grid
    assert refine_weight(portrait, MaskSettings(refine=False), (480, 480)) == 0.0
    # weight 0: the fit is the plain upsample (a photo, or video without refine_fit)
    guide = np.random.default_rng(0).integers(0, 256, (240, 240, 3), dtype=np.uint8)
    plain = cv2.resize(figure, (240, 240), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(refine_guided(figure, guide, MS, photo=True), plain, atol=1e-6)
    no_fit = MaskSettings(refine_fit=False)
    np.testing.assert_allclose(refine_guided(figure, guide, no_fit), plain, atol=1e-6)


def test_explained_is_the_fits_r_squared() -> None:
    """1 where the mask's edge is an image edge, about 0 on noise and where the mask is flat."""
    rng = np.random.default_rng(1)
    p = np.zeros((40, 40), np.float32)
    p[:, 20:] = 1.0
    edge = p.copy()  # the image has the same step
    noise = rng.random((40, 40)).astype(np.float32)
    for img, lo, hi in ((edge, 0.9, 1.0), (noise, 0.0, 0.5)):
        mean_i, mean_p = cv2.blur(img, (5, 5)), cv2.blur(p, (5, 5))
        cov = cv2.blur(img * p, (5, 5)) - mean_i * mean_p
        var_i = cv2.blur(img * img, (5, 5)) - mean_i * mean_i
        a = (cov / (var_i + np.float32(1e-3))).astype(np.float32)
        r2 = explained(a, cov, p, mean_p, 2)
        assert r2.dtype == np.float32 and r2.min() >= 0.0 and r2.max() <= 1.0
        assert lo <= float(r2[20, 19]) <= hi and lo <= float(r2[20, 20]) <= hi
        assert float(r2[20, 5]) == pytest.approx(0.0, abs=1e-3)  # flat mask: nothing to explain


def test_video_refines_a_thin_person_only_where_the_image_explains_the_edge() -> None:
    """A thin figure against a plain wall moves its edge toward the image edge; against
    clutter it keeps the model's shape, more than a full refinement does (a whole limb
    inside one window is only averaged)."""
    figure = np.zeros((64, 64), np.float32)
    figure[16:60, 29:35] = 0.9  # the model's figure: working x 109..130 at 240 px
    plain = cv2.resize(figure, (240, 240), interpolation=cv2.INTER_LINEAR)
    row = 150

    def right(a: np.ndarray) -> int:
        return int(np.flatnonzero(a[row] > 0.5)[-1])

    for edge in (128, 132):  # the person in the image ends at x = edge - 1
        wall = np.full((240, 240, 3), 200, np.uint8)
        wall[60:225, 109:edge] = 40
        refined = refine_guided(figure, wall, MS)
        assert abs(right(refined) - (edge - 1)) < abs(right(plain) - (edge - 1))
    blocks = np.random.default_rng(2).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    clutter = cv2.resize(blocks, (240, 240), interpolation=cv2.INTER_NEAREST)
    full = MaskSettings(refine_thick_low=0.0, refine_thick_high=0.0)  # refine in full
    kept = np.mean((refine_guided(figure, clutter, MS) > 0.5) == (plain > 0.5))
    frayed = np.mean((refine_guided(figure, clutter, full) > 0.5) == (plain > 0.5))
    assert kept > 0.998 and kept > frayed


def _head_on_wall(shift: int = 0, blur: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A head-and-shoulders photo (200x240: a skin-and-sweater shape on a two-tone wall), its
    exact mask, and an alpha whose edge is ``shift`` px outside the true one (softened)."""
    img = np.empty((240, 200, 3), np.uint8)
    img[:, :100] = (190, 200, 205)  # a light wall
    img[:, 100:] = (90, 120, 60)  # and a darker one: the person crosses both
    truth = np.zeros((240, 200), np.uint8)
    cv2.ellipse(truth, (100, 250), (95, 70), 0, 0, 360, 255, -1)  # shoulders
    cv2.circle(truth, (100, 95), 55, 255, -1)  # head
    img[truth > 0] = (60, 90, 170)  # skin and jumper of one colour
    img[180:][truth[180:] > 0] = (120, 40, 40)
    grown = cv2.dilate(truth, np.ones((2 * shift + 1,) * 2, np.uint8)) if shift else truth
    alpha = grown.astype(np.float32) / 255.0
    if blur:
        alpha = cv2.GaussianBlur(alpha, (0, 0), blur)
    return img, truth, alpha


def _iou(a: np.ndarray, truth: np.ndarray) -> float:
    p, g = a > 0.5, truth > 127
    return float((p & g).sum() / (p | g).sum())


def test_matte_puts_the_edge_on_the_colour_edge() -> None:
    img, truth, alpha = _head_on_wall(shift=6, blur=2)
    out = matte(alpha, img, 12.0, MS)
    assert out.dtype == np.float32 and out.shape == alpha.shape
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert _iou(out, truth) > 0.98 > 0.8 > _iou(alpha, truth)
    assert alpha.max() <= 1.0 and not np.shares_memory(out, alpha)  # a new array
    # outside the band (12 px from alpha's own edge) nothing changes
    fg = (alpha > 0.5).astype(np.uint8)
    far = np.maximum(
        cv2.distanceTransform(fg, cv2.DIST_L2, 5), cv2.distanceTransform(1 - fg, cv2.DIST_L2, 5)
    )
    np.testing.assert_allclose(out[far > 16], alpha[far > 16], atol=1e-3)


def test_matte_leaves_what_it_cannot_judge() -> None:
    img, _, alpha = _head_on_wall()
    np.testing.assert_array_equal(matte(np.zeros_like(alpha), img, 12.0, MS), 0.0)
    np.testing.assert_array_equal(matte(np.ones_like(alpha), img, 12.0, MS), 1.0)
    np.testing.assert_array_equal(matte(alpha, img, 0.0, MS), alpha)
    flat = np.full_like(img, 128)  # no colour to go by: smooth across the band, no new edge
    assert _iou(matte(alpha, flat, 12.0, MS), alpha * 255) > 0.9


def test_matte_solver_never_returns_nan_when_the_system_loses_definiteness() -> None:
    """In float32 the matting system can stop being positive definite (one dev portrait
    diverged to nan after 14 steps): the solver stops and keeps its best iterate."""
    from blurcam.mask import _solve_matte

    img, _, alpha = _head_on_wall(shift=6, blur=2)
    colour = img.astype(np.float32) / 255.0
    indefinite = np.full(alpha.shape, -10.0, np.float32)  # L + C indefinite
    out = _solve_matte(colour, alpha, indefinite, MS)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out, alpha)  # nothing better was found: the start


def test_matte_photo_follows_the_refinement_weight() -> None:
    img, truth, alpha = _head_on_wall(shift=6, blur=2)
    prob = cv2.resize(alpha, (64, 64), interpolation=cv2.INTER_AREA)  # the model's grid
    # this head is thinner than a real portrait's (person_thickness 0.13): count it as thick
    thick = MaskSettings(refine_thick_low=0.05, refine_thick_high=0.1)
    assert refine_weight(prob, thick, (200, 240)) == 1.0
    assert _iou(matte_photo(alpha, img, prob, thick), truth) > 0.98
    # half way up the thickness ramp, half the matte: the edge lies between
    half = MaskSettings(refine_thick_low=0.03, refine_thick_high=0.23)
    assert refine_weight(prob, half, (200, 240)) == pytest.approx(0.5, abs=0.01)
    blended = matte_photo(alpha, img, prob, half)
    np.testing.assert_allclose(
        blended, 0.5 * alpha + 0.5 * matte_photo(alpha, img, prob, thick), atol=0.01
    )
    assert matte_photo(alpha, img, prob, MaskSettings(matte=False)) is alpha
    thin = np.zeros((64, 64), np.float32)
    thin[10:60, 30:33] = 1.0  # a thin full-body figure: no refinement, no matte
    assert matte_photo(alpha, img, thin, MS) is alpha


def _two_people(faint: float = 0.6) -> np.ndarray:
    raw = np.zeros((36, 64), np.float32)
    cv2.circle(raw, (20, 18), 10, 0.95, -1)  # a person the model is sure of
    cv2.circle(raw, (48, 20), 7, faint, -1)  # a second one, in dark clothes: barely above 0.5
    return raw


def test_rescue_floor_gives_back_a_person_a_stage_dropped() -> None:
    raw = _two_people()
    smoothed = raw.copy()
    smoothed[raw == np.float32(0.6)] = 0.4  # a stage pulled the faint person below 0.5
    floor = rescue_floor(smoothed, raw, MS)
    assert floor is not None and floor[20, 48] == pytest.approx(0.75) and floor[18, 20] == 0.0
    alpha = to_alpha(smoothed.copy(), MS)
    assert apply_floor(alpha, floor)[20, 48] >= 0.5
    assert rescue_floor(raw, raw, MS) is None  # nothing dropped: nothing to do
    trimmed = raw.copy()
    trimmed[13:20, 41:55] = 0.4  # a region kept in part is left to the stages
    assert rescue_floor(trimmed, raw, MS) is None
    speck = _two_people()
    speck[30:32, 2:4] = 0.9  # a speck far smaller than the people: not a person
    speck_smoothed = speck.copy()
    speck_smoothed[30:32, 2:4] = 0.2
    assert rescue_floor(speck_smoothed, speck, MS) is None
    # video: a region the model saw on this frame only (a flicker) is not brought back
    assert rescue_floor(smoothed, raw, MS, raw_prev=_two_people(faint=0.0)) is None
    assert rescue_floor(smoothed, raw, MS, raw_prev=raw) is not None


def test_segment_views_average_the_photo_and_its_mirror() -> None:
    """A model that sees only the left half of its input: the mirror view halves what it saw,
    and the half-pixel views are moved back into place."""

    def left_eyed(frame: np.ndarray) -> np.ndarray:
        g = cv2.resize(frame[:, :, 0], (32, 24), interpolation=cv2.INTER_AREA)
        p = (g > 127).astype(np.float32)
        p[:, 16:] = 0.0
        return p

    frame = np.zeros((96, 128, 3), np.uint8)
    frame[24:72, 16:48] = 255
    first = left_eyed(frame)
    assert np.array_equal(segment_views(left_eyed, frame, first, 1), first)
    two = segment_views(left_eyed, frame, first, 2)
    assert two[12, 8] == pytest.approx(0.5) and two.dtype == np.float32
    four = segment_views(left_eyed, frame, first, 4)
    assert four.shape == first.shape and abs(float(four[12, 8]) - 0.5) < 0.05


def test_guided_alpha_is_the_three_steps_in_one_pass() -> None:
    """guided_alpha == apply_floor(to_alpha(apply_guided(...))), bit for bit, with and
    without a fit and a floor."""
    from blurcam.mask import apply_floor, apply_guided, guided_alpha, to_alpha

    rng = np.random.default_rng(3)
    grey = rng.integers(0, 256, (54, 96), dtype=np.uint8)
    b = rng.random((27, 48), dtype=np.float32)
    floor = (rng.random((18, 32), dtype=np.float32) > 0.8).astype(np.float32) * 0.6
    for a in (rng.random((27, 48), dtype=np.float32) * 2 - 1, np.zeros((27, 48), np.float32)):
        for fl in (floor, None):
            want = apply_floor(to_alpha(apply_guided(a, b, grey), MS), fl)
            assert np.array_equal(guided_alpha(a, b, grey, MS, fl), want)
