"""Numpy <-> PyAV frame conversion on the fast path.

``av.VideoFrame.from_ndarray(img, format="bgr24")`` costs ~8 ms at 1080p and
the encoder then spends another ~4 ms converting it to YUV 4:2:0 with
swscale; OpenCV's SIMD ``BGR -> I420`` plus a ``yuv420p`` frame costs ~1 ms
for the same result. That is a third of the CPU per frame of a 1080p file job.
"""

from __future__ import annotations

from typing import cast

import av
import cv2
import numpy as np
from numpy.typing import NDArray

__all__ = ["bgr_to_video_frame"]


def bgr_to_video_frame(img: NDArray[np.uint8]) -> av.VideoFrame:
    """uint8 HxWx3 BGR -> a ``yuv420p`` VideoFrame (BT.601, as swscale's default).

    Odd sizes cannot be 4:2:0 subsampled by OpenCV; they go through PyAV's
    own ``bgr24`` path.
    """
    h, w = img.shape[:2]
    if h % 2 or w % 2:
        return av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
    yuv = cast(NDArray[np.uint8], cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420))
    return av.VideoFrame.from_ndarray(yuv, format="yuv420p")
