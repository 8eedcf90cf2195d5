"""A synthetic moving-person sequence whose true mask is known exactly.

Real video sets (DAVIS) have hand-drawn masks and real motion, so "lag" (how
many frames the mask trails the person) cannot be told apart from annotation
noise. Here a person cut-out (image + mask, e.g. from ``shared/data/portraits``)
is pasted on a real background and moved along a known path, so the mask of
every frame is exact; :func:`lag_frames` then finds the delay that best
explains a predicted mask sequence, and :func:`flicker` the frame-to-frame
change that the truth does not explain.

Also :func:`exposure_ramp`: brightness swinging 0.3x -> 1.7x -> 1x, as a camera's
auto-exposure does, for the face-guard test.

Everything here is pure numpy/OpenCV; :func:`load_motion_set` is the one
function that reads files.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

from ..frame import F32, U8

__all__ = [
    "MotionPath",
    "exposure_gains",
    "exposure_ramp",
    "flicker",
    "lag_errors",
    "lag_frames",
    "load_background",
    "load_motion_set",
    "load_portrait",
    "moving_person",
    "paste",
]


@dataclass(frozen=True, slots=True)
class MotionPath:
    """Where the person is in frame ``t``: a sideways sway plus a small bob.

    ``amplitude`` is in frame widths (0.25 = a quarter of the width either
    side of centre); ``period`` in frames. The peak speed is
    ``2*pi*amplitude*width/period`` px/frame (about 26 px at 1280 wide with
    the defaults: a brisk lean, the speed at which lag shows).
    """

    amplitude: float = 0.2
    period: int = 60
    bob: float = 0.02  # vertical, in frame heights
    scale: float = 0.85  # person height / frame height

    def offset(self, t: int, size: tuple[int, int]) -> tuple[int, int]:
        w, h = size
        ph = 2.0 * math.pi * t / self.period
        return round(self.amplitude * w * math.sin(ph)), round(self.bob * h * math.sin(2 * ph))


def paste(
    person: U8, person_mask: U8, background: U8, dx: int, dy: int, scale: float
) -> tuple[U8, U8]:
    """Person cut-out over ``background``, bottom-centred then shifted by (dx, dy).

    ``person`` is HxWx3 BGR, ``person_mask`` HxW uint8 (255 = person). The
    cut-out is scaled to ``scale`` of the background's height and sits on its
    bottom edge (a video-call framing: shoulders cut by the border). Returns
    (frame, mask) at the background's size; the mask is binary 0/255 and the
    frame uses exactly that mask, so the truth is exact.
    """
    bh, bw = background.shape[:2]
    ph = max(1, round(bh * scale))
    pw = max(1, round(person.shape[1] * ph / person.shape[0]))
    p = cv2.resize(person, (pw, ph), interpolation=cv2.INTER_AREA)
    m = cv2.resize(person_mask, (pw, ph), interpolation=cv2.INTER_NEAREST) > 127
    x0 = (bw - pw) // 2 + dx
    y0 = bh - ph + dy
    frame = background.copy()
    mask = np.zeros((bh, bw), np.uint8)
    # clip the paste rectangle to the frame
    fx0, fy0 = max(0, x0), max(0, y0)
    fx1, fy1 = min(bw, x0 + pw), min(bh, y0 + ph)
    if fx1 <= fx0 or fy1 <= fy0:
        return frame, mask
    sub_m = m[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    sub_p = p[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    region = frame[fy0:fy1, fx0:fx1]
    region[sub_m] = sub_p[sub_m]
    mask[fy0:fy1, fx0:fx1][sub_m] = 255
    return frame, mask


def moving_person(
    person: U8,
    person_mask: U8,
    background: U8,
    n_frames: int = 90,
    path: MotionPath | None = None,
) -> Iterator[tuple[U8, U8]]:
    """Yield ``n_frames`` (frame, exact mask) pairs of the person moving along ``path``."""
    path = path or MotionPath()
    size = (background.shape[1], background.shape[0])
    for t in range(n_frames):
        dx, dy = path.offset(t, size)
        yield paste(person, person_mask, background, dx, dy, path.scale)


def exposure_gains(n_frames: int, low: float = 0.3, high: float = 1.7) -> F32:
    """Brightness gain per frame: 1 -> ``low`` -> ``high`` -> 1, piecewise linear."""
    knots_t = np.array([0.0, 0.25, 0.75, 1.0]) * max(1, n_frames - 1)
    knots_g = np.array([1.0, low, high, 1.0])
    return cast(F32, np.interp(np.arange(n_frames), knots_t, knots_g).astype(np.float32))


def exposure_ramp(frame: U8, gains: Sequence[float]) -> Iterator[U8]:
    """``frame`` with each gain applied (saturating at 255), as auto-exposure would."""
    f = frame.astype(np.float32)
    for g in gains:
        yield cast(U8, cv2.convertScaleAbs(f, alpha=float(g)))


def _as_unit(a: NDArray[np.generic]) -> F32:
    x = np.asarray(a)
    if x.dtype == np.uint8:
        return cast(F32, x.astype(np.float32) * np.float32(1.0 / 255.0))
    return x.astype(np.float32, copy=False)


def lag_errors(
    alphas: Sequence[NDArray[np.generic]], truths: Sequence[NDArray[np.generic]], max_lag: int = 4
) -> list[float]:
    """Mean |alpha_t - truth_{t-k}| for k = 0..max_lag, over the frames every k can use.

    Alphas and truths are uint8 (0..255) or float (0..1), same shapes.
    """
    n = min(len(alphas), len(truths))
    if n <= max_lag:
        raise ValueError(f"need more than {max_lag} frames, got {n}")
    a = [_as_unit(x) for x in alphas[:n]]
    g = [_as_unit(x) for x in truths[:n]]
    out = []
    for k in range(max_lag + 1):
        errs = [float(np.abs(a[t] - g[t - k]).mean()) for t in range(max_lag, n)]
        out.append(float(np.mean(errs)))
    return out


def lag_frames(
    alphas: Sequence[NDArray[np.generic]], truths: Sequence[NDArray[np.generic]], max_lag: int = 4
) -> int:
    """The delay in frames (0..max_lag) that best explains ``alphas`` from ``truths``.

    0 means the mask follows the person; 1 means it shows where the person
    was one frame ago, and so on.
    """
    errs = lag_errors(alphas, truths, max_lag)
    return int(np.argmin(errs))


def flicker(alphas: Sequence[NDArray[np.generic]], truths: Sequence[NDArray[np.generic]]) -> float:
    """Mean |alpha_t - alpha_{t-1}| over pixels whose truth did not change, in 0..1.

    The truth's own motion is excluded, so only change that the scene does
    not explain (flicker, boiling edges) counts.
    """
    vals = []
    for t in range(1, min(len(alphas), len(truths))):
        a0, a1 = _as_unit(alphas[t - 1]), _as_unit(alphas[t])
        g0, g1 = np.asarray(truths[t - 1]), np.asarray(truths[t])
        same = (g0 > 127) == (g1 > 127) if g0.dtype == np.uint8 else (g0 > 0.5) == (g1 > 0.5)
        if same.any():
            vals.append(float(np.abs(a1 - a0)[same].mean()))
    return float(np.mean(vals)) if vals else 0.0


def _clean_background(frame: U8, mask: U8) -> U8:
    """Remove the annotated person from a frame (inpainting at low resolution)."""
    h, w = frame.shape[:2]
    sw, sh = max(1, w // 4), max(1, h // 4)
    small = cv2.resize(frame, (sw, sh), interpolation=cv2.INTER_AREA)
    m = cv2.resize(mask, (sw, sh), interpolation=cv2.INTER_NEAREST)
    m = cv2.dilate(m, np.ones((7, 7), np.uint8))
    filled = cv2.inpaint(small, m, 5, cv2.INPAINT_TELEA)
    up = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    out = frame.copy()
    big = cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST) > 0
    out[big] = up[big]
    return cast(U8, out)


def load_motion_set(
    shared: Path,
    *,
    portrait: str = "00002",
    background: str = "hike/00000",
    size: tuple[int, int] = (1280, 720),
    n_frames: int = 90,
    path: MotionPath | None = None,
) -> list[tuple[U8, U8]]:
    """The standard synthetic set from ``shared/data``: frames and exact masks.

    The person is ``portraits/images/<portrait>.jpg`` with its mask; the
    background is a DAVIS frame (``<seq>/<frame>``) with its annotated person
    inpainted away, resized to ``size``.
    """
    img, msk = load_portrait(shared, portrait)
    bg = load_background(shared, background, size)
    return list(moving_person(img, msk, bg, n_frames, path))


def load_portrait(shared: Path, stem: str) -> tuple[U8, U8]:
    """Dev portrait ``stem`` of ``shared/data/portraits``: the photo (uint8 HxWx3 BGR) and
    its exact mask (uint8 HxW, 255 = person).

    Raises:
        FileNotFoundError: either file is missing or unreadable.
    """
    data = shared / "data" / "portraits"
    img = cv2.imread(str(data / "images" / f"{stem}.jpg"), cv2.IMREAD_COLOR)
    msk = cv2.imread(str(data / "masks" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
    if img is None or msk is None:
        raise FileNotFoundError(f"portrait {stem} missing under {data}")
    return cast(U8, img), cast(U8, msk)


def load_background(
    shared: Path, background: str = "hike/00000", size: tuple[int, int] = (1280, 720)
) -> U8:
    """A DAVIS frame (``<seq>/<frame>``) with its annotated person inpainted away, at ``size``."""
    data = shared / "data"
    seq, stem = background.split("/")
    bg = cv2.imread(str(data / "davis" / seq / "frames" / f"{stem}.jpg"), cv2.IMREAD_COLOR)
    bgm = cv2.imread(str(data / "davis" / seq / "masks" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
    if bg is None or bgm is None:
        raise FileNotFoundError(f"background {background} missing under {data}")
    clean = _clean_background(cast(U8, bg), cast(U8, bgm))
    return cast(U8, cv2.resize(clean, size, interpolation=cv2.INTER_LINEAR))
