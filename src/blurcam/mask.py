"""Mask stages: temporal smoothing at model resolution, then image-guided refinement.

Everything here is a pure function over numpy arrays. History (the previous
mask, the previous grey frame, the optical-flow object) goes *in* as an
argument, as in MediaPipe's smoothing calculator; the caller
(``pipeline.Stream``) owns it.

Conventions: ``prob`` is float32 HxW in 0..1 at model resolution; ``guide`` is
uint8 HxWx3 BGR at working resolution; ``alpha`` is float32 0..1 (working
resolution) or uint8 0..255 (full resolution, 255 = person).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import cv2
import numpy as np
from numpy.typing import NDArray

from ._jit import Kernel
from .frame import F32, U8
from .settings import MaskSettings
from .upscale import upscale_linear

__all__ = [
    "Motion",
    "align_previous",
    "apply_floor",
    "apply_guided",
    "explained",
    "flow_size",
    "guided_alpha",
    "guided_coefficients",
    "is_scene_cut",
    "is_still",
    "matte",
    "matte_photo",
    "measure_motion",
    "motion_guide",
    "moved_fraction",
    "person_thickness",
    "refine_guided",
    "refine_step",
    "refine_weight",
    "rescue_floor",
    "sharpen_edge",
    "smooth_temporal",
    "to_alpha",
    "uncertainty",
    "upsample_alpha",
    "warp",
    "working_size",
]


_K3 = np.ones((3, 3), np.uint8)


def is_scene_cut(prob: F32, prev: F32, threshold: float) -> bool:
    """True when the mask changed so much that history would only smear (a cut, a jump)."""
    return float(cv2.norm(prob, prev, cv2.NORM_L1)) / prob.size > threshold


def motion_guide(frame: U8, size: tuple[int, int]) -> U8:
    """Grey uint8 copy of ``frame`` at ``size`` (w, h): what :func:`align_previous` and
    :func:`is_still` compare.

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


def uncertainty(prob: F32) -> F32:
    """How unsure the model is of each pixel: float32 0..1 (1 at p = 0.5, 0 when sure).

    MediaPipe's ``segmentation_smoothing_calculator``: one minus the squared
    certainty ``1 - H(p)`` (binary entropy), by its polynomial in
    ``(p - 0.5)^2``, tabulated at 256 levels of ``p``. Flatter near 0.5 than
    ``1 - |2p - 1|``: a pixel at 0.3 is still "unsure".
    """
    return cast(F32, cv2.LUT(cv2.convertScaleAbs(prob, alpha=255.0), _UNCERTAINTY))


def _uncertainty_poly(p: NDArray[np.float64]) -> NDArray[np.float64]:
    x = (p - 0.5) ** 2
    poly = x * (5.68842 + x * (-0.748699 + x * (-57.8051 + x * (291.309 + x * -624.717))))
    return 1.0 - np.minimum(poly, 1.0)


# tabulated at the 256 levels of p (a weight needs no finer steps): two table look-ups
# instead of a dozen array operations (0.06 -> 0.01 ms at 256x144)
_UNCERTAINTY = _uncertainty_poly(np.arange(256) / 255.0).astype(np.float32)


def flow_size(size: tuple[int, int], settings: MaskSettings) -> tuple[int, int] | None:
    """(w, h) at which :func:`align_previous` measures motion: at most ``flow_width`` wide
    (never upscaled), or None when ``flow_width`` is 0 (history held in place)."""
    if settings.flow_width == 0:
        return None
    return working_size(size, settings.flow_width)


@dataclass(frozen=True, slots=True)
class Motion:
    """How this frame relates to the frame of the last model run (:func:`measure_motion`).

    ``maps`` are OpenCV remap coordinates (float32 HxW x, y): for every pixel
    of this frame, where it was in that frame (None: no flow, history held in
    place); ``reliable`` is float32 0..1, 1 where the moved frame matches
    this one. Both at the guides' resolution.
    """

    maps: tuple[F32, F32] | None
    reliable: F32


_MIN_FLOW_SIDE = 16


def measure_motion(
    guide: U8, prev_guide: U8, flow: cv2.DISOpticalFlow | None, settings: MaskSettings
) -> Motion:
    """The image half of :func:`align_previous`: where this frame's pixels were, and how sure.

    ``prev_guide``/``guide`` are the grey frames (uint8) of the last model
    run and of this one, at model resolution. ``flow`` (OpenCV's DIS
    optical flow, ultrafast preset; owned by the stream) finds, for every
    pixel of this frame, where it was in the last one, at
    :func:`flow_size` (a quarter of a millisecond at 128x72); the previous
    grey frame is warped there (bilinear) and compared with this one:
    reliable is 1 where they match to ``warp_low`` grey levels, 0 from
    ``warp_high`` (a pixel that appeared from behind a limb, motion the
    flow missed, a blur), after subtracting the median residual so an
    exposure change does not count as a mismatch. It needs no mask, so it
    may run while the model does.
    """
    h, w = guide.shape
    warped_guide, maps = prev_guide, None
    fsize = flow_size((w, h), settings)
    # DIS needs a dozen pixels or more a side: a tiny frame's history stays in place
    if flow is not None and fsize is not None and min(fsize) >= _MIN_FLOW_SIDE:
        g1: NDArray[np.generic] = guide
        g0: NDArray[np.generic] = prev_guide
        if fsize != (w, h):
            g1 = cv2.resize(guide, fsize, interpolation=cv2.INTER_AREA)
            g0 = cv2.resize(prev_guide, fsize, interpolation=cv2.INTER_AREA)
        f = np.asarray(flow.calc(g1, g0, None), np.float32)  # type: ignore[call-overload,unused-ignore]
        if fsize != (w, h):
            f = cast(F32, cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR))
            f *= np.float32(w / fsize[0])
        gx = np.arange(w, dtype=np.float32)[None, :]
        gy = np.arange(h, dtype=np.float32)[:, None]
        maps = (cast(F32, f[..., 0] + gx), cast(F32, f[..., 1] + gy))
        warped_guide = warp(prev_guide, maps)
    err, med = _difference(guide, warped_guide)
    r = (np.float32(settings.warp_high + med) - err.astype(np.float32)) * np.float32(
        1.0 / (settings.warp_high - settings.warp_low)
    )
    return Motion(maps, cast(F32, np.clip(r, 0.0, 1.0, out=r)))


def warp(img: NDArray[Any], maps: tuple[F32, F32] | None) -> NDArray[Any]:
    """``img`` moved by :attr:`Motion.maps` (bilinear, edges replicated); as it is without."""
    if maps is None:
        return img
    return cv2.remap(img, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def align_previous(
    prev: F32,
    guide: U8,
    prev_guide: U8,
    flow: cv2.DISOpticalFlow | None,
    settings: MaskSettings,
) -> tuple[F32, F32]:
    """The previous mask moved to where its pixels are now, and where that is trustworthy.

    ``prev`` is last frame's mask (float32 0..1) and ``prev_guide``/``guide``
    the grey frames of last frame and this one, all at model resolution:
    :func:`measure_motion`, then the mask warped by it. Returns the warped
    mask and its reliability (float32 0..1). With ``flow`` None, history
    stays in place.
    """
    m = measure_motion(guide, prev_guide, flow, settings)
    return cast(F32, warp(prev, m.maps)), m.reliable


def smooth_temporal(
    prob: F32, prev: F32 | None, settings: MaskSettings, reliable: F32 | None = None
) -> F32:
    """Blend the new probability with the (motion-aligned) previous mask: steadier, never late.

    ``prev`` is last frame's result, already moved to where its pixels are
    now (:func:`align_previous`), and ``reliable`` where that move is
    trustworthy (0..1). The weight of history per pixel is, as in MediaPipe's
    smoothing calculator, ``smoothing * uncertainty(p)`` (:func:`uncertainty`):
    where the model is sure it is followed at once, where it is unsure
    (the boiling edge) the aligned history steadies it. Where the warp is
    reliable, history weighs at least ``hold`` even for sure pixels: the
    model's answer on a few consecutive frames, aligned, is averaged, which
    removes its frame-to-frame noise (DAVIS: mIoU, boundary F and dtSSD all
    better than the raw model on every sequence). Where the warp is not
    reliable (an occlusion, motion the flow missed) the weight falls to 0,
    so the mask follows the model and does not lag.

    Without ``reliable`` only the uncertainty gate applies, to history held
    in place. A scene cut drops history. Returns a new float32 array.
    """
    if prev is None or settings.smoothing == 0.0 or prev.shape != prob.shape:
        return cast(F32, prob.copy())
    if is_scene_cut(prob, prev, settings.scene_cut):
        return cast(F32, prob.copy())
    w_prev = uncertainty(prob)
    w_prev *= np.float32(settings.smoothing)
    if reliable is not None and reliable.shape == prob.shape:
        np.maximum(w_prev, np.float32(settings.hold), out=w_prev)
        w_prev *= reliable
    return cast(F32, (prob + w_prev * (prev - prob)).astype(np.float32, copy=False))


def segment_views(segment: Callable[[U8], F32], frame: U8, first: F32, views: int) -> F32:
    """The model's mean answer over ``views`` (1, 2 or 4) views of one photo: test-time
    augmentation, for photos only (video has one model run per frame).

    ``segment`` maps a BGR frame to float32 0..1 at model resolution and
    ``first`` is its answer on ``frame`` itself. Views: the photo, its
    mirror image (2), and the same pair moved by half a model pixel right
    and down (4), each answer moved back before averaging. The model then
    sees the person through slightly different samplings, and what it says
    by chance of its input grid (grass taken for a leg, a fringe of hair
    lost) averages out: street and group photos mIoU +0.010, boundary F
    +0.015 with the mirror view (+0.001 / +0.002 more with four).
    """
    out: F32 = first.copy()
    if views < 2:
        return out
    out += segment(np.ascontiguousarray(frame[:, ::-1]))[:, ::-1]
    if views >= 4:
        mh, mw = first.shape
        h, w = frame.shape[:2]
        fwd = np.array([[1, 0, 0.5 * w / mw], [0, 1, 0.5 * h / mh]], np.float32)
        back = np.array([[1, 0, -0.5], [0, 1, -0.5]], np.float32)
        moved = cast(U8, cv2.warpAffine(frame, fwd, (w, h), borderMode=cv2.BORDER_REPLICATE))
        for flip in (False, True):
            p = segment(np.ascontiguousarray(moved[:, ::-1]) if flip else moved)
            p = np.ascontiguousarray(p[:, ::-1] if flip else p)
            out += cv2.warpAffine(p, back, (mw, mh), borderMode=cv2.BORDER_REPLICATE)
    out *= np.float32(1.0 / (4 if views >= 4 else 2))
    return out


def working_size(frame_size: tuple[int, int], width: int) -> tuple[int, int]:
    """(w, h) of the working resolution: ``width`` wide (never upscaled), same aspect."""
    w, h = frame_size
    if w <= width:
        return w, h
    return width, max(1, round(h * width / w))


def _box(x: F32, r: int) -> F32:
    """Window means of radius ``r`` (reflected borders), per channel (up to 4)."""
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

    How much of the fit is used: in a photo, :func:`refine_weight` (thick
    people, a frame finer than the model's grid). In video, a thin person
    is refined too, but only where the fit explains the mask's edge
    (:func:`explained`, with ``refine_fit``), and keeps the model's edge
    elsewhere. With ``refine`` off (or the weight 0 everywhere), ``a`` is 0
    and ``b`` the probability itself, so :func:`apply_guided` is a plain
    bilinear upsample.
    """
    h, w = grey.shape[:2]
    up = _upscale_ramp(prob, settings, (w, h)) if settings.refine else 0.0
    thick = _thickness_ramp(prob, settings) if up > 0.0 else 0.0
    fit = settings.refine_fit and not photo and up > 0.0 and thick < 1.0
    weight = up * thick
    if weight == 0.0 and not fit:
        return np.zeros_like(prob), prob
    sub = refine_step(prob, h, settings)
    lw, lh = max(1, w // sub), max(1, h // sub)
    # an exact 2x bilinear shrink is the 2x2 mean (= INTER_AREA) at a fraction of the cost
    interp = cv2.INTER_LINEAR if (lw * 2, lh * 2) == (w, h) else cv2.INTER_AREA
    il = cv2.resize(grey, (lw, lh), interpolation=interp).astype(np.float32)
    il *= np.float32(1.0 / 255.0)
    plain = cast(F32, cv2.resize(prob, (lw, lh), interpolation=cv2.INTER_LINEAR))
    pl = sharpen_edge(
        plain.copy(),
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
    if fit:
        # per coarse pixel: all of the fit on a thick person, the explained share on a thin one
        c = explained(a, cov_ip, pl, mean_p, r)
        c *= np.float32(1.0 - thick)
        c += np.float32(thick)
        c *= np.float32(up)
        a *= c
        b *= c
        c -= np.float32(1.0)
        c *= plain
        b -= c  # b * c + (1 - c) * plain
    elif weight < 1.0:
        # fade between the refined and the plain (bilinear) probability
        a *= np.float32(weight)
        b *= np.float32(weight)
        b += np.float32(1.0 - weight) * plain
    return a, b


def explained(a: F32, cov_ip: F32, p: F32, mean_p: F32, r: int) -> F32:
    """How much of the mask's local variation the guided filter's fit explains: float32 0..1.

    The fit is a line ``p ~ a * I + b`` per window (radius ``r``) of the
    coarse grid; this is its R squared, ``a * cov(I, p) / var(p)`` (with
    ``a = cov / (var(I) + eps)``, at most ``var(I) / (var(I) + eps)`` < 1).
    Near 1 where the mask's edge lies on an image edge (a person against a
    plain wall: the refinement snaps it there); near 0 where the window holds
    the whole of a thin limb against clutter, or texture that has nothing
    to do with the edge: there the refinement would only average the mask
    over the window, and a thin arm or leg frays (DAVIS lucia and bmx-trees
    boundary F below the raw model when every frame is refined in full).
    0 where the mask is flat. ``p`` is the probability the fit was made to,
    ``mean_p`` its window mean, all float32 on the coarse grid.
    """
    var_p = _box(p * p, r)
    var_p -= mean_p * mean_p
    var_p += np.float32(1e-6)  # a flat mask explains nothing: 0, not 0 / 0
    out = a * cov_ip
    out /= var_p
    return cast(F32, np.clip(out, 0.0, 1.0, out=out))


def person_thickness(prob: F32) -> float:
    """How thick the person's parts are: area over boundary length of ``prob > 0.5``,
    in frame heights (0 without a person).

    A head-and-shoulders framing is thick (dev portraits: 0.15-0.29, median
    0.22); a full-body person, a group or a small figure is thin (street and
    group photos: median 0.085; DAVIS: 0.03). ``prob`` is float32 0..1 at
    model resolution.
    """
    fg = (prob > 0.5).astype(np.uint8)
    area = cv2.countNonZero(fg)
    if area == 0:
        return 0.0
    inner = cv2.erode(fg, _K3, borderType=cv2.BORDER_REPLICATE)
    edge = area - cv2.countNonZero(inner)
    return float(area / max(edge, 1) / prob.shape[0])


def refine_weight(
    prob: F32, settings: MaskSettings, guide_size: tuple[int, int] | None = None
) -> float:
    """How much of the image-guided refinement to use (0..1), from :func:`person_thickness`.

    The refinement snaps the edge to image edges inside windows a few model
    pixels wide. On a head-and-shoulders framing that follows hair and
    shoulders (dev portraits: boundary F +0.04 over the plain upsample); on
    thin parts (limbs, small and full-body people, groups) the window holds
    clothing texture and background clutter too, and the edge frays (street
    and group photos: boundary F -0.03, whatever the window). So the
    refinement fades in from ``refine_thick_low`` to ``refine_thick_high``
    person thickness. It also needs detail to add: it fades in as the
    working frame (``guide_size``, w x h) is ``refine_upscale_low`` to
    ``refine_upscale_high`` times finer than the model's grid (a photo the
    model sees at about its own resolution has no finer edge to find, only
    texture to follow; 720p video: 1.9x). 0 with ``refine`` off.
    """
    if not settings.refine:
        return 0.0
    weight = 1.0 if guide_size is None else _upscale_ramp(prob, settings, guide_size)
    if weight > 0.0:
        weight *= _thickness_ramp(prob, settings)
    return weight


def _upscale_ramp(prob: F32, settings: MaskSettings, guide_size: tuple[int, int]) -> float:
    """0..1: how much finer the working frame (w, h) is than the model's grid."""
    up = max(guide_size[0] / prob.shape[1], guide_size[1] / prob.shape[0])
    return _ramp(up, settings.refine_upscale_low, settings.refine_upscale_high)


def _thickness_ramp(prob: F32, settings: MaskSettings) -> float:
    """0..1: how thick the person is (:func:`person_thickness`)."""
    t = person_thickness(prob)
    return _ramp(t, settings.refine_thick_low, settings.refine_thick_high)


def _ramp(x: float, lo: float, hi: float) -> float:
    """0 at or below ``lo``, 1 at or above ``hi``, linear between."""
    if hi <= lo:
        return float(x >= hi)
    return float(min(1.0, max(0.0, (x - lo) / (hi - lo))))


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

    The edge is ``refine_edge`` (0.55: the models' 0.5 contour lies a little
    outside the true edge on head-and-shoulders photos, the halo of the hair);
    it maps to 0.5, with slope ``slope`` (default ``refine_sharpen``) above it
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
    p -= np.float32(settings.refine_edge)
    p *= np.float32(k * below)
    # above the edge 1/below times the slope below: max() picks the steeper side for p > 0
    np.maximum(p, p * np.float32(1.0 / below), out=p)
    p += np.float32(0.5)
    np.clip(p, 0.0, 1.0, out=p)
    return p


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


def _guided_alpha_py(
    a: F32, b: F32, grey: U8, floor: F32, lo: float, scale: float, use_a: bool, out: F32
) -> None:  # pragma: no cover - compiled
    h, w = grey.shape
    inv = np.float32(1.0 / 255.0)
    lo32, k32 = np.float32(lo), np.float32(scale)
    zero, one = np.float32(0.0), np.float32(1.0)
    for y in range(h):
        for x in range(w):
            q = b[y, x]
            if use_a:
                q = a[y, x] * (np.float32(grey[y, x]) * inv) + q
            v = min(max((q - lo32) * k32, zero), one)
            f = floor[y, x]
            out[y, x] = v if v >= f else f


_guided_alpha = Kernel(_guided_alpha_py)


def guided_alpha(a: F32, b: F32, grey: U8, settings: MaskSettings, floor: F32 | None = None) -> F32:
    """:func:`apply_guided`, :func:`to_alpha` and :func:`apply_floor` in one pass: the
    refined alpha at the resolution of ``grey``, float32 0..1, the same bits.

    The coefficients (and the floor) are upsampled by OpenCV; the per-pixel
    arithmetic, five NumPy passes over the working frame before, is one
    compiled loop (720p: 0.35 -> 0.20 ms). A fit that is all ``a = 0`` (the
    refinement faded out, see :func:`refine_weight`) skips its upsample.
    """
    h, w = grey.shape[:2]
    use_a = bool(a.any())
    up_b = b if b.shape == (h, w) else cv2.resize(b, (w, h), interpolation=cv2.INTER_LINEAR)
    up_a = (
        a
        if not use_a or a.shape == (h, w)
        else cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)
    )
    up_f: F32
    if floor is None:
        up_f = np.zeros((h, w), np.float32)
    elif floor.shape != (h, w):
        up_f = cast(F32, cv2.resize(floor, (w, h), interpolation=cv2.INTER_LINEAR))
    else:
        up_f = floor
    out = np.empty((h, w), np.float32)
    lo, hi = settings.edge_low, settings.edge_high
    _guided_alpha(up_a, up_b, grey, up_f, lo, 1.0 / (hi - lo), use_a, out)
    return out


# ------------------------------------------------------------------ photo matting
# Weights of the matting solve: a pixel outside the band is known (it keeps its alpha),
# one inside leans on its alpha only lightly (the image decides).
_MATTE_KNOWN = 100.0
_MATTE_PRIOR = 0.01


def matte_photo(alpha: F32, image: U8, prob: F32, settings: MaskSettings) -> F32:
    """The photo's alpha re-solved against its colours about the person's edge (:func:`matte`).

    ``alpha`` is float32 0..1 and ``image`` uint8 HxWx3 BGR, both at the
    photo's working resolution; ``prob`` the model's probability (float32
    0..1, model resolution). The band is ``matte_band`` model pixels either
    side of the edge (the model's edge is uncertain by a few of its own
    pixels), and the matte is used as much as the refinement is
    (:func:`refine_weight`: thick people, a frame finer than the model's
    grid). Returns ``alpha`` itself when there is nothing to do, else a new
    array.
    """
    if not settings.matte:
        return alpha
    h, w = alpha.shape
    weight = refine_weight(prob, settings, (w, h))
    if weight == 0.0:
        return alpha
    band = settings.matte_band * max(w / prob.shape[1], h / prob.shape[0])
    out = matte(alpha, image, band, settings)
    if weight < 1.0:
        out -= alpha
        out *= np.float32(weight)
        out += alpha
    return out


def matte(alpha: F32, image: U8, band: float, settings: MaskSettings) -> F32:
    """``alpha`` solved against the colour image within ``band`` pixels of its edge.

    ``alpha`` is float32 0..1 HxW and ``image`` uint8 HxWx3 BGR of the same
    size. Pixels farther than ``band`` from the 0.5 contour of ``alpha``
    are known and keep their value (a trimap from the mask); inside the
    band alpha is Levin et al.'s closed-form matte: in every window of
    radius ``matte_radius`` alpha is close to an affine function of the
    colour (regularised by ``matte_eps``), and it leans lightly on the
    given alpha. That puts the edge where the colours change across hair
    and shoulders, as the guided filter's fit does within one window, but
    solved over the whole band at once, from what is known on both sides:
    the dev portraits' boundary F 0.741 -> 0.76 (docs/QUALITY.md).

    The matting Laplacian is applied without forming it, with box filters
    (He, Sun and Tang, "Fast matting using large kernel matting Laplacian
    matrices", 2010), and the system solved by ``matte_iters``
    preconditioned conjugate-gradient steps from ``alpha`` itself, on the
    band's bounding box only. Returns a new float32 array, 0..1.
    """
    out: F32 = alpha.copy()
    fg = (alpha > 0.5).astype(np.uint8)
    n_fg = cv2.countNonZero(fg)
    if n_fg == 0 or n_fg == fg.size or band <= 0.0:
        return out
    inside = cv2.distanceTransform(fg, cv2.DIST_L2, cv2.DIST_MASK_5)
    outside = cv2.distanceTransform(1 - fg, cv2.DIST_L2, cv2.DIST_MASK_5)
    unknown = np.maximum(inside, outside) <= band
    rows = np.flatnonzero(unknown.any(axis=1))
    cols = np.flatnonzero(unknown.any(axis=0))
    r = settings.matte_radius
    m = 2 * r + 1  # known pixels around the band, so every window touching it is whole
    y0, y1 = max(0, rows[0] - m), min(alpha.shape[0], rows[-1] + m + 1)
    x0, x1 = max(0, cols[0] - m), min(alpha.shape[1], cols[-1] + m + 1)
    colour = image[y0:y1, x0:x1].astype(np.float32)
    colour *= np.float32(1.0 / 255.0)
    conf = cast(
        F32, np.where(unknown[y0:y1, x0:x1], np.float32(_MATTE_PRIOR), np.float32(_MATTE_KNOWN))
    )
    x = _solve_matte(colour, out[y0:y1, x0:x1], conf, settings)
    np.clip(x, 0.0, 1.0, out=out[y0:y1, x0:x1])
    return out


def _solve_matte(colour: F32, prior: F32, conf: F32, settings: MaskSettings) -> F32:
    """Solve ``(L + C) x = C prior`` by Jacobi-preconditioned conjugate gradients from
    ``prior`` (L: the matting Laplacian of ``colour``, float32 HxWx3 0..1; C: ``conf``).

    Returns the iterate of least (preconditioned) residual: in float32 the
    iteration can lose definiteness and diverge after a dozen steps on a
    large band, so it stops there and keeps the best answer it had, never a
    nan.
    """
    r = settings.matte_radius
    n = np.float32((2 * r + 1) ** 2)
    h, w = prior.shape
    mean = _box(colour, r)
    moments = np.empty((h, w, 6), np.float32)
    _colour_moments(colour, moments)
    second = np.concatenate([_box(moments[..., :3], r), _box(moments[..., 3:], r)], -1)
    inv = np.empty((h, w, 6), np.float32)
    _inverse_covariance(mean, second, np.float32(settings.matte_eps), inv)
    work = np.empty((h, w, 4), np.float32)

    def laplacian(p: F32, out: F32) -> F32:
        """(L + C) p, into ``out``."""
        _weighted(colour, p, work)
        _local_fit(_box(work, r), mean, inv, work)
        _residual(colour, _box(work, r), p, conf, n, out)
        return out

    x = prior.astype(np.float32, copy=True)
    res = conf * prior - laplacian(x, np.empty_like(x))
    jacobi = np.float32(1.0) / (conf + (n - np.float32(1.0)))
    z = jacobi * res
    d = z.copy()
    rz = float(np.vdot(res, z))
    ad = np.empty_like(x)
    best: F32 = x.copy()
    best_rz = rz
    for _ in range(settings.matte_iters):
        if not rz > 1e-12:  # converged (or nan)
            break
        laplacian(d, ad)
        den = float(np.vdot(d, ad))
        if not den > 0.0:  # float32 round-off made the operator lose definiteness: stop
            break
        step = np.float32(rz / den)
        x += step * d
        res -= step * ad
        np.multiply(jacobi, res, out=z)
        rz_next = float(np.vdot(res, z))
        if not np.isfinite(rz_next) or rz_next > 4.0 * best_rz:
            break  # diverging (one dev portrait, photo_views=1, after 14 steps)
        if rz_next < best_rz:
            best_rz = rz_next
            np.copyto(best, x)
        d *= np.float32(rz_next / rz)
        d += z
        rz = rz_next
    return best


def _colour_moments_py(c: F32, out: F32) -> None:  # pragma: no cover - compiled
    h, w = c.shape[0], c.shape[1]
    for y in range(h):
        for x in range(w):
            r, g, b = c[y, x, 0], c[y, x, 1], c[y, x, 2]
            out[y, x, 0] = r * r
            out[y, x, 1] = r * g
            out[y, x, 2] = r * b
            out[y, x, 3] = g * g
            out[y, x, 4] = g * b
            out[y, x, 5] = b * b


def _inverse_covariance_py(
    mean: F32, second: F32, eps: np.float32, inv: F32
) -> None:  # pragma: no cover - compiled
    # per window: (covariance of the colours + eps I)^-1, symmetric, by cofactors
    h, w = mean.shape[0], mean.shape[1]
    for y in range(h):
        for x in range(w):
            m0, m1, m2 = mean[y, x, 0], mean[y, x, 1], mean[y, x, 2]
            s = second[y, x]
            a00 = s[0] - m0 * m0 + eps
            a01 = s[1] - m0 * m1
            a02 = s[2] - m0 * m2
            a11 = s[3] - m1 * m1 + eps
            a12 = s[4] - m1 * m2
            a22 = s[5] - m2 * m2 + eps
            i00 = a11 * a22 - a12 * a12
            i01 = a02 * a12 - a01 * a22
            i02 = a01 * a12 - a02 * a11
            i11 = a00 * a22 - a02 * a02
            i12 = a01 * a02 - a00 * a12
            i22 = a00 * a11 - a01 * a01
            det = a00 * i00 + a01 * i01 + a02 * i02
            k = np.float32(1.0) / det
            v = inv[y, x]
            v[0] = i00 * k
            v[1] = i01 * k
            v[2] = i02 * k
            v[3] = i11 * k
            v[4] = i12 * k
            v[5] = i22 * k


def _weighted_py(c: F32, p: F32, out: F32) -> None:  # pragma: no cover - compiled
    h, w = p.shape
    for y in range(h):
        for x in range(w):
            v = p[y, x]
            out[y, x, 0] = v
            out[y, x, 1] = c[y, x, 0] * v
            out[y, x, 2] = c[y, x, 1] * v
            out[y, x, 3] = c[y, x, 2] * v


def _local_fit_py(m: F32, mean: F32, inv: F32, out: F32) -> None:  # pragma: no cover - compiled
    # per window: alpha ~ a . colour + b, least squares with eps (the guided filter's fit)
    h, w = m.shape[0], m.shape[1]
    for y in range(h):
        for x in range(w):
            mp = m[y, x, 0]
            m0, m1, m2 = mean[y, x, 0], mean[y, x, 1], mean[y, x, 2]
            c0 = m[y, x, 1] - m0 * mp
            c1 = m[y, x, 2] - m1 * mp
            c2 = m[y, x, 3] - m2 * mp
            v = inv[y, x]
            a0 = v[0] * c0 + v[1] * c1 + v[2] * c2
            a1 = v[1] * c0 + v[3] * c1 + v[4] * c2
            a2 = v[2] * c0 + v[4] * c1 + v[5] * c2
            out[y, x, 0] = a0
            out[y, x, 1] = a1
            out[y, x, 2] = a2
            out[y, x, 3] = mp - a0 * m0 - a1 * m1 - a2 * m2


def _residual_py(
    c: F32, m: F32, p: F32, conf: F32, n: np.float32, out: F32
) -> None:  # pragma: no cover - compiled
    # L p = n (p - mean over the windows of their fits at the pixel), plus C p
    h, w = p.shape
    for y in range(h):
        for x in range(w):
            q = m[y, x, 0] * c[y, x, 0] + m[y, x, 1] * c[y, x, 1] + m[y, x, 2] * c[y, x, 2]
            q += m[y, x, 3]
            out[y, x] = n * (p[y, x] - q) + conf[y, x] * p[y, x]


_colour_moments = Kernel(_colour_moments_py)
_inverse_covariance = Kernel(_inverse_covariance_py)
_weighted = Kernel(_weighted_py)
_local_fit = Kernel(_local_fit_py)
_residual = Kernel(_residual_py)

RESCUE_SHARE = 0.1


def rescue_floor(
    prob: F32, raw: F32 | None, settings: MaskSettings, raw_prev: F32 | None = None
) -> F32 | None:
    """The least alpha (float32 0..1, model resolution) that keeps every person the model sees.

    ``raw`` is the model's own answer on this frame, ``prob`` what the mask
    stages made of it (temporal smoothing, the mirror views of a photo, the
    main-person choice), both float32 0..1 at model resolution. A region
    the model gives more than 0.5 (a connected component of ``raw > 0.5``)
    of which ``prob`` keeps less than half is a person some stage dropped:
    a second person, one in dark clothes, a person at the side of a photo
    its mirror view misses, someone who just stepped in. Such a region gets
    the model's own alpha back (its alpha ramp); a region that is kept,
    even in part, is left to the stages (the mirror views rightly trim what
    the model spilled onto the grass beside a person). None when no region
    was dropped (the usual case).
    """
    if raw is None or raw.shape != prob.shape:
        return None
    fg = raw > 0.5
    lost = fg & (prob <= 0.5)
    if not lost.any():
        return None  # the usual case: nothing the model keeps was dropped (~20 us)
    n, labels = cv2.connectedComponents(fg.view(np.uint8), connectivity=8)
    total = np.bincount(labels.ravel(), minlength=n)
    dropped = np.bincount(labels[lost], minlength=n) * 2 > total
    dropped[0] = False
    if not dropped.any():
        return None
    dropped &= total >= RESCUE_SHARE * total[1:].max()
    if raw_prev is not None and raw_prev.shape == raw.shape and dropped.any():
        dropped &= np.bincount(labels[raw_prev > 0.5], minlength=n) * 2 >= total
    if not dropped.any():
        return None
    floor = to_alpha(raw.copy(), settings)
    floor[~dropped[labels]] = 0.0
    return floor


def apply_floor(alpha: F32, floor: F32 | None) -> F32:
    """Raise ``alpha`` (float32 0..1, working resolution) to :func:`rescue_floor`
    (upsampled bilinearly), in place; returns it."""
    if floor is None:
        return alpha
    h, w = alpha.shape
    if floor.shape != (h, w):
        floor = cast(F32, cv2.resize(floor, (w, h), interpolation=cv2.INTER_LINEAR))
    np.maximum(alpha, floor, out=alpha)
    return alpha


def upsample_alpha(alpha: F32 | U8, size: tuple[int, int], out: U8 | None = None) -> U8:
    """Alpha at working resolution (float 0..1 or uint8) -> uint8 0..255 at ``size`` (w, h)."""
    a8 = cast(U8, alpha if alpha.dtype == np.uint8 else cv2.convertScaleAbs(alpha, alpha=255.0))
    if a8.shape[1] == size[0] and a8.shape[0] == size[1]:
        if out is not None:
            out[...] = a8
            return out
        return a8
    return upscale_linear(a8, size, out)
