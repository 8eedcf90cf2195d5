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

import numpy as np
from numpy.typing import NDArray

from ._jit import Kernel, inline

__all__ = ["blend", "blend_reference"]

U8 = NDArray[np.uint8]


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
