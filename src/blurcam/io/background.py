"""Replacement backgrounds: a still image or a looping video, scaled to cover the frame.

"Cover" (as CSS ``object-fit: cover``): scale until the background fills the
frame in both directions, then crop the middle, so nothing is stretched and no
bars appear. A still image is scaled once per frame size and reused; a video is
decoded with PyAV one frame per processed frame (the background plays at the
output's frame rate), restarting at the end.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
from numpy.typing import NDArray

from ..errors import SourceError
from ..frame import U8, as_bgr
from .image import IMAGE_EXTS, VIDEO_EXTS, read_image
from .video_reader import open_input

__all__ = ["BackgroundSource", "cover", "cover_geometry", "studio_backdrop"]

log = logging.getLogger(__name__)


def studio_backdrop(w: int = 1280, h: int = 720) -> U8:
    """The built-in replacement: a warm studio wall with two soft windows and a few lamps.

    Drawn here rather than shipped as a file, so ``replace`` works without a
    user picture (and the web page has something before an upload) with no
    licence question. Deterministic, uint8 HxWx3 BGR.
    """
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    top = np.array([120, 150, 200], np.float32)  # BGR: warm beige
    bottom = np.array([40, 60, 90], np.float32)
    img = (top * (1 - y) + bottom * y) * np.ones((1, w, 1), np.float32)
    glow = np.zeros((h, w), np.float32)
    for x0 in (0.12, 0.62):
        p0, p1 = (int(x0 * w), int(0.12 * h)), (int((x0 + 0.22) * w), int(0.55 * h))
        cv2.rectangle(glow, p0, p1, 1.0, -1)
    glow = cast(NDArray[np.float32], cv2.GaussianBlur(glow, (0, 0), 0.02 * w))
    img += glow[..., None] * np.array([90, 110, 120], np.float32)
    for cx, cy, r in ((0.45, 0.25, 0.012), (0.5, 0.3, 0.01), (0.88, 0.2, 0.014), (0.05, 0.7, 0.01)):
        cv2.circle(img, (int(cx * w), int(cy * h)), int(r * w), (200, 240, 255), -1, cv2.LINE_AA)
    return cast(U8, np.clip(img, 0, 255).astype(np.uint8))


def cover_geometry(src: tuple[int, int], dst: tuple[int, int]) -> tuple[int, int, int, int]:
    """(scaled_w, scaled_h, x0, y0): scale ``src`` (w, h) to cover ``dst``, crop offsets."""
    sw, sh = src
    dw, dh = dst
    s = max(dw / sw, dh / sh)
    tw, th = max(dw, math.ceil(sw * s - 1e-6)), max(dh, math.ceil(sh * s - 1e-6))
    return tw, th, (tw - dw) // 2, (th - dh) // 2


def cover(image: U8, size: tuple[int, int]) -> U8:
    """``image`` scaled (aspect kept) and centre-cropped to exactly ``size`` (w, h)."""
    h, w = image.shape[:2]
    tw, th, x0, y0 = cover_geometry((w, h), size)
    # area averaging only where it matters (>2x smaller); it is slow on big images
    interp = cv2.INTER_AREA if 2 * tw < w else cv2.INTER_LINEAR
    scaled = image if (tw, th) == (w, h) else cv2.resize(image, (tw, th), interpolation=interp)
    return np.ascontiguousarray(scaled[y0 : y0 + size[1], x0 : x0 + size[0]])


class BackgroundSource:
    """Frames of a replacement background at a requested size.

    ``source`` is a path to an image (jpg/png/webp/...) or a video
    (mp4/webm/mov/...), or a BGR uint8 array (the web page hands in uploaded
    pictures). :meth:`frame` returns the background for one processed frame;
    the array is owned by this object and valid until the next call: do not
    modify it.

    Raises:
        SourceError: the file is missing, not decodable, or a video has no frames.
    """

    def __init__(self, source: str | Path | NDArray[Any]) -> None:
        self._image: U8 | None = None
        self._cache: tuple[tuple[int, int], U8] | None = None
        self._container: Any = None
        self._frames: Any = None
        self.path: Path | None = None
        if isinstance(source, np.ndarray):
            self._image = as_bgr(source)
            return
        p = Path(source)
        self.path = p
        ext = p.suffix.lower()
        if ext in VIDEO_EXTS:
            self._open_video()
        elif ext in IMAGE_EXTS:
            self._image = read_image(p)
        else:
            raise SourceError(
                f"background {p}: unknown extension {ext!r} "
                f"(images: {', '.join(IMAGE_EXTS)}; videos: {', '.join(VIDEO_EXTS)})"
            )

    @property
    def is_video(self) -> bool:
        return self._image is None

    # ----------------------------------------------------------------- video
    def _open_video(self) -> None:
        assert self.path is not None
        if not self.path.is_file():
            raise SourceError(f"background video not found: {self.path}")
        # the checks every video input gets, the pixel limit among them
        self._container = open_input(self.path)
        st = self._container.streams.video[0]
        st.thread_type = "AUTO"
        self._frames = self._container.decode(st)

    def _next_video_frame(self) -> Any:
        import av

        for attempt in range(2):
            try:
                return next(self._frames)
            except StopIteration:
                if attempt:
                    break
                log.debug("background video %s: looping", self.path)
                try:  # rewind; some files do not seek, reopen them
                    st = self._container.streams.video[0]
                    self._container.seek(0, stream=st)
                    self._frames = self._container.decode(st)
                except av.error.FFmpegError:
                    self._container.close()
                    self._open_video()
            except av.error.FFmpegError as e:
                raise SourceError(f"cannot decode background video {self.path}: {e}") from e
        raise SourceError(f"background video {self.path} has no decodable frames")

    # ------------------------------------------------------------------ frames
    def frame(self, size: tuple[int, int]) -> U8:
        """The background for the next processed frame, exactly ``size`` (w, h), uint8 BGR."""
        if self._image is not None:
            if self._cache is None or self._cache[0] != size:
                self._cache = (size, cover(self._image, size))
            return self._cache[1]
        # convert at the video's own size, then scale with OpenCV: ~2 ms for
        # 576p -> 1080p, half of what swscale takes for the same scaling
        return cover(self._next_video_frame().to_ndarray(format="bgr24"), size)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
            self._frames = None

    def __enter__(self) -> BackgroundSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
