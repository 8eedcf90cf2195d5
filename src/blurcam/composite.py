"""Blend the person layer over the background layer with the soft alpha.

Most pixels of a frame are pure person (alpha 255: copy) or pure background
(alpha 0: nothing to do when blending in place); only the thin band along the
outline needs arithmetic. No single OpenCV call does that, and NumPy would
build several full-frame temporaries, so the loop is compiled with numba: one
pass over the alpha that reads it eight bytes at a time, skipping words that are
all background and copying words that are all person, so only the outline
costs arithmetic (720p: 0.79 -> 0.28 ms against pixel by pixel; that was
already ~4x faster than a tile-wise NumPy blend and ~3x faster than
``cv2.blendLinear``, measured on 2 cores).

The kernel itself is serial: numba's parallel loop spin-waits for its worker
threads, and on a busy 2-core machine (a call app, a browser, our own capture
and encoder threads) that turned a ~1.5 ms pass into 15-30 ms. Instead the
kernel releases the GIL and a caller may hand the top half of the frame to one
helper thread (``pool``) while it blends the bottom half itself: that thread
sleeps on a lock, never spins.
"""

from __future__ import annotations

from concurrent.futures import Executor

import cv2
import numpy as np
from numpy.typing import NDArray

from ._jit import Kernel, inline
from .frame import U8
from .upscale import row_weights, upscale_linear

__all__ = ["blend", "blend_reference", "render", "render_reference"]


def blend_reference(fg: U8, bg: U8, alpha: U8) -> U8:
    """The definition :func:`blend` implements, in NumPy (for tests and tiny frames).

    ``(fg*w + bg*(256-w) + 128) >> 8`` with ``w = a + (a >> 7)``: mapping 255
    to 256 makes both ends exact (a=255 -> fg, a=0 -> bg) with a shift instead
    of a division; in between it is within 1 of ``round((fg*a + bg*(255-a))/255)``.
    """
    w = alpha.astype(np.uint16)[..., None]
    w += w >> 7
    x = fg.astype(np.uint16) * w
    x += bg.astype(np.uint16) * (256 - w)
    x += 128
    x >>= 8
    return x.astype(np.uint8)


@inline
def _blend_span(fg: U8, row: U8, out: U8, y: int, x0: int, x1: int) -> None:  # pragma: no cover
    for x in range(x0, x1):
        a = np.int32(row[x])
        if a == 0:
            continue
        if a == 255:
            out[y, x, 0] = fg[y, x, 0]
            out[y, x, 1] = fg[y, x, 1]
            out[y, x, 2] = fg[y, x, 2]
            continue
        wa = a + (a >> 7)
        for c in range(3):
            f = np.int32(fg[y, x, c])
            b = np.int32(out[y, x, c])
            out[y, x, c] = (f * wa + b * (256 - wa) + 128) >> 8


def _blend_py(fg: U8, alpha: U8, out: U8) -> None:  # pragma: no cover - compiled
    h, w = alpha.shape
    n8 = w // 8
    full = np.uint64(0xFFFFFFFFFFFFFFFF)
    for y in range(h):
        row = alpha[y]
        # eight alpha bytes at a time: a word that is all background (0) is skipped
        # and an all-person one (255) copied without arithmetic; most of a frame is
        # one or the other, so this pass does ~3x less work than pixel by pixel
        words = row[: n8 * 8].view(np.uint64)
        for k in range(n8):
            v = words[k]
            if v == 0:
                continue
            x0 = k * 8
            if v == full:
                for x in range(x0, x0 + 8):
                    out[y, x, 0] = fg[y, x, 0]
                    out[y, x, 1] = fg[y, x, 1]
                    out[y, x, 2] = fg[y, x, 2]
                continue
            _blend_span(fg, row, out, y, x0, x0 + 8)
        _blend_span(fg, row, out, y, n8 * 8, w)


_blend_inplace = Kernel(_blend_py)

_SPLIT_MIN_PIXELS = 640 * 360  # below this a second thread costs more than it saves


def blend(fg: U8, bg: U8, alpha: U8, out: U8 | None = None, *, pool: Executor | None = None) -> U8:
    """Alpha-blend ``fg`` over ``bg``: uint8 HxWx3 layers, ``alpha`` uint8 HxW (255 = person).

    Where alpha is 255 the result is exactly ``fg`` and where it is 0 exactly
    ``bg`` (see :func:`blend_reference` for the arithmetic). ``out`` may be
    ``bg`` itself to blend in place and save a copy; it must not be ``fg``.
    With ``pool`` (an executor with at least one worker) the top half runs
    there while this thread does the bottom half.
    """
    if out is None:
        out = bg.copy()
    elif out is not bg:
        np.copyto(out, bg)
    fg = np.ascontiguousarray(fg)
    alpha = np.ascontiguousarray(alpha)
    h = alpha.shape[0]
    if pool is None or alpha.size < _SPLIT_MIN_PIXELS:
        _blend_inplace(fg, alpha, out)
        return out
    m = h // 2
    top = pool.submit(_blend_inplace, fg[:m], alpha[:m], out[:m])
    _blend_inplace(fg[m:], alpha[m:], out[m:])
    top.result()
    return out


# ------------------------------------------------------------------ one pass
def render_reference(frame: U8, alpha: U8, layer: U8) -> U8:
    """What :func:`render` gives, step by step: both upsampled, then :func:`blend`."""
    h, w = frame.shape[:2]
    bg = layer if layer.shape == frame.shape else upscale_linear(layer, (w, h))
    return blend(frame, bg, upscale_linear(alpha, (w, h)))


@inline
def _lerp_rows(r0: U8, r1: U8, w1: int, out: U8) -> None:  # pragma: no cover - compiled
    """``out = (r0 * (128 - w1) + r1 * w1 + 64) >> 7`` in 16-bit lanes (vectorised)."""
    b = np.uint16(w1)
    a = np.uint16(128) - b
    for i in range(out.shape[0]):
        out[i] = np.uint8((np.uint16(r0[i]) * a + np.uint16(r1[i]) * b + np.uint16(64)) >> 7)


def _render_py(
    fg: U8,
    a_rows: U8,
    ay0: NDArray[np.int32],
    ay1: NDArray[np.int32],
    awy: NDArray[np.uint16],
    b_rows: U8,
    by0: NDArray[np.int32],
    by1: NDArray[np.int32],
    bwy: NDArray[np.uint16],
    out: U8,
    start: int,
    stop: int,
) -> None:  # pragma: no cover - compiled
    # Branch-free flat loops over each row, in 16-bit lanes, which LLVM
    # vectorises; skipping all-person or all-background runs (as blend does)
    # would cost more here, where background pixels need their layer row too.
    h, w = fg.shape[0], fg.shape[1]
    n3 = w * 3
    fgf = fg.reshape(h, n3)
    bf = b_rows.reshape(b_rows.shape[0], n3)
    of = out.reshape(h, n3)
    arow = np.empty(w, np.uint8)
    a3 = np.empty(n3, np.uint8)
    brow = np.empty(n3, np.uint8)
    for y in range(start, stop):
        _lerp_rows(a_rows[ay0[y]], a_rows[ay1[y]], awy[y], arow)
        for x in range(w):
            v = arow[x]
            a3[3 * x] = v
            a3[3 * x + 1] = v
            a3[3 * x + 2] = v
        _lerp_rows(bf[by0[y]], bf[by1[y]], bwy[y], brow)
        f, o = fgf[y], of[y]
        for i in range(n3):
            a = np.uint16(a3[i])
            wf = a + (a >> np.uint16(7))
            o[i] = np.uint8(
                (np.uint16(f[i]) * wf + np.uint16(brow[i]) * (np.uint16(256) - wf) + 128) >> 8
            )


_render = Kernel(_render_py)


def render(
    frame: U8, alpha: U8, layer: U8, out: U8 | None = None, *, pool: Executor | None = None
) -> U8:
    """The output frame in one pass: ``frame`` over ``layer`` by ``alpha``, both upsampled.

    ``frame`` is uint8 HxWx3 at full resolution; ``alpha`` uint8 (255 =
    person) at any resolution up to the frame's (the working resolution);
    ``layer`` the background, uint8 HxWx3 at full resolution or smaller (a
    blur's small layer). Exactly :func:`render_reference`: the bilinear
    upsampling of :func:`blurcam.upscale.upscale_linear` and the arithmetic of
    :func:`blend_reference`, but the full-resolution alpha and background are
    never written out: each output row reads the frame once, makes its alpha
    and background row from two source rows widened beforehand (OpenCV), and
    is written once. 720p on one core: 0.8 ms (0.4 of it the widening),
    against 1.1 ms for the two upsamples and the blend. With ``pool`` the top half runs on
    its thread while this one does the bottom half.
    """
    h, w = frame.shape[:2]
    if out is None or out.shape != frame.shape:
        out = np.empty_like(frame)
    fg = np.ascontiguousarray(frame)
    a_rows = alpha if alpha.shape[1] == w else cv2.resize(alpha, (w, alpha.shape[0]))
    b_rows = layer if layer.shape[1] == w else cv2.resize(layer, (w, layer.shape[0]))
    a_rows, b_rows = np.ascontiguousarray(a_rows), np.ascontiguousarray(b_rows)
    at, bt = row_weights(alpha.shape[0], h), row_weights(layer.shape[0], h)
    if pool is None or h * w < _SPLIT_MIN_PIXELS:
        _render(fg, a_rows, *at, b_rows, *bt, out, 0, h)
        return out
    m = h // 2
    top = pool.submit(_render, fg, a_rows, *at, b_rows, *bt, out, 0, m)
    _render(fg, a_rows, *at, b_rows, *bt, out, m, h)
    top.result()
    return out
