"""Video files with PyAV: probe, decode, and transcode with the audio copied unchanged.

Decoding, processing and encoding overlap in three threads connected by small
bounded queues, so a 2-core machine keeps both cores busy without buffering
the whole video in memory.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from ..errors import SinkError, SourceError
from .atomic import atomic_output

__all__ = ["QUALITY", "VideoInfo", "iter_frames", "open_input", "probe_video", "transcode"]

log = logging.getLogger(__name__)

U8 = NDArray[np.uint8]

# --quality -> (libx264 preset, crf)
QUALITY: dict[str, tuple[str, int]] = {
    "draft": ("ultrafast", 28),
    "fast": ("veryfast", 23),
    "good": ("medium", 20),
    "best": ("slow", 17),
}

_CODEC_BY_EXT = {
    ".mp4": "libx264",
    ".m4v": "libx264",
    ".mov": "libx264",
    ".mkv": "libx264",
    ".avi": "mpeg4",
    ".webm": "libvpx-vp9",
}


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What a video file holds, read from its header (no full decode)."""

    width: int
    height: int
    fps: float
    frames: int  # 0 when the container does not say
    duration: float  # seconds, 0 when unknown
    has_audio: bool
    codec: str


def open_input(path: Path) -> Any:
    """Open a media file for reading, turning every failure into :class:`SourceError`."""
    if not path.exists():
        raise SourceError(f"input not found: {path}")
    if not path.is_file():
        raise SourceError(f"input is not a file: {path}")
    if path.stat().st_size == 0:
        raise SourceError(f"input is empty (0 bytes): {path}")
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise SourceError(f"cannot read {path} as a video: {e}") from e
    if not container.streams.video:
        container.close()
        raise SourceError(f"{path} has no video stream")
    return container


def _info(container: Any) -> VideoInfo:
    vs = container.streams.video[0]
    cc = vs.codec_context
    rate = vs.average_rate or vs.guessed_rate or Fraction(30, 1)
    duration = 0.0
    if vs.duration is not None and vs.time_base is not None:
        duration = float(vs.duration * vs.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    frames = int(vs.frames or 0) or round(duration * float(rate))
    return VideoInfo(
        width=int(cc.width),
        height=int(cc.height),
        fps=float(rate),
        frames=frames,
        duration=duration,
        has_audio=bool(container.streams.audio),
        codec=str(cc.name),
    )


def probe_video(path: Path) -> VideoInfo:
    """Header facts of a video file.

    Raises:
        SourceError: missing, empty, not a media file, or no video stream.
    """
    container = open_input(path)
    try:
        return _info(container)
    finally:
        container.close()


def iter_frames(path: Path) -> Iterator[tuple[U8, float]]:
    """Decode a video as (BGR uint8 frame, timestamp in seconds).

    A corrupt tail ends the iteration with a warning instead of an error, so
    whatever decodes is kept.
    """
    container = open_input(path)
    try:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        tb = float(vs.time_base or 0)
        try:
            for i, frame in enumerate(container.decode(vs)):
                ts = float(frame.pts * tb) if frame.pts is not None else i / 30.0
                yield frame.to_ndarray(format="bgr24"), ts
        except av.error.FFmpegError as e:
            log.warning("%s: stopped at a decode error (%s); kept the frames before it", path, e)
    finally:
        container.close()


_END = object()


def _put(q: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def transcode(
    src: Path,
    dst: Path,
    process: Callable[[U8], U8],
    *,
    quality: str = "fast",
    progress: Callable[[int], None] | None = None,
) -> int:
    """Decode ``src``, run ``process`` on every frame, encode to ``dst``; copy audio as is.

    Frame rate, size and timestamps are kept; the codec follows ``dst``'s
    extension (mp4 -> H.264). ``dst`` appears only when everything succeeded.
    A corrupt tail is logged and the frames before it are kept. Returns the
    number of video frames written.

    Raises:
        SourceError: ``src`` cannot be read.
        SinkError: ``dst`` cannot be written.
    """
    if quality not in QUALITY:
        raise SinkError(f"quality must be one of {', '.join(QUALITY)}, got {quality!r}")
    ext = dst.suffix.lower()
    if ext not in _CODEC_BY_EXT:
        raise SinkError(f"unknown video extension {ext!r}: use {', '.join(_CODEC_BY_EXT)}")
    inp = open_input(src)
    try:
        with atomic_output(dst) as tmp:
            return _transcode(inp, src, tmp, process, ext, quality, progress)
    finally:
        inp.close()


def _transcode(
    inp: Any,
    src: Path,
    tmp: Path,
    process: Callable[[U8], U8],
    ext: str,
    quality: str,
    progress: Callable[[int], None] | None,
) -> int:
    vin = inp.streams.video[0]
    vin.thread_type = "AUTO"
    ain = inp.streams.audio[0] if inp.streams.audio else None
    info = _info(inp)
    try:
        out = av.open(str(tmp), mode="w")
    except av.error.FFmpegError as e:
        raise SinkError(f"cannot create {tmp}: {e}") from e
    try:
        codec = _CODEC_BY_EXT[ext]
        rate = vin.average_rate or vin.guessed_rate or Fraction(30, 1)
        vout = out.add_stream(codec, rate=rate)
        vout.width = info.width - info.width % 2
        vout.height = info.height - info.height % 2
        vout.pix_fmt = "yuv420p"
        vout.time_base = vin.time_base
        vout.codec_context.time_base = vin.time_base
        vout.thread_type = "AUTO"
        if codec == "libx264":
            preset, crf = QUALITY[quality]
            vout.options = {"preset": preset, "crf": str(crf)}
        aout = out.add_stream_from_template(ain) if ain is not None else None
        n = _run_threads(inp, vin, ain, vout, aout, out, process, src, progress)
        for packet in vout.encode(None):
            out.mux(packet)
    except av.error.FFmpegError as e:
        raise SinkError(f"encoding failed: {e}") from e
    finally:
        out.close()
    if n == 0:
        raise SourceError(f"{src}: no video frame could be decoded")
    return n


def _run_threads(
    inp: Any,
    vin: Any,
    ain: Any,
    vout: Any,
    aout: Any,
    out: Any,
    process: Callable[[U8], U8],
    src: Path,
    progress: Callable[[int], None] | None,
) -> int:
    """Decode (thread) -> process (this thread) -> encode+mux (thread)."""
    decoded: queue.Queue[Any] = queue.Queue(maxsize=4)
    encoded: queue.Queue[Any] = queue.Queue(maxsize=4)
    stop = threading.Event()
    errors: list[BaseException] = []
    streams = [vin] if ain is None else [vin, ain]
    w, h = vout.width, vout.height

    def decode() -> None:
        try:
            for packet in inp.demux(*streams):
                if packet.stream is ain:
                    if packet.dts is None:
                        continue
                    if not _put(decoded, ("audio", packet), stop):
                        return
                    continue
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as e:
                    log.warning("%s: skipped a corrupt packet (%s)", src, e)
                    continue
                for frame in frames:
                    if not _put(decoded, ("video", frame), stop):
                        return
        except av.error.FFmpegError as e:
            log.warning("%s: stopped at a read error (%s); kept the frames before it", src, e)
        except BaseException as e:
            errors.append(e)
        finally:
            _put(decoded, _END, stop)

    def encode() -> None:
        try:
            while True:
                item = encoded.get()
                if item is _END:
                    return
                kind, obj = item
                if kind == "audio":
                    obj.stream = aout
                    out.mux(obj)
                else:
                    for packet in vout.encode(obj):
                        out.mux(packet)
        except BaseException as e:
            errors.append(e)
            stop.set()

    td = threading.Thread(target=decode, name="blurcam-decode", daemon=True)
    te = threading.Thread(target=encode, name="blurcam-encode", daemon=True)
    td.start()
    te.start()
    n = 0
    try:
        while not stop.is_set():
            item = decoded.get()
            if item is _END:
                break
            kind, obj = item
            if kind == "video":
                img = obj.to_ndarray(format="bgr24")
                res = process(img)
                if res.shape[1] != w or res.shape[0] != h:
                    res = res[:h, :w]
                nf = av.VideoFrame.from_ndarray(np.ascontiguousarray(res), format="bgr24")
                nf.pts = obj.pts
                nf.time_base = obj.time_base
                item = ("video", nf)
                n += 1
                if progress is not None:
                    progress(n)
            if not _put(encoded, item, stop):
                break
    finally:
        stop_decoder = stop
        _put(encoded, _END, threading.Event()) if te.is_alive() else None
        te.join()
        stop_decoder.set()
        td.join(timeout=5)
    if errors:
        e = errors[0]
        if isinstance(e, av.error.FFmpegError):
            raise SinkError(f"writing failed: {e}") from e
        raise e
    return n
