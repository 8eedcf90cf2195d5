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
import queue
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ..errors import DeviceUnavailableError, SinkError
from ..io import atomic_output, check_output_path
from ..io.frames import bgr_to_video_frame

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

U8 = NDArray[np.uint8]

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


class _Base:
    name = "sink"

    def write(self, frame: U8, ts: float) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def close(self) -> None:
        pass

    def abort(self) -> None:
        self.close()

    def __enter__(self) -> _Base:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


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
_END = object()


class FileSink(_Base):
    """Records to a video file, atomically: the file appears only when complete.

    Encoding (libx264 ``preset``, yuv420p) runs in its own thread behind a
    bounded queue so that ``write`` costs one frame copy. When the encoder
    falls ``queue_size`` frames behind, ``write`` leaves the frame out of the
    file (counted in ``dropped``) instead of stalling the live output; pass
    ``block=True`` to wait instead. Timestamps follow
    the capture times on a 1/fps grid, so dropped frames leave gaps instead of
    speeding the video up. ``abort`` (and any failure) removes the temporary
    file; an existing output is refused unless ``force``.

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
        import av

        self._av = av
        ext = path.suffix.lower()
        codec = {".mp4": "libx264", ".mkv": "libx264", ".mov": "libx264", ".avi": "mpeg4"}.get(ext)
        if codec is None:
            raise SinkError(f"record to .mp4, .mkv, .mov or .avi, not {ext or 'no extension'!r}")
        check_output_path(path, force=force)
        self.path = path
        self.size = (size[0] - size[0] % 2, size[1] - size[1] % 2)
        self.rate = Fraction(fps).limit_denominator(1001)
        self.frames = 0
        self._atomic: Any = atomic_output(path)  # entered here, left in close()/abort()
        tmp = self._atomic.__enter__()
        try:
            self._out = av.open(str(tmp), mode="w")
            vs: Any = self._out.add_stream(codec, rate=self.rate)
            vs.width, vs.height = self.size
            vs.pix_fmt = "yuv420p"
            vs.time_base = 1 / self.rate
            vs.codec_context.time_base = 1 / self.rate
            vs.codec_context.thread_count = 1  # predictable CPU share beside the runner
            self._tb = 1 / self.rate
            if codec == "libx264":
                vs.options = {"preset": preset, "crf": str(crf)}
            self._vs = vs
        except Exception as e:
            self._atomic.__exit__(type(e), e, e.__traceback__)
            raise SinkError(f"cannot record to {path}: {e}") from e
        self._nice = nice
        self.block = block
        self.dropped = 0  # frames left out because the encoder queue was full
        self._q: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self._ts0: float | None = None
        self._last_pts = -1
        self._closed = False
        self._thread = threading.Thread(target=self._encode, name="blurcam-record", daemon=True)
        self._thread.start()

    def write(self, frame: U8, ts: float) -> None:
        if self._error is not None:
            raise SinkError(f"recording {self.path} failed: {self._error}") from self._error
        if self._closed:
            raise SinkError(f"recording {self.path} is closed")
        if self._ts0 is None:
            self._ts0 = ts
        pts = max(self._last_pts + 1, round((ts - self._ts0) * float(self.rate)))
        self._last_pts = pts
        w, h = self.size
        item = (np.array(frame[:h, :w], copy=True), pts)
        if self.block:
            self._q.put(item)
        else:
            try:
                self._q.put_nowait(item)
            except queue.Full:  # the encoder is behind: a gap in the file, not a late call
                self.dropped += 1
                return
        self.frames += 1

    def _encode(self) -> None:
        # not lowered by default: measured with a CPU hog, a nice encoder fell behind,
        # its queue filled and write() blocked the composite (docs/LIVE.md)
        lower_thread_priority(self._nice)
        try:
            while True:
                item = self._q.get()
                if item is _END:
                    break
                img, pts = item
                vf = bgr_to_video_frame(img)
                vf.pts = pts
                vf.time_base = self._tb  # the muxer may change the stream's own
                for packet in self._vs.encode(vf):
                    self._out.mux(packet)
            for packet in self._vs.encode(None):
                self._out.mux(packet)
        except BaseException as e:
            self._error = e
            # keep draining so that a blocked write() wakes up
            while self._q.get() is not _END:
                pass

    def _finish(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._q.put(_END)
        self._thread.join()

    def close(self) -> None:
        """Flush the encoder and move the finished file into place."""
        if self._atomic is None:
            return
        try:
            self._finish()
            self._out.close()
        except BaseException as e:
            self.abort()
            if isinstance(e, Exception) and not isinstance(e, SinkError):
                raise SinkError(f"cannot finish {self.path}: {e}") from e
            raise
        if self._error is not None or self.frames == 0:
            err = self._error
            self.abort()
            if err is not None:
                raise SinkError(f"recording {self.path} failed: {err}") from err
            log.warning("no frame was recorded; %s not written", self.path)
            return
        atomic, self._atomic = self._atomic, None
        atomic.__exit__(None, None, None)
        log.info("recorded %d frames to %s", self.frames, self.path)

    def abort(self) -> None:
        """Stop and remove the temporary file; nothing is left at ``path``."""
        if self._atomic is None:
            return
        with contextlib.suppress(BaseException):
            self._finish()
        with contextlib.suppress(BaseException):
            self._out.close()
        atomic, self._atomic = self._atomic, None
        err = SinkError("recording aborted")
        with contextlib.suppress(SinkError):
            atomic.__exit__(SinkError, err, None)


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
