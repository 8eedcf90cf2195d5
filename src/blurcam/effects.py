"""Background effects: each turns a frame into the full-resolution background layer.

Pure functions (a depth model, when one is used, is
:class:`blurcam.segment.depth.DepthEstimator`, owned by the effect node).
``frame`` is uint8 HxWx3 BGR at full resolution;
``small`` is the same frame at working resolution (shared with the mask stage,
so the frame is downscaled once); ``alpha`` is uint8 at any resolution (the
pipeline passes the working-resolution alpha), 255 = person. Each effect makes
the layer that goes behind the person: the ``*_layer`` functions at the small
size they work at, which :func:`blurcam.composite.render` upsamples on the
fly while it composites; the ``*_background`` functions at full resolution.

Why everything runs small: a Gaussian of sigma 40 px at 1080p costs ~30 ms,
the same look from 1/16 of the pixels costs well under 1 ms. Each effect
shrinks what it needs to a size where its kernel is a few pixels, works there in
float32, and is upsampled once (bilinear) to full resolution.

Why "mask-weighted": a plain blur averages the person's colours into the
background next to them (a glow around the head that moves with the person).
Here the person is given zero weight and the blur is re-normalised
(normalised convolution); where no background is near (under the person), the
hole is filled from coarser levels (pull-push), so every pixel of the layer is
made of background colours only.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import cv2
import numpy as np
from numpy.typing import NDArray

from .frame import F32, U8
from .upscale import upscale_linear

__all__ = [
    "BOKEH_SHAPES",
    "blur_background",
    "blur_layer",
    "blur_sigma",
    "bokeh_background",
    "bokeh_layer",
    "bokeh_radius",
    "depth_background",
    "depth_from_mask",
    "depth_layer",
    "harmonize_background",
    "light_wrap",
    "normalize_depth",
    "wrap_alpha",
]

log = logging.getLogger(__name__)


BOKEH_SHAPES = ("disc", "hex")

_SIGMA_AT_FULL = 0.025  # sigma at strength 1, as a fraction of the longer side
_SIGMA_SMALL = 2.0  # sigma in pixels at the resolution the blur runs at
_BOKEH_AT_FULL = 0.04  # disc radius at strength 1, fraction of the longer side
_BOKEH_SMALL = 6  # disc radius in pixels at the resolution the bokeh runs at
_WRAP_AT_FULL = 0.012  # light-wrap reach (sigma), fraction of the longer side
_WRAP_WIDTH = 192  # width the light wrap is computed at
_DEPTH_LEVELS = 4  # blur levels blended by depth (level 0 = unblurred working frame)
_FILL_THRESHOLD = 0.05  # normalised-convolution weight below which pull-push fills


# uint8 (sRGB-ish, gamma 2.2) -> linear light; a constant table, not state
_TO_LINEAR = ((np.arange(256, dtype=np.float32) / 255.0) ** 2.2).astype(np.float32)


# --------------------------------------------------------------------- helpers
def _fit(size: tuple[int, int], width: int) -> tuple[int, int]:
    """(w, h) ``width`` wide (never above ``size``), same aspect, at least 4x4."""
    w, h = size
    tw = int(min(w, max(4, width)))
    return tw, max(4, round(h * tw / w))


def _shrink(img: NDArray[Any], size: tuple[int, int]) -> NDArray[Any]:
    """Area-average downscale that stays cheap from 1080p.

    OpenCV's INTER_AREA is slow for non-integer ratios on big images (~10 ms for
    a 1080p mask); nearest-sampling to an integer multiple (up to 4x) of the
    target first and then averaging blocks gives nearly the same result for
    well under 1 ms.
    """
    tw, th = size
    h, w = img.shape[:2]
    if (w, h) == (tw, th):
        return img
    k = min(4, w // tw, h // th)
    if k < 2:  # less than 2x smaller: bilinear is as good as area here
        return cv2.resize(img, (tw, th), interpolation=cv2.INTER_LINEAR)
    if k == 4 and w < 5 * tw and h < 5 * th:
        # 4-5x (the working frame to the blur's size): a bilinear step to twice the
        # target (its 2x2 taps cover ~all of each 2-2.5 px cell) and one halving,
        # half the cost of the nearest step and two halvings (0.23 -> 0.09 ms)
        img = cv2.resize(img, (2 * tw, 2 * th), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(img, (tw, th), interpolation=cv2.INTER_LINEAR)
    if (w, h) != (k * tw, k * th):
        img = cv2.resize(img, (k * tw, k * th), interpolation=cv2.INTER_NEAREST)
    if k == 3:
        return cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)
    # a bilinear halving samples exactly between 2x2 pixels, i.e. it is their
    # mean: two of them are the 4x4 area average, ~10x cheaper than INTER_AREA
    while k > 1:
        img = cv2.resize(
            img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_LINEAR
        )
        k //= 2
    return img


def _alpha_low(alpha: U8, size: tuple[int, int]) -> F32:
    """uint8 alpha (any resolution) -> float32 0..1 at ``size``."""
    a = _shrink(alpha, size).astype(np.float32)
    a *= np.float32(1.0 / 255.0)
    return a


def _background_weight(a_low: F32) -> F32:
    """Weight of each low-res pixel as background: 0 on and next to the person.

    A low-res pixel that is partly person has mixed colours; dilating the alpha
    by one pixel and cutting at half keeps those mixed pixels out of the
    average, which is what makes the result free of the person's colour.
    """
    d = cv2.dilate(a_low, np.ones((3, 3), np.uint8))
    w = 1.0 - 2.0 * d
    return np.clip(w, 0.0, 1.0, out=w)


def _normalize_fill(num: F32, den: F32, threshold: float = _FILL_THRESHOLD) -> F32:
    """``num / den`` (normalised convolution) with weak pixels filled by pull-push.

    ``num`` is HxWx3 (weighted colours, already filtered), ``den`` HxW (the
    filtered weights). Where ``den`` is below ``threshold`` the colour comes
    from a coarser level, so holes (the person) are filled with the
    surrounding background instead of black or the person's own colours.
    """
    levels = [(num, den)]
    while float(den.min()) < threshold and min(den.shape[:2]) > 2:
        num, den = cast(F32, cv2.pyrDown(num)), cast(F32, cv2.pyrDown(den))
        levels.append((num, den))
    num, den = levels[-1]
    col: F32 = num / np.maximum(den, np.float32(1e-6))[..., None]
    for num, den in reversed(levels[:-1]):
        up = cv2.resize(col, (num.shape[1], num.shape[0]), interpolation=cv2.INTER_LINEAR)
        a = np.minimum(den * np.float32(1.0 / threshold), np.float32(1.0))[..., None]
        own = num / np.maximum(den, np.float32(1e-6))[..., None]
        col = (up + a * (own - up)).astype(np.float32, copy=False)
    return col


def _masked_filter(low: F32, weight: F32, filt: Any) -> F32:
    """Filter ``low`` (HxWx3 float32) with person pixels removed and re-normalised."""
    num = filt(low * weight[..., None])
    den = filt(weight)
    return _normalize_fill(num, den)


def _plate(low: F32, weight: F32) -> F32:
    """The "background plate": ``low`` with the person (weight 0) filled from around it.

    A mask-weighted pass with a tiny kernel: outside the person it is nearly
    ``low`` itself, inside it the pull-push fill. Any plain filter of the plate
    is then free of the person's colours, which lets bokeh and depth run one
    filter per level instead of two plus a division.
    """

    def tiny(x: F32) -> F32:
        return cast(F32, cv2.GaussianBlur(x, (0, 0), 0.7, borderType=cv2.BORDER_REFLECT))

    return _masked_filter(low, weight, tiny)


def _to_u8(x: F32) -> U8:
    return cast(U8, cv2.convertScaleAbs(x))  # saturating round to uint8


def _copy(frame: U8, out: U8 | None) -> U8:
    if out is None:
        return cast(U8, frame.copy())
    out[...] = frame
    return out


# ------------------------------------------------------------------------ blur
def blur_sigma(strength: float, frame_size: tuple[int, int]) -> float:
    """Gaussian sigma in full-resolution pixels for ``strength`` 0..1."""
    return float(strength) * _SIGMA_AT_FULL * max(frame_size)


def blur_background(
    frame: U8,
    small: U8,
    strength: float,
    alpha: U8 | None = None,
    out: U8 | None = None,
) -> U8:
    """Gaussian-blurred background at full resolution, free of the person's colours.

    The blur runs on a copy shrunk so that the kernel is ~2 px, then one
    bilinear upsample brings it back; for a Gaussian that is visually the same
    as the full-resolution filter at a fraction of the cost. With ``alpha``
    the blur is mask-weighted (see the module docstring) so there is no halo;
    without it, it is a plain blur of the whole frame. The two steps are
    :func:`blur_layer` and :func:`blurcam.upscale.upscale_linear`.
    """
    h, w = frame.shape[:2]
    low = blur_layer((w, h), small, strength, alpha)
    if low is None:
        return _copy(frame, out)
    return upscale_linear(low, (w, h), out)


def blur_layer(
    frame_size: tuple[int, int], small: U8, strength: float, alpha: U8 | None = None
) -> U8 | None:
    """The blurred background of :func:`blur_background` at the small size it is made at
    (uint8, ~2 px kernel); None when ``strength`` is too low to blur at all."""
    w, h = frame_size
    sigma = blur_sigma(strength, (w, h))
    if sigma < 0.5:
        return None
    tw, th = _fit((small.shape[1], small.shape[0]), round(w * _SIGMA_SMALL / sigma))
    low = _shrink(small, (tw, th))
    s_low = sigma * tw / w

    def gauss(x: NDArray[Any]) -> Any:
        return cv2.GaussianBlur(x, (0, 0), s_low, borderType=cv2.BORDER_REFLECT)

    if alpha is None:
        return cast(U8, gauss(low))
    weight = _background_weight(_alpha_low(alpha, (tw, th)))
    if float(weight.max()) < 0.5:  # no background at all: nothing to protect
        return cast(U8, gauss(low))
    return _to_u8(_masked_filter(low.astype(np.float32), weight, gauss))


# ----------------------------------------------------------------------- bokeh
def bokeh_radius(strength: float, frame_size: tuple[int, int]) -> float:
    """Lens-disc radius in full-resolution pixels for ``strength`` 0..1."""
    return float(strength) * _BOKEH_AT_FULL * max(frame_size)


def _aperture(radius: int, shape: str) -> F32:
    """Normalised anti-aliased disc or hexagon kernel of ``radius`` pixels."""
    n = 2 * radius + 1
    k = np.zeros((n, n), np.float32)
    sh = 4  # sub-pixel bits for anti-aliased drawing
    c = radius * (1 << sh)
    if shape == "hex":
        ang = np.deg2rad(np.arange(6) * 60.0 + 30.0)
        pts = np.stack([np.cos(ang), np.sin(ang)], axis=1) * radius * (1 << sh) + c
        cv2.fillPoly(k, [pts.round().astype(np.int32)], 1.0, cv2.LINE_AA, sh)
    else:
        cv2.circle(k, (c, c), radius * (1 << sh), 1.0, -1, cv2.LINE_AA, sh)
    return cast(F32, k / np.float32(k.sum()))


def bokeh_background(
    frame: U8,
    small: U8,
    alpha: U8 | None,
    strength: float,
    *,
    shape: str = "disc",
    highlights: float = 0.5,
    out: U8 | None = None,
) -> U8:
    """:func:`bokeh_layer` upsampled to full resolution (the frame itself when too weak)."""
    h, w = frame.shape[:2]
    low = bokeh_layer((w, h), small, alpha, strength, shape=shape, highlights=highlights)
    return _copy(frame, out) if low is None else upscale_linear(low, (w, h), out)


def bokeh_layer(
    frame_size: tuple[int, int],
    small: U8,
    alpha: U8 | None,
    strength: float,
    *,
    shape: str = "disc",
    highlights: float = 0.5,
) -> U8 | None:
    """Lens-like defocus: a disc (or hexagon) blur in linear light with blooming highlights.

    Averaging in gamma-encoded values dims bright spots; a real lens averages
    light, so the shrunk background is expanded to linear light (gamma 2.2),
    bright pixels are boosted by up to ``1 + 8 * highlights`` (so small lights
    become the bright discs a lens shows), filtered with the aperture kernel
    (mask-weighted, like :func:`blur_background`), clipped and encoded back.
    The kernel is ~6 px at the size it runs at, so the cost does not grow with
    strength. Returns that small uint8 layer, or None when ``strength`` is
    too low to blur at all.
    """
    w, h = frame_size
    radius = bokeh_radius(strength, (w, h))
    if radius < 1.0:
        return None
    tw, th = _fit((small.shape[1], small.shape[0]), round(w * _BOKEH_SMALL / radius))
    low = _shrink(small, (tw, th))
    r_low = max(1, round(radius * tw / w))
    kernel = _aperture(r_low, shape)
    lin = _TO_LINEAR[low]  # HxWx3 float32, linear light
    if highlights > 0.0:
        lum = np.maximum(np.maximum(lin[..., 0], lin[..., 1]), lin[..., 2])
        boost = np.clip((lum - np.float32(0.6)) * np.float32(2.5), 0.0, 1.0)
        boost *= boost
        boost *= np.float32(8.0 * highlights)
        boost += np.float32(1.0)
        lin *= boost[..., None]

    weight = None if alpha is None else _background_weight(_alpha_low(alpha, (tw, th)))
    if weight is not None and float(weight.max()) >= 0.5:
        lin = _plate(lin, weight)  # the person filled in with the background around it
    res = cv2.filter2D(lin, -1, kernel, borderType=cv2.BORDER_REFLECT)
    np.clip(res, 0.0, 1.0, out=res)
    cv2.pow(res, 1.0 / 2.2, dst=res)
    return cast(U8, cv2.convertScaleAbs(res, alpha=255.0))


# ----------------------------------------------------------------- replacement
def harmonize_background(bg: U8, reference: U8, amount: float, out: U8 | None = None) -> U8:
    """Move the new background's colour statistics ``amount`` of the way to the camera's.

    Per BGR channel, mean and contrast (standard deviation) of ``bg`` are moved
    toward those of ``reference`` (the camera frame, any size), so the
    replacement takes on the room's white balance and brightness and the person
    looks lit by the same light. The person's pixels are never changed. One
    per-channel affine pass at full resolution (~1 ms at 1080p); the
    statistics come from a subsampled view.
    """
    if amount <= 0.0:
        return bg if out is None else _copy(bg, out)
    step_b = max(1, bg.shape[1] // 160)
    step_r = max(1, reference.shape[1] // 160)
    mb, sb = cv2.meanStdDev(np.ascontiguousarray(bg[::step_b, ::step_b]))
    mr, sr = cv2.meanStdDev(np.ascontiguousarray(reference[::step_r, ::step_r]))
    mb, sb, mr, sr = (v.ravel().astype(np.float32) for v in (mb, sb, mr, sr))
    t = np.float32(amount)
    gain = np.clip((sb + t * (sr - sb)) / np.maximum(sb, np.float32(1.0)), 0.5, 2.0)
    offset = mb + t * (mr - mb) - mb * gain
    m = np.zeros((3, 4), np.float32)
    m[[0, 1, 2], [0, 1, 2]] = gain
    m[:, 3] = offset
    return cast(U8, cv2.transform(bg, m, dst=out))  # saturating per-channel gain + offset


def light_wrap(bg: U8, alpha: U8, amount: float) -> U8 | None:
    """Let a little of the new background's light spill over the person's edge. In place.

    A composite with a hard cut-out looks pasted on; in a real shot light from
    behind wraps around the subject's outline. This lowers ``alpha`` inside the
    person near the outline by up to ``amount`` (falling off over ~1% of the
    frame width) and puts, behind those pixels, the background blurred without
    the person (its local light), so the blend shows a soft glow of the new
    background's colour on the edge. ``bg`` is the full-resolution layer,
    ``alpha`` uint8 at any resolution (the working one in the pipeline); both
    are modified in place; ``bg`` pixels under the person are invisible before
    the wrap, so nothing else changes. Computed at ~192 px wide; at full
    resolution it costs two upsamples and a masked copy.

    Returns the wrap's weight (uint8, at ``alpha``'s resolution; None when
    nothing was wrapped), with which :func:`wrap_alpha` lowers another alpha
    the same way (a still frame that reuses this background layer).
    """
    if amount <= 0.0:
        return None
    h, w = bg.shape[:2]
    ah, aw = alpha.shape[:2]
    size = _fit((w, h), _WRAP_WIDTH)
    a_low = _alpha_low(alpha, size)
    sigma = max(0.8, _WRAP_AT_FULL * max(w, h) * size[0] / w)

    def gauss(x: NDArray[Any]) -> Any:
        return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)

    wb = _background_weight(a_low)
    if float(wb.max()) < 0.5 or float(a_low.max()) < 0.5:
        return None  # all person or no person: no edge to wrap
    spill = _masked_filter(_shrink(bg, size).astype(np.float32), wb, gauss)
    near = gauss(1.0 - a_low)  # how much background surrounds each pixel
    # only where the low-res pixel and its neighbours are person: after the
    # bilinear upsample the wrap then stays inside the outline, never on the
    # visible background
    core = cv2.erode(a_low, np.ones((3, 3), np.uint8))
    # 1 at the outline, 0 where less than 5% of the surroundings is background
    k = np.clip(near * np.float32(2.2) - np.float32(0.1), 0.0, 1.0) * np.float32(amount)
    k *= np.clip(core * np.float32(2.0) - np.float32(1.0), 0.0, 1.0)
    k8 = cast(U8, cv2.convertScaleAbs(k, alpha=255.0))
    cv2.copyTo(upscale_linear(_to_u8(spill), (w, h), None), upscale_linear(k8, (w, h), None), bg)
    weight = upscale_linear(k8, (aw, ah), None)
    wrap_alpha(alpha, weight)
    return weight


def wrap_alpha(alpha: U8, weight: U8) -> None:
    """Lower ``alpha`` in place by the light wrap's ``weight`` (see :func:`light_wrap`)."""
    cv2.multiply(alpha, cv2.bitwise_not(weight), dst=alpha, scale=1.0 / 255.0)


# ----------------------------------------------------------------------- depth
def depth_from_mask(a_low: F32) -> F32:
    """A plausible depth (0 = in focus, 1 = far) from the person mask alone.

    Without a depth model all we know is where the person is: the background
    is taken to recede with distance from the person's outline (70%) and
    toward the top of the picture (30%, floors come closer at the bottom,
    ceilings and walls are far). Smooth, so blur levels blend without seams.
    """
    h, w = a_low.shape
    if w > 96:  # smooth by construction: work at half size, resize once
        half = cv2.resize(a_low, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)
        d = cast(F32, cv2.resize(depth_from_mask(cast(F32, half)), (w, h)))
        d[a_low >= 0.5] = 0.0
        return d
    back = (a_low < 0.5).astype(np.uint8)
    if back.all():
        dist = np.ones((h, w), np.float32)
    else:
        dist = cast(F32, cv2.distanceTransform(back, cv2.DIST_L2, 3))
        dist *= np.float32(1.0 / (0.3 * max(w, h)))
        np.minimum(dist, 1.0, out=dist)
    top = np.linspace(1.0, 0.0, h, dtype=np.float32)[:, None]
    d = np.float32(0.7) * dist + np.float32(0.3) * top
    d = cv2.GaussianBlur(d, (0, 0), 0.03 * max(w, h) + 0.5)
    d[a_low >= 0.5] = 0.0
    return cast(F32, np.clip(d, 0.0, 1.0, out=d).astype(np.float32, copy=False))


def normalize_depth(raw: F32, alpha: U8) -> F32:
    """Model output (relative depth or disparity, any scale) -> 0 = person's plane .. 1 = far.

    ``raw`` is float32 HxW at model resolution, ``alpha`` the uint8 person
    alpha (any resolution); the result is float32 at ``raw``'s size.

    Monocular models disagree on the sign (MiDaS-like ones answer disparity,
    larger = nearer); the person is the thing in focus, so the sign is taken
    such that the person is nearer than the mean background, and the focus
    plane is the person's median value. Things nearer than the person blur too,
    as with a real lens.
    """
    d = raw.astype(np.float32)
    person = _alpha_low(alpha, (d.shape[1], d.shape[0])) >= 0.5
    if person.any() and (~person).any():
        if float(d[person].mean()) < float(d[~person].mean()):
            d = -d  # larger = farther: make it disparity-like
        focus = float(np.median(d[person]))
    else:
        focus = float(np.percentile(d, 90))
    far = float(np.percentile(d, 2))
    span = max(focus - far, 1e-6)
    out = np.abs(d - np.float32(focus)) * np.float32(1.0 / span)
    out[person] = 0.0
    return cast(F32, np.clip(out, 0.0, 1.0, out=out).astype(np.float32, copy=False))


def depth_background(
    frame: U8,
    small: U8,
    alpha: U8 | None,
    strength: float,
    depth: F32 | None = None,
    out: U8 | None = None,
) -> U8:
    """:func:`depth_layer` upsampled to full resolution (the frame itself when too weak)."""
    h, w = frame.shape[:2]
    low = depth_layer((w, h), small, alpha, strength, depth)
    return _copy(frame, out) if low is None else upscale_linear(low, (w, h), out)


def depth_layer(
    frame_size: tuple[int, int],
    small: U8,
    alpha: U8 | None,
    strength: float,
    depth: F32 | None = None,
) -> U8 | None:
    """Blur that grows with distance: a few blur levels blended per pixel by depth.

    ``depth`` is float32 0..1 at any resolution (0 = in focus, 1 = farthest;
    see :func:`normalize_depth`); ``None`` uses :func:`depth_from_mask`.
    Per-pixel kernels are slow; instead :data:`_DEPTH_LEVELS` levels are
    blended with tent weights on depth and the result is upsampled once. The
    levels are the "background plate" (the working frame with the person
    filled in from the surrounding background, by one mask-weighted pass), and
    plain Gaussians of it up to :func:`blur_sigma` of ``strength``, each made at
    its own small size; since the plate holds no person colour, no level
    has a halo. Returns the blended small uint8 layer (None: too weak to blur).
    """
    w, h = frame_size
    sigma = blur_sigma(strength, (w, h))
    if sigma < 0.5:
        return None
    # the blend size: the sharpest blurred level (sigma / 3) is ~1.3 px there
    bw, bh = _fit((small.shape[1], small.shape[0]), round(w * _SIGMA_SMALL * 2 / sigma))
    base = _shrink(small, (bw, bh)).astype(np.float32)
    if alpha is None:
        plate = base
        d = np.ones((bh, bw), np.float32) if depth is None else None
    else:
        # the background plate: the person replaced by the surrounding background,
        # so that every level below is a plain blur and still takes no person colour
        a_b = _alpha_low(alpha, (bw, bh))
        weight = _background_weight(a_b)
        plate = _plate(base, weight) if float(weight.max()) >= 0.5 else base
        d = depth_from_mask(a_b) if depth is None else None
    if d is None:
        assert depth is not None
        d = cast(F32, cv2.resize(depth.astype(np.float32, copy=False), (bw, bh)))
    pos = np.clip(d, 0.0, 1.0) * np.float32(_DEPTH_LEVELS - 1)
    acc = plate * np.maximum(np.float32(1.0) - pos, np.float32(0.0))[..., None]
    for k in range(1, _DEPTH_LEVELS):
        wk = np.maximum(np.float32(1.0) - np.abs(pos - np.float32(k)), np.float32(0.0))
        if float(wk.max()) <= 0.0:
            continue
        s_k = sigma * k / (_DEPTH_LEVELS - 1)
        tw, th = _fit((bw, bh), round(w * _SIGMA_SMALL / s_k))
        low = plate if tw == bw else cv2.resize(plate, (tw, th), interpolation=cv2.INTER_AREA)
        lev = cv2.GaussianBlur(low, (0, 0), s_k * tw / w, borderType=cv2.BORDER_REFLECT)
        if (tw, th) != (bw, bh):
            lev = cv2.resize(lev, (bw, bh), interpolation=cv2.INTER_LINEAR)
        acc += lev * wk[..., None]
    return _to_u8(acc)
