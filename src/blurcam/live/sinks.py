"""Live sinks: a virtual camera, a file recording, a local preview, or nothing.

A sink has ``write(frame, ts)``, ``close()`` (finish and keep the output) and
``abort()`` (stop and keep nothing half-written), and is a context manager.
``write`` gets the runner's working buffer, so a sink that keeps a frame past
the call copies it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import DeviceUnavailableError, SinkError
from ..frame import U8
from ..io import VideoWriter, check_output_path
from ..io.atomic import KeepOrDiscard

__all__ = [
    "MODPROBE_HINT",
    "FileSink",
    "LiveSink",
    "NullSink",
    "PreviewSink",
    "VirtualCamSink",
    "lower_thread_priority",
]

log = logging.getLogger(__name__)


MODPROBE_HINT = "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=blurcam"


def lower_thread_priority(nice: int) -> None:
    """Raise the calling thread's nice value by ``nice`` (Linux only; elsewhere nothing).

    Background work (the model, the recording encoder) yields the CPU to the
    latency-critical capture and composite threads; lowering one's own
    priority needs no privilege. On Linux ``setpriority`` on a thread id
    touches that thread alone; on other systems it would touch the process.
    """
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except (OSError, AttributeError) as e:  # not allowed or not supported: run as is
        log.debug("could not lower thread priority: %s", e)


class LiveSink(Protocol):
    """Where processed frames go."""

    name: str

    def write(self, frame: U8, ts: float) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class _Base(KeepOrDiscard):
    name = "sink"

    def write(self, frame: U8, ts: float) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class NullSink(_Base):
    """Discards frames (benchmarks measure the runner alone with it)."""

    name = "null"

    def __init__(self) -> None:
        self.frames = 0

    def write(self, frame: U8, ts: float) -> None:
        self.frames += 1


# -------------------------------------------------------------- virtual camera
def _pyvirtualcam_camera(width: int, height: int, fps: float, device: str | None) -> Any:
    try:
        import pyvirtualcam
    except ImportError as e:
        raise DeviceUnavailableError(
            "the virtual camera needs pyvirtualcam: pip install 'blurcam[live]'"
        ) from e
    return pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.BGR, device=device)


def explain_vcam_error(message: str, device: str | None) -> DeviceUnavailableError:
    """pyvirtualcam's RuntimeError text -> one clear :class:`DeviceUnavailableError`."""
    low = message.lower()
    where = device or "the virtual camera"
    if "no v4l2 loopback device" in low or "does not exist" in low:
        return DeviceUnavailableError(
            f"no virtual camera device{f' {device}' if device else ''}: on Linux create one "
            f"with `{MODPROBE_HINT}` (package v4l2loopback-dkms); on Windows/macOS install "
            "OBS Studio and start its virtual camera once"
        )
    if "busy" in low or "could not be opened" in low or "in use" in low:
        return DeviceUnavailableError(
            f"{where} is busy (another program is writing to it): stop that program or pick "
            "another device with --vcam-device"
        )
    if "not a video output device" in low or "not a v4l2 device" in low:
        return DeviceUnavailableError(
            f"{where} is not a v4l2loopback device (a real camera?): pick the loopback one "
            f"with --vcam-device, or create one with `{MODPROBE_HINT}`"
        )
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return DeviceUnavailableError(f"cannot start the virtual camera: {first}")


class VirtualCamSink(_Base):
    """Frames to a virtual camera through ``pyvirtualcam`` (v4l2loopback, OBS camera).

    Raises:
        DeviceUnavailableError: no device, device busy, or pyvirtualcam missing.
    """

    name = "vcam"

    def __init__(
        self,
        size: tuple[int, int],
        fps: float,
        *,
        device: str | None = None,
        open_camera: Any = _pyvirtualcam_camera,
    ) -> None:
        self.size = size
        try:
            self._cam = open_camera(size[0], size[1], fps, device)
        except RuntimeError as e:
            raise explain_vcam_error(str(e), device) from None
        except OSError as e:
            raise explain_vcam_error(e.strerror or str(e), device) from None
        self.device = str(getattr(self._cam, "device", device or "?"))
        log.info("virtual camera %s: %dx%d at %.1f fps", self.device, *size, fps)

    def write(self, frame: U8, ts: float) -> None:
        if self._cam is None:
            raise SinkError("virtual camera is closed")
        try:
            self._cam.send(np.ascontiguousarray(frame))
        except (RuntimeError, OSError, ValueError) as e:
            raise SinkError(f"virtual camera {self.device}: {e}") from e

    def close(self) -> None:
        if self._cam is not None:
            with contextlib.suppress(Exception):
                self._cam.close()
            self._cam = None


# ----------------------------------------------------------------------- file
_RECORD_EXTS = (".mp4", ".mkv", ".mov", ".avi")


class FileSink(_Base):
    """Records to a video file through :class:`~blurcam.io.VideoWriter`, atomically.

    The file appears only when complete. Encoding (libx264 ``preset``, one
    encoder thread for a predictable CPU share beside the runner) runs in
    the writer's own thread behind a bounded queue, so that ``write`` costs
    one frame copy. When the encoder falls ``queue_size`` frames behind,
    ``write`` leaves the frame out of the file (counted in ``dropped``)
    instead of stalling the live output; pass ``block=True`` to wait
    instead. Timestamps follow the capture times on a 1/fps grid, so dropped
    frames leave gaps instead of speeding the video up. Odd sizes are kept
    (H.264 then uses yuv444p). ``abort`` (and any failure) removes the
    temporary file; an existing output is refused unless ``force``.

    Raises:
        SinkError: the path cannot be written, exists, or encoding failed.
    """

    name = "file"

    def __init__(
        self,
        path: Path,
        size: tuple[int, int],
        fps: float,
        *,
        force: bool = False,
        preset: str = "ultrafast",
        crf: int = 23,
        queue_size: int = 8,
        nice: int = 0,
        block: bool = False,
    ) -> None:
        ext = path.suffix.lower()
        if ext not in _RECORD_EXTS:
            raise SinkError(f"record to .mp4, .mkv, .mov or .avi, not {ext or 'no extension'!r}")
        check_output_path(path, force=force)
        self.path = path
        self.rate = Fraction(fps).limit_denominator(1001)
        # not lowered by default: measured with a CPU hog, a nice encoder fell behind,
        # its queue filled and write() blocked the composite (docs/LIVE.md)
        self._writer = VideoWriter(
            path,
            size,
            self.rate,
            preset=preset,
            crf=crf,
            threads=1,
            queue_size=queue_size,
            block=block,
            thread_setup=lambda: lower_thread_priority(nice),
        )
        self.size = self._writer.size
        self._ts0: float | None = None

    @property
    def frames(self) -> int:
        """Frames accepted for the file."""
        return self._writer.frames

    @property
    def dropped(self) -> int:
        """Frames left out because the encoder queue was full."""
        return self._writer.dropped

    def write(self, frame: U8, ts: float) -> None:
        if self._ts0 is None:
            self._ts0 = ts
        # the writer turns a repeated tick into the next one
        self._writer.write(frame, round((ts - self._ts0) * float(self.rate)))

    def close(self) -> None:
        """Flush the encoder and move the finished file into place."""
        frames = self.frames
        self._writer.close()
        if frames:
            log.info("recorded %d frames to %s", frames, self.path)

    def abort(self) -> None:
        """Stop and remove the temporary file; nothing is left at ``path``."""
        self._writer.abort()


# -------------------------------------------------------------------- preview
class PreviewSink(_Base):
    """Keeps the newest frame for the local preview page (MJPEG over HTTP).

    OpenCV's window functions are missing from opencv-python-headless, so the
    preview is a page served on localhost by :class:`~blurcam.live.control.ControlServer`;
    this sink only holds a copy of the newest frame and wakes the page's
    stream. Frames are JPEG-encoded in the HTTP thread, at the viewer's pace.
    """

    name = "preview"

    def __init__(self, max_width: int = 960) -> None:
        self.max_width = max_width
        self._cond = threading.Condition()
        self._frame: U8 | None = None
        self._seq = 0
        self._closed = False

    def write(self, frame: U8, ts: float) -> None:
        with self._cond:
            if self._frame is None or self._frame.shape != frame.shape:
                self._frame = np.empty_like(frame)
            np.copyto(self._frame, frame)
            self._seq += 1
            self._cond.notify_all()

    def latest(self, after: int, timeout: float = 1.0) -> tuple[int, U8 | None]:
        """(sequence number, copy of the newest frame) once one newer than ``after`` exists."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._seq <= after and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return self._seq, None
                self._cond.wait(left)
            if self._frame is None:
                return self._seq, None
            return self._seq, self._frame.copy()

    def jpeg(self, after: int, timeout: float = 1.0, quality: int = 80) -> tuple[int, bytes | None]:
        """Like :meth:`latest`, JPEG-encoded and shrunk to ``max_width``."""
        import cv2

        seq, img = self.latest(after, timeout)
        if img is None:
            return seq, None
        h, w = img.shape[:2]
        if w > self.max_width:
            size = (self.max_width, round(h * self.max_width / w))
            img = np.asarray(cv2.resize(img, size, interpolation=cv2.INTER_AREA), np.uint8)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        return seq, buf.tobytes() if ok else None

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
