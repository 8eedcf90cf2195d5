"""Live sources: a camera, or a video file / image folder played as a stand-in camera.

A source is iterable and yields :class:`Frame` objects (image + capture
timestamp on the :func:`time.monotonic` clock + index). Every frame it yields
has the same size, so sinks such as a virtual camera can be opened once.

* :class:`CameraSource` reads a camera through ``cv2.VideoCapture`` (index or
  device path, requested size/fps, MJPG when offered). When the camera is
  unplugged or returns empty frames it retries with exponential back-off and
  reports its state through ``status`` instead of ending the stream.
* :class:`FileSource` plays a video at its native frame rate (or an image
  folder at ``fps``), optionally looping. Its timestamps are the moments the
  frames are *due*, so a source that falls behind shows up as latency, never as
  a hidden backlog; when it is more than one frame late it skips frames
  (counted in ``skipped``) like a camera driver would.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from ..errors import DeviceUnavailableError, SettingsError, SourceError
from ..frame import U8, as_bgr
from ..io import VIDEO_EXTS, list_images, probe_video, read_image
from ..io.video import iter_frames

__all__ = [
    "CameraSource",
    "FileSource",
    "Frame",
    "LiveSource",
    "fit_frame",
    "open_source",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured frame: uint8 HxWx3 BGR ``image``, ``ts`` in seconds on ``time.monotonic``."""

    image: U8
    ts: float
    index: int


class LiveSource(Protocol):
    """What the runner needs from a source."""

    size: tuple[int, int]  # (width, height) of every frame
    fps: float  # nominal frame rate
    status: str  # "ok", or a short human-readable fault ("camera lost, retry 3 in 0.8 s")
    skipped: int  # frames the source itself dropped (late or unreadable)

    def __iter__(self) -> Iterator[Frame]: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


def fit_frame(image: U8, size: tuple[int, int]) -> U8:
    """Resize ``image`` to ``size`` (w, h) when it differs (area down, linear up)."""
    h, w = image.shape[:2]
    if (w, h) == size:
        return image
    interp = cv2.INTER_AREA if w * h > size[0] * size[1] else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(image, size, interpolation=interp), dtype=np.uint8)


def _check_size(width: int | None, height: int | None) -> None:
    for name, v in (("width", width), ("height", height)):
        if v is not None and not 16 <= v <= 7680:
            raise SettingsError(f"{name} must be in [16, 7680], got {v}")
    if (width is None) != (height is None):
        raise SettingsError("give both --width and --height, or neither")


# --------------------------------------------------------------------- camera
class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` a camera source uses (tests pass a fake)."""

    def isOpened(self) -> bool: ...

    def read(self) -> tuple[bool, Any]: ...

    def set(self, prop: int, value: float) -> bool: ...

    def get(self, prop: int) -> float: ...

    def release(self) -> None: ...


def _open_cv_capture(device: int | str) -> Capture:
    """``cv2.VideoCapture`` without OpenCV's own warnings on stderr (we say it in one line)."""
    log_api = getattr(getattr(cv2, "utils", None), "logging", None)
    old = log_api.getLogLevel() if log_api is not None else None
    if log_api is not None:
        log_api.setLogLevel(log_api.LOG_LEVEL_ERROR)
    try:
        cap: Capture = cv2.VideoCapture(device)
    finally:
        if log_api is not None and old is not None:
            log_api.setLogLevel(old)
    return cap


class CameraSource:
    """A camera by index (``0``) or device path (``/dev/video0``) through OpenCV.

    ``width``/``height``/``fps`` are requested from the driver; whatever it
    delivers is resized to the first frame's size (or the requested size) so
    the stream never changes size. A failed read does not end the stream:
    the camera is reopened with back-off (``backoff`` doubling up to
    ``max_backoff`` seconds) and ``status`` says so; ``give_up_after`` seconds
    without a frame (``None`` = never) raises :class:`DeviceUnavailableError`.

    Raises:
        DeviceUnavailableError: the camera cannot be opened at start.
    """

    def __init__(
        self,
        device: int | str = 0,
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        mjpg: bool = True,
        backoff: float = 0.1,
        max_backoff: float = 2.0,
        give_up_after: float | None = None,
        open_capture: Callable[[int | str], Capture] = _open_cv_capture,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_size(width, height)
        self.device = device
        self._want = (width, height, fps, mjpg)
        self._open_capture = open_capture
        self._clock = clock
        self.backoff, self.max_backoff, self.give_up_after = backoff, max_backoff, give_up_after
        self._stop = threading.Event()
        self.status = "ok"
        self.skipped = 0
        self.reconnects = 0
        self._cap = self._open()
        if self._cap is None:
            raise DeviceUnavailableError(
                f"cannot open camera {device}: not connected, or in use by another program"
            )
        ok, img = self._read_valid(self._cap)
        if not ok:
            self._cap.release()
            raise DeviceUnavailableError(f"camera {device} opened but returns no frames")
        self._first: U8 | None = img
        h, w = img.shape[:2]
        self.size: tuple[int, int] = (width, height) if width and height else (w, h)
        got = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = float(fps or (got if 1.0 <= got <= 240.0 else 30.0))
        log.info("camera %s: %dx%d at %.1f fps", device, *self.size, self.fps)

    def _open(self) -> Capture | None:
        try:
            cap = self._open_capture(self.device)
        except Exception as e:  # OpenCV raises cv2.error for some bad paths
            log.debug("opening camera %s failed: %s", self.device, e)
            return None
        if not cap.isOpened():
            cap.release()
            return None
        width, height, fps, mjpg = self._want
        if mjpg:  # most USB cameras reach 720p/1080p at 30 fps only in MJPG
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
        if width and height:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps:
            cap.set(cv2.CAP_PROP_FPS, fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a driver backlog
        return cap

    @staticmethod
    def _read_valid(cap: Capture) -> tuple[bool, U8]:
        try:
            ok, img = cap.read()
        except Exception:  # a yanked USB camera can make the backend throw
            return False, np.empty((0, 0, 3), np.uint8)
        if not ok or img is None or getattr(img, "size", 0) == 0 or img.ndim not in (2, 3):
            return False, np.empty((0, 0, 3), np.uint8)
        if img.ndim == 2 or img.shape[2] != 3:
            img = as_bgr(img)
        return True, img

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while not self._stop.is_set():
            if self._first is not None:  # read while opening or reconnecting
                ok, img = True, self._first
                self._first = None
            elif self._cap is not None:
                ok, img = self._read_valid(self._cap)
            else:
                ok, img = False, None
            if ok:
                assert img is not None
                yield Frame(fit_frame(img, self.size), self._clock(), index)
                index += 1
            elif not self._recover():
                return

    def _recover(self) -> bool:
        """Reopen the camera with back-off until it gives a frame; False when stopped.

        The good frame read while probing is kept in ``_first`` for the caller.
        """
        lost_at = self._clock()
        delay = self.backoff
        attempt = 0
        log.warning("camera %s: no frame; reconnecting", self.device)
        while not self._stop.is_set():
            attempt += 1
            self.skipped += 1
            if self.give_up_after is not None and self._clock() - lost_at > self.give_up_after:
                self.status = "camera lost"
                raise DeviceUnavailableError(
                    f"camera {self.device} gave no frame for {self.give_up_after:g} s"
                )
            self.status = f"camera lost, retry {attempt} in {delay:.1f} s"
            if self._stop.wait(delay):
                return False
            if self._cap is not None:
                self._cap.release()
            self._cap = self._open()
            if self._cap is not None:
                ok, img = self._read_valid(self._cap)
                if ok:
                    self._first = img
                    self.reconnects += 1
                    self.status = "ok"
                    log.warning("camera %s: back after %d tries", self.device, attempt)
                    return True
            delay = min(self.max_backoff, delay * 2)
        return False

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        if self._cap is not None:
            self._cap.release()
            self._cap = None


# ----------------------------------------------------------------------- file
class FileSource:
    """A video file or an image folder played in real time as a stand-in camera.

    Frames are released when they are due (video: at their presentation
    timestamps, so the native frame rate; folder: at ``fps``, default 30) and
    are stamped with that due time. ``speed`` scales playback (tests use it);
    ``loop`` starts over at the end; ``width``/``height`` resize every frame.

    Raises:
        SourceError: the file or folder cannot be read.
    """

    def __init__(
        self,
        path: Path,
        *,
        loop: bool = False,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        speed: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_size(width, height)
        if speed <= 0:
            raise SettingsError(f"speed must be > 0, got {speed}")
        self.path = path
        self.loop = loop
        self.speed = speed
        self._clock = clock
        self._stop = threading.Event()
        self.status = "ok"
        self.skipped = 0
        self.loops = 0
        if not path.exists():
            raise SourceError(f"input not found: {path}")
        if path.is_dir():
            self._images = list_images(path)
            first = read_image(self._images[0])
            native = (first.shape[1], first.shape[0])
            self.fps = float(fps or 30.0)
        else:
            if path.suffix.lower() not in VIDEO_EXTS:
                raise SourceError(
                    f"{path} is not a video ({', '.join(VIDEO_EXTS)}), a folder or a camera"
                )
            self._images = []
            info = probe_video(path)
            native = (info.width, info.height)
            self.fps = float(fps or info.fps or 30.0)
        self.size: tuple[int, int] = (width, height) if width and height else native

    def _raw(self) -> Iterator[tuple[U8, float]]:
        """(image, media time in seconds) of one pass."""
        if self._images:
            for i, p in enumerate(self._images):
                yield read_image(p), i / self.fps
        else:
            ts0: float | None = None
            for img, ts in iter_frames(self.path):
                ts0 = ts if ts0 is None else ts0
                yield img, ts - ts0

    def __iter__(self) -> Iterator[Frame]:
        interval = 1.0 / self.fps
        start: float | None = None  # set at the first decoded frame (opening takes time)
        offset = 0.0  # media time of the current pass's start
        index = 0
        while not self._stop.is_set():
            last = -interval
            n = 0
            for img, mt in self._raw():
                if self._stop.is_set():
                    return
                n += 1
                last = mt
                if start is None:
                    start = self._clock() - mt / self.speed
                due = start + (offset + mt) / self.speed
                now = self._clock()
                if now - due > interval / self.speed:
                    self.skipped += 1  # behind by more than a frame: drop, as a camera would
                    self.status = "source behind, skipping"
                    continue
                img = fit_frame(img, self.size)  # before the due time, as a camera delivers
                if due > self._clock() and self._stop.wait(due - self._clock()):
                    return
                self.status = "ok"
                yield Frame(img, due, index)
                index += 1
            if n == 0:
                raise SourceError(f"{self.path}: no frame could be decoded")
            if not self.loop:
                return
            offset += last + interval
            self.loops += 1

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()


def open_source(
    source: str,
    *,
    loop: bool = False,
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
    mjpg: bool = True,
) -> CameraSource | FileSource:
    """``"0"``/``"/dev/video2"`` -> camera; a video file or image folder -> :class:`FileSource`.

    Raises:
        DeviceUnavailableError: the camera cannot be opened.
        SourceError: the file or folder cannot be read.
    """
    if source.isdigit():
        return CameraSource(int(source), width=width, height=height, fps=fps, mjpg=mjpg)
    path = Path(source).expanduser()
    if source.startswith("/dev/") or (path.exists() and path.is_char_device()):
        return CameraSource(source, width=width, height=height, fps=fps, mjpg=mjpg)
    return FileSource(path, loop=loop, width=width, height=height, fps=fps)
