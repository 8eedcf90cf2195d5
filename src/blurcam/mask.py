"""Mask stages: temporal smoothing at model resolution, then image-guided refinement.

Everything here is a pure function over numpy arrays. History (the previous
mask) goes *in* as an argument, as in MediaPipe's smoothing calculator; the
caller (``pipeline.Stream``) owns it.

Conventions: ``prob`` is float32 HxW in 0..1 at model resolution; ``guide`` is
uint8 HxWx3 BGR at working resolution; ``alpha`` is float32 0..1 (working
resolution) or uint8 0..255 (full resolution, 255 = person).
"""

from __future__ import annotations

from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

from .settings import MaskSettings
from .upscale import upscale_linear

__all__ = [
    "apply_guided",
    "guided_coefficients",
    "is_scene_cut",
    "is_still",
    "motion_guide",
    "motion_map",
    "moved_fraction",
    "refine_guided",
    "refine_step",
    "settle_alpha",
    "sharpen_edge",
    "smooth_temporal",
    "to_alpha",
    "upsample_alpha",
    "working_size",
]

F32 = NDArray[np.float32]
U8 = NDArray[np.uint8]


def is_scene_cut(prob: F32, prev: F32, threshold: float) -> bool:
    """True when the mask changed so much that history would only smear (a cut, a jump)."""
    return float(cv2.norm(prob, prev, cv2.NORM_L1)) / prob.size > threshold


def motion_guide(frame: U8, size: tuple[int, int]) -> U8:
    """Grey uint8 copy of ``frame`` at ``size`` (w, h): what :func:`motion_map` compares.

    Averaged over neighbouring pixels so camera noise cancels; at model
    resolution it costs a few tens of microseconds from the working frame.
    """
    g = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    if (g.shape[1], g.shape[0]) == size:
        return np.ascontiguousarray(g)
    # below 2x, bilinear already averages 2x2 neighbours: as quiet as INTER_AREA
    # here, at a tenth of its cost (0.26 -> 0.03 ms from the 480 px frame)
    fast = g.shape[1] < 2 * size[0] and g.shape[0] < 2 * size[1]
    interp = cv2.INTER_LINEAR if fast else cv2.INTER_AREA
    return cast(U8, cv2.resize(g, size, interpolation=interp))


def motion_map(guide: U8, prev_guide: U8 | None, settings: MaskSettings) -> F32 | None:
    """Where the image moved since the last frame: float32 0..1 (1 = moved), or None.

    The absolute grey difference, less its median (a global exposure or
    gain change is not motion), spread by one pixel (an edge that moves
    changes the pixels on both sides) and mapped linearly from
    ``motion_low`` (still) to ``motion_high`` (moved), in 0..255 grey levels.
    """
    if prev_guide is None or prev_guide.shape != guide.shape:
        return None
    d, med = _difference(guide, prev_guide)
    moved = cv2.dilate(d, _K3)
    lo = settings.motion_low + med
    m = (moved.astype(np.float32) - np.float32(lo)) * np.float32(
        1.0 / (settings.motion_high - settings.motion_low)
    )
    return cast(F32, np.clip(m, 0.0, 1.0, out=m))


_K3 = np.ones((3, 3), np.uint8)


def _difference(guide: U8, ref: U8) -> tuple[U8, float]:
    """``|guide - ref|`` and its median (every 4th pixel): a global exposure or gain
    change moves every pixel alike, so motion is measured above the median."""
    d = cast(U8, cv2.absdiff(guide, ref))
    return d, float(np.median(d[::4, ::4]))


def moved_fraction(guide: U8, ref: U8, settings: MaskSettings) -> float:
    """Share of pixels that changed by more than ``motion_high`` grey levels (less the median)."""
    d, med = _difference(guide, ref)
    _, moved = cv2.threshold(d, settings.motion_high + med, 255, cv2.THRESH_BINARY)
    return cv2.countNonZero(moved) / d.size


def is_still(guide: U8, ref: U8 | None, settings: MaskSettings) -> bool:
    """True when the image is as it was at the last model run, up to noise and exposure.

    Then the model would give the same mask again (up to its own noise,
    which :func:`smooth_temporal` holds back anyway), so the pipeline carries
    the last mask instead of running it (at most ``still_reuse`` frames in a
    row), and applies the last fit of the refinement to the current image, so
    the edge follows what little moved. Both guides are at model resolution;
    "still" is at most ``still_moved`` of the pixels changed by more than
    ``motion_high`` grey levels since the last model run (not the last
    frame, so a slow drift adds up and runs the model). A moving person
    changes far more than that (DAVIS: 7-27% between frames; the synthetic
    set's moving person never passes), so there is no lag. On a talking
    head, 1% skips the model on ~half of the frames at the accuracy 0.5%
    had when the carried alpha was kept as it was (docs/QUALITY.md).
    """
    if settings.still_reuse == 0 or ref is None or ref.shape != guide.shape:
        return False
    return moved_fraction(guide, ref, settings) <= settings.still_moved


def smooth_temporal(
    prob: F32, prev: F32 | None, settings: MaskSettings, motion: F32 | None = None
) -> F32:
    """Blend the new probability with the previous mask where that cannot cause lag.

    Two gates decide the weight of history per pixel:

    * confidence ``|2p - 1|``: an unsure pixel (near 0.5, the boiling edge)
      leans on history with weight ``smoothing * (1 - confidence)``;
    * motion (from :func:`motion_map`): where the image did not change, a
      change of the mask is the model's noise, not the scene's, so history
      is held with at least ``hold`` even for confident pixels (a hand the
      model drops for a frame stays). Where the image moved, only the
      confidence gate applies: a confident pixel follows motion at once, so
      the mask does not lag.

    Without a motion map only the confidence gate applies. A scene cut drops
    history. Returns a new float32 array.
    """
    if prev is None or settings.smoothing == 0.0 or prev.shape != prob.shape:
        return cast(F32, prob.copy())
    if is_scene_cut(prob, prev, settings.scene_cut):
        return cast(F32, prob.copy())
    conf = np.abs(prob * 2.0 - 1.0)
    w_prev = np.float32(settings.smoothing) * (1.0 - conf)
    if motion is not None and motion.shape == prob.shape:
        still = 1.0 - motion
        still *= np.float32(settings.hold)
        w_prev = np.maximum(w_prev, still)
    return cast(F32, (prob + w_prev * (prev - prob)).astype(np.float32, copy=False))


def working_size(frame_size: tuple[int, int], width: int) -> tuple[int, int]:
    """(w, h) of the working resolution: ``width`` wide (never upscaled), same aspect."""
    w, h = frame_size
    if w <= width:
        return w, h
    return width, max(1, round(h * width / w))


def _box(x: F32, r: int) -> F32:
    k = (2 * r + 1, 2 * r + 1)
    return cast(F32, cv2.boxFilter(x, cv2.CV_32F, k, borderType=cv2.BORDER_REFLECT))


def refine_guided(prob: F32, guide: U8, settings: MaskSettings, *, photo: bool = False) -> F32:
    """Edge-aware refinement of the mask by the image (fast guided filter).

    He et al.'s guided filter with the luminance as guide, in its "fast"
    form: the linear coefficients ``a, b`` are fitted on a coarser grid, then
    upsampled and applied to the full-detail guide, so the mask edge snaps
    to image edges (hair, fingers) at a fraction of the cost.
    ``refine_radius`` is in pixels of that coarse grid, whose step follows
    the person's size (:func:`refine_step`): a head-and-shoulders person gets
    a wide window that follows hair, a small full-body person a fine one
    that keeps thin arms and legs. Written with ``cv2.boxFilter`` because
    ``cv2.ximgproc`` is not in opencv-headless. On the dev portraits this
    beats a full-resolution guided filter (r 2..32, eps 1e-4..1e-2) and the
    colour guided filter (10x slower) on boundary F; see docs/QUALITY.md.

    Two departures from the textbook filter, both measured on the dev sets
    (docs/QUALITY.md, "Edges"): the probability is sharpened about the
    person edge first (:func:`sharpen_edge`), so the fit sees a step and puts
    it on the image edge instead of reproducing the model's blurry ramp; and
    the coefficients are not box-averaged a second time, which rounded the
    snapped edge off again (and cost two box filters). ``photo`` sharpens
    both sides of the edge alike and with slope ``refine_sharpen``; video
    frames use ``refine_sharpen_video`` (see :func:`sharpen_edge`).
    Returns float32 0..1 at the guide's resolution.

    The two halves are :func:`guided_coefficients` (the fit, on the coarse
    grid) and :func:`apply_guided` (at the guide's resolution), so that a
    pipeline may run them on different threads.
    """
    i = cast(U8, cv2.cvtColor(guide, cv2.COLOR_BGR2GRAY) if guide.ndim == 3 else guide)
    a, b = guided_coefficients(prob, i, settings, photo=photo)
    return apply_guided(a, b, i)


def guided_coefficients(
    prob: F32, grey: U8, settings: MaskSettings, *, photo: bool = False
) -> tuple[F32, F32]:
    """The guided filter's linear coefficients ``a, b`` on its coarse grid (see
    :func:`refine_guided`); ``grey`` is the luminance at working resolution.

    With ``refine`` off, ``a`` is 0 and ``b`` the probability itself, so
    :func:`apply_guided` is a plain bilinear upsample.
    """
    h, w = grey.shape[:2]
    if not settings.refine:
        return np.zeros_like(prob), prob
    sub = refine_step(prob, h, settings)
    lw, lh = max(1, w // sub), max(1, h // sub)
    # an exact 2x bilinear shrink is the 2x2 mean (= INTER_AREA) at a fraction of the cost
    interp = cv2.INTER_LINEAR if (lw * 2, lh * 2) == (w, h) else cv2.INTER_AREA
    il = cv2.resize(grey, (lw, lh), interpolation=interp).astype(np.float32)
    il *= np.float32(1.0 / 255.0)
    pl = sharpen_edge(
        cast(F32, cv2.resize(prob, (lw, lh), interpolation=cv2.INTER_LINEAR)),
        settings,
        slope=settings.refine_sharpen if photo else settings.refine_sharpen_video,
        below=1.0 if photo else 0.25,
    )
    r = settings.refine_radius
    mean_i = _box(il, r)
    mean_p = _box(pl, r)
    cov_ip = _box(il * pl, r) - mean_i * mean_p
    var_i = _box(il * il, r) - mean_i * mean_i
    a: F32 = cov_ip / (var_i + np.float32(settings.refine_eps))
    b: F32 = mean_p - a * mean_i
    return a, b


def apply_guided(a: F32, b: F32, grey: U8) -> F32:
    """``a * I + b`` at the resolution of ``grey`` (coefficients upsampled bilinearly):
    the refined probability, float32 (0..1 up to the filter's overshoot)."""
    h, w = grey.shape[:2]
    if a.shape != (h, w):
        a = cast(F32, cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR))
        b = cast(F32, cv2.resize(b, (w, h), interpolation=cv2.INTER_LINEAR))
    else:
        a = a.copy()
    fi = grey.astype(np.float32)
    fi *= np.float32(1.0 / 255.0)
    a *= fi
    a += b
    return a


def sharpen_edge(
    p: F32, settings: MaskSettings, *, slope: float | None = None, below: float = 0.25
) -> F32:
    """Push a probability toward 0/1 on either side of the person edge, in place.

    The edge is the alpha ramp's midpoint ``(edge_low + edge_high) / 2``; it
    maps to 0.5, with slope ``slope`` (default ``refine_sharpen``) above it
    and ``below`` times that below (a quarter by default), clipped to 0..1
    (slope 0: unchanged). Above the edge
    the model is sure enough that a step is right, and the guided filter then
    moves that step onto the image edge instead of reproducing the model's
    blurry ramp. Below it the probability stays softer: a step there (slope 8
    on both sides: portrait boundary F +0.008, DAVIS mIoU -0.002) made the
    filter pull dark ground next to a full-body person (a shadow at the feet)
    into the mask; the quarter slope keeps DAVIS as it was and half of the
    portrait gain. A still photo (``below`` 1) takes the full gain: see
    docs/QUALITY.md, "Edges".
    """
    k = settings.refine_sharpen if slope is None else slope
    if k == 0.0:
        return p
    p -= np.float32((settings.edge_low + settings.edge_high) / 2.0)
    p *= np.float32(k * below)
    # above the edge 1/below times the slope below: max() picks the steeper side for p > 0
    np.maximum(p, p * np.float32(1.0 / below), out=p)
    p += np.float32(0.5)
    np.clip(p, 0.0, 1.0, out=p)
    return p


def settle_alpha(alpha: U8, prev: U8 | None, settings: MaskSettings) -> U8:
    """Damp the small frame-to-frame changes of the working-resolution alpha, in place.

    Where the alpha changed by less than ``alpha_step`` since the last frame
    (``prev``, this function's previous output), the new value becomes the
    blend ``alpha_hold * prev + (1 - alpha_hold) * alpha``; larger changes
    pass unchanged. The refined edge jitters by a fraction of a pixel from
    frame to frame (model noise, sub-pixel camera shake, re-snapping of the
    guided filter), which moves its soft ramp by small amounts: that is the
    temporal change DAVIS counts where nothing moved, and the motion gate of
    :func:`smooth_temporal` cannot hold it back on a hand-held video, where
    every textured pixel moves. A real change of the scene (a limb moving,
    a region appearing) changes the alpha by more than the step and is
    followed at once, so there is no lag; a drift below the step is followed
    over a few frames (never held for good: each frame closes
    ``1 - alpha_hold`` of the gap). On DAVIS, together with
    ``refine_sharpen_video`` 4: temporal change 0.853 -> 0.765 at the same
    mIoU and boundary F; synthetic lag stays 0 frames.

    Changes of at most ``0.5 / (1 - alpha_hold)`` levels are not blended, so
    uint8 rounding cannot leave a pixel stuck a level or two off the new
    value. Runs in uint8 (about 25 us at 480x270). Returns ``alpha``.
    """
    h = settings.alpha_hold
    if prev is None or h == 0.0 or prev.shape != alpha.shape:
        return alpha
    diff = cv2.absdiff(alpha, prev)
    least = int(0.5 / (1.0 - h)) + 1
    small = cv2.inRange(diff, least, max(least, round(settings.alpha_step * 255.0)))
    held = cv2.addWeighted(alpha, 1.0 - h, prev, h, 0.0)
    cv2.copyTo(held, small, alpha)
    return alpha


def refine_step(prob: F32, guide_height: int, settings: MaskSettings) -> int:
    """Coarse-grid step (1..4 guide pixels) for :func:`refine_guided`, from the person's height.

    One step per ``refine_coarse`` guide pixels of person height (rows where
    ``prob`` > 0.5); the whole frame height with no person. At 720p (guide
    270 px high) a seated person gets step 2-3: the filter's box sums run on
    a quarter of the pixels or fewer, which is most of its cost.
    """
    rows = np.flatnonzero((prob > 0.5).any(axis=1))
    ph = (rows[-1] - rows[0] + 1) / prob.shape[0] * guide_height if rows.size else guide_height
    return int(min(4, max(1, round(ph / settings.refine_coarse))))


def to_alpha(q: F32, settings: MaskSettings) -> F32:
    """Map probability to alpha: a soft ramp between ``edge_low`` and ``edge_high``."""
    lo, hi = settings.edge_low, settings.edge_high
    a = (q - np.float32(lo)) * np.float32(1.0 / (hi - lo))
    return cast(F32, np.clip(a, 0.0, 1.0, out=a))


def upsample_alpha(alpha: F32 | U8, size: tuple[int, int], out: U8 | None = None) -> U8:
    """Alpha at working resolution (float 0..1 or uint8) -> uint8 0..255 at ``size`` (w, h)."""
    a8 = cast(U8, alpha if alpha.dtype == np.uint8 else cv2.convertScaleAbs(alpha, alpha=255.0))
    if a8.shape[1] == size[0] and a8.shape[0] == size[1]:
        if out is not None:
            out[...] = a8
            return out
        return a8
    return upscale_linear(a8, size, out)
