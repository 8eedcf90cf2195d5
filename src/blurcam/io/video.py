"""Video files with PyAV: probe, decode, and transcode with the audio kept.

Decoding, processing and encoding overlap in three threads connected by small
bounded queues, so a 2-core machine keeps both cores busy without buffering
the whole video in memory.

What a bad or unusual file gets (docs/RELIABILITY.md has the full table):

- **Rotation**: phone videos store pixels sideways plus a display matrix.
  Frames are turned upright (``VideoFrame.rotation``, multiples of 90 degrees)
  before the model sees them, and the output holds upright pixels with no
  matrix, so it plays the same everywhere.
- **Odd sizes**: H.264 in yuv420p needs even width and height, so odd-sized
  H.264 outputs are encoded as yuv444p (High 4:4:4): the size is kept exactly
  and no pixel is dropped or invented. VP9 (.webm) and MPEG-4 (.avi) take odd
  sizes in yuv420p.
- **Timestamps**: every output frame carries its input frame's timestamp, so
  variable frame rate survives.
- **Corrupt or truncated data**: a bad packet is skipped, a read error ends
  the input; the frames decoded so far are encoded, the file is finished
  cleanly and a warning says how many frames were kept.
- **Audio** is copied packet for packet when the output container takes its
  codec, and re-encoded (e.g. AAC -> Opus for .webm) when it does not.
- **Output**: written to a temporary file beside ``dst`` and renamed over it
  only on success; any failure (disk full, Ctrl-C) removes the temporary.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from ..errors import SinkError, SourceError
from .atomic import atomic_output, check_input_file
from .frames import bgr_to_video_frame

__all__ = [
    "QUALITY",
    "VideoInfo",
    "frame_rotation",
    "iter_frames",
    "open_input",
    "probe_video",
    "transcode",
    "upright",
]

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

# Everything PyAV raises for bad data. UnicodeDecodeError: metadata in a broken
# charset; ValueError/IndexError/TypeError/AttributeError/ZeroDivisionError:
# PyAV reading nonsense header fields (zero rates, missing codec context).
_BAD_DATA = (
    av.error.FFmpegError,
    UnicodeDecodeError,
    ValueError,
    IndexError,
    TypeError,
    AttributeError,
    ZeroDivisionError,
    OverflowError,
)
# What the encoder and muxer raise for a failed write; anything else is a bug.
_WRITE_ERRORS = (av.error.FFmpegError, OSError)
_PROBE_PACKETS = 256  # packets read at most to find the first frame's rotation


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What a video file holds, read from its header and first frame.

    ``width``/``height`` are the displayed (upright) size, after ``rotation``.
    """

    width: int
    height: int
    fps: float
    frames: int  # 0 when the container does not say
    duration: float  # seconds, 0 when unknown
    has_audio: bool
    codec: str
    rotation: int = 0  # degrees counter-clockwise applied to decoded pixels


def frame_rotation(frame: Any) -> int:
    """Counter-clockwise degrees (0, 90, 180, 270) that make ``frame`` upright.

    Reads the display matrix side data through ``VideoFrame.rotation``; angles
    that are not a multiple of 90 are logged and ignored.
    """
    try:
        deg = round(float(frame.rotation))
    except (AttributeError, TypeError, ValueError, OverflowError):
        return 0
    deg %= 360
    if deg % 90:
        log.warning("ignoring a display rotation of %d degrees (not a multiple of 90)", deg)
        return 0
    return deg


_ROTATE = {
    90: cv2.ROTATE_90_COUNTERCLOCKWISE,
    180: cv2.ROTATE_180,
    270: cv2.ROTATE_90_CLOCKWISE,
}


def upright(image: U8, rotation: int) -> U8:
    """Turn decoded pixels by ``rotation`` degrees counter-clockwise (0 = as is)."""
    if rotation == 0:
        return image
    return np.asarray(cv2.rotate(image, _ROTATE[rotation]), dtype=np.uint8)


def open_input(path: Path) -> Any:
    """Open a media file for reading, turning every failure into :class:`SourceError`."""
    check_input_file(path)
    try:
        container = av.open(str(path), mode="r", timeout=30.0)
    except _BAD_DATA as e:
        raise SourceError(f"cannot read {path} as a video (truncated or not a video?): {e}") from e
    try:
        streams = container.streams.video
        if not streams:
            kinds: list[str] = sorted({str(s.type) for s in container.streams}) or ["nothing"]
            raise SourceError(f"{path} has no video stream (it holds: {', '.join(kinds)})")
        vs = streams[0]
        cc = vs.codec_context
        if cc is None or not cc.name or cc.name == "none":
            raise SourceError(f"{path}: unsupported video codec (no decoder for it)")
        if int(cc.width or 0) <= 0 or int(cc.height or 0) <= 0:
            raise SourceError(f"{path}: the video stream has no frame size (corrupt header?)")
    except SourceError:
        container.close()
        raise
    except _BAD_DATA as e:
        container.close()
        raise SourceError(f"cannot read {path} as a video: {e}") from e
    return container


def _info(container: Any, rotation: int = 0) -> VideoInfo:
    vs = container.streams.video[0]
    cc = vs.codec_context
    rate = vs.average_rate or vs.guessed_rate or Fraction(30, 1)
    if rate <= 0:
        rate = Fraction(30, 1)
    duration = 0.0
    if vs.duration is not None and vs.time_base is not None:
        duration = float(vs.duration * vs.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    duration = max(0.0, duration)
    frames = int(vs.frames or 0) or round(duration * float(rate))
    w, h = int(cc.width), int(cc.height)
    if rotation in (90, 270):
        w, h = h, w
    return VideoInfo(
        width=w,
        height=h,
        fps=float(rate),
        frames=max(0, frames),
        duration=duration,
        has_audio=bool(container.streams.audio),
        codec=str(cc.name),
        rotation=rotation,
    )


def _first_rotation(container: Any, vs: Any) -> int:
    """Rotation of the first decodable frame (0 when none decodes within a few packets)."""
    for k, packet in enumerate(container.demux(vs)):
        if k >= _PROBE_PACKETS:
            break
        try:
            frames = packet.decode()
        except _BAD_DATA:
            continue
        for frame in frames:
            return frame_rotation(frame)
    return 0


def probe_video(path: Path) -> VideoInfo:
    """Header facts of a video file (decodes at most the first frame, for rotation).

    Raises:
        SourceError: missing, empty, not a media file, no video stream, or an
            unsupported codec.
    """
    container = open_input(path)
    try:
        try:
            rotation = _first_rotation(container, container.streams.video[0])
        except _BAD_DATA as e:
            log.warning("%s: cannot read the first frame (%s)", path, e)
            rotation = 0
        try:
            return _info(container, rotation)
        except _BAD_DATA as e:
            raise SourceError(f"cannot read {path} as a video: {e}") from e
    finally:
        container.close()


def _demux(inp: Any, vin: Any, ain: Any, src: Path, decode_audio: bool) -> Iterator[Any]:
    """("video", VideoFrame), ("audio", Packet) or ("audio_frame", AudioFrame) in file order.

    A packet that fails to decode is skipped with a warning; a read error ends
    the stream with a warning. Either way what decoded before is kept.
    """
    streams = [vin] if ain is None else [vin, ain]
    skipped = 0
    try:
        for packet in inp.demux(*streams):
            if packet.stream is ain:
                if decode_audio:
                    try:
                        for af in packet.decode():
                            yield ("audio_frame", af)
                    except _BAD_DATA:
                        skipped += 1
                elif packet.dts is not None and packet.size:
                    yield ("audio", packet)
                continue
            try:
                frames = packet.decode()
            except _BAD_DATA as e:
                skipped += 1
                log.debug("%s: skipped a corrupt packet (%s)", src, e)
                continue
            for frame in frames:
                yield ("video", frame)
        # flush the decoder (frames held back for B-frame reordering)
        with contextlib.suppress(*_BAD_DATA):
            for frame in vin.decode(None):
                yield ("video", frame)
    except _BAD_DATA as e:
        log.warning("%s: stopped at a read error (%s); kept the frames before it", src, e)
    if skipped:
        log.warning("%s: skipped %d corrupt packet(s)", src, skipped)


def iter_frames(path: Path) -> Iterator[tuple[U8, float]]:
    """Decode a video as (upright BGR uint8 frame, timestamp in seconds).

    A corrupt tail ends the iteration with a warning instead of an error, so
    whatever decodes is kept.
    """
    container = open_input(path)
    try:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        tb = float(vs.time_base or 0)
        i = 0
        for _kind, frame in _demux(container, vs, None, path, False):
            ts = float(frame.pts * tb) if frame.pts is not None else i / 30.0
            try:
                img = frame.to_ndarray(format="bgr24")
            except _BAD_DATA as e:
                log.warning("%s: skipped an unconvertible frame (%s)", path, e)
                continue
            yield upright(img, frame_rotation(frame)), ts
            i += 1
    finally:
        container.close()


_END = object()

# frames in, results out in the same order (may keep a few frames in flight)
FramesProcessor = Callable[[Iterable[U8]], Iterable[U8]]


def put_until(q: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Put ``item`` on a bounded queue, giving up (False) once ``stop`` is set."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue[Any], stop: threading.Event) -> Any:
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return _END


def transcode(
    src: Path,
    dst: Path,
    process: Callable[[U8], U8] | FramesProcessor,
    *,
    many: bool = False,
    quality: str = "fast",
    progress: Callable[[int], None] | None = None,
) -> int:
    """Decode ``src``, run ``process`` on every upright frame, encode to ``dst``; keep audio.

    With ``many`` ``process`` takes the iterator of frames and yields their
    results in order (e.g. :meth:`blurcam.pipeline.Stream.process_iter`, which
    keeps two frames in flight); otherwise it is called once per frame.

    Frame rate, displayed size and timestamps are kept; the codec follows
    ``dst``'s extension (mp4 -> H.264). ``dst`` appears only when everything
    succeeded; on any failure, Ctrl-C included, nothing is left behind and an
    existing ``dst`` is untouched. A corrupt or truncated tail is logged and
    the frames before it are kept. Returns the number of video frames written.

    Raises:
        SourceError: ``src`` cannot be read or holds no decodable frame.
        SinkError: ``dst`` cannot be written (folder, disk full, encoder).
    """
    if quality not in QUALITY:
        raise SinkError(f"quality must be one of {', '.join(QUALITY)}, got {quality!r}")
    ext = dst.suffix.lower()
    if ext not in _CODEC_BY_EXT:
        raise SinkError(f"unknown video extension {ext!r}: use {', '.join(_CODEC_BY_EXT)}")
    inp = open_input(src)
    try:
        with atomic_output(dst) as tmp:
            run = cast(FramesProcessor, process) if many else _per_frame(process)
            return _transcode(inp, src, tmp, run, ext, quality, progress)
    finally:
        inp.close()


def _per_frame(process: Callable[[U8], U8] | FramesProcessor) -> FramesProcessor:
    f = cast(Callable[[U8], U8], process)
    return lambda frames: map(f, frames)


def _sink_error(e: BaseException, what: str) -> SinkError:
    if isinstance(e, OSError) and e.errno is not None:
        return SinkError(f"{what}: {os.strerror(e.errno)}")
    return SinkError(f"{what}: {e}")


def _transcode(
    inp: Any,
    src: Path,
    tmp: Path,
    process: FramesProcessor,
    ext: str,
    quality: str,
    progress: Callable[[int], None] | None,
) -> int:
    vin = inp.streams.video[0]
    vin.thread_type = "AUTO"
    ain = _usable_audio(inp, src)
    try:
        out = av.open(str(tmp), mode="w")
    except _WRITE_ERRORS as e:
        raise _sink_error(e, f"cannot create {tmp}") from e
    try:
        duration = _info(inp).duration
    except _BAD_DATA:
        duration = 0.0
    copy_audio = ain is not None and ain.codec_context.name in out.supported_codecs
    items = _demux(inp, vin, ain, src, decode_audio=ain is not None and not copy_audio)
    # Read up to the first video frame now: its rotation and size set the encoder.
    head: list[Any] = []
    for item in items:
        head.append(item)
        if item[0] == "video":
            break
    if not head or head[-1][0] != "video":
        out.close()
        raise SourceError(f"{src}: no video frame could be decoded")
    first = head[-1][1]
    rotation = frame_rotation(first)
    w, h = int(first.width), int(first.height)
    if rotation in (90, 270):
        w, h = h, w
    failed = True
    try:
        codec = _CODEC_BY_EXT[ext]
        rate = vin.average_rate or vin.guessed_rate or Fraction(30, 1)
        vout: Any = out.add_stream(codec, rate=rate)
        vout.width, vout.height = w, h
        vout.pix_fmt = "yuv444p" if codec == "libx264" and (w % 2 or h % 2) else "yuv420p"
        tb_in = vin.time_base or Fraction(1, 90000)
        # AVI has no per-frame timestamps: its time base is the frame rate.
        tb = 1 / Fraction(rate) if ext == ".avi" else tb_in
        vout.time_base = tb
        vout.codec_context.time_base = tb
        vout.thread_type = "AUTO"
        if codec == "libx264":
            preset, crf = QUALITY[quality]
            vout.options = {"preset": preset, "crf": str(crf)}
        aout, resampler = _audio_out(out, ain, copy_audio, src)
        last_time = [0.0]
        n = _run_threads(
            head, items, vout, aout, resampler, out, process, rotation, tb, src, progress, last_time
        )
        for packet in vout.encode(None):
            out.mux(packet)
        if aout is not None and resampler is not None:
            for packet in aout.encode(None):
                out.mux(packet)
        failed = False
    except _WRITE_ERRORS as e:
        raise _sink_error(e, "encoding failed") from e
    finally:
        try:
            out.close()
        except _WRITE_ERRORS as e:
            if not failed:  # a failure while finishing the file (trailer on a full disk)
                raise _sink_error(e, "cannot finish the output") from e
    if duration > 0 and last_time[0] < duration * 0.9 - 0.2:
        log.warning(
            "%s: frames stop at %.2f s of the %.2f s the header announces "
            "(truncated or corrupt?); wrote the %d that decoded",
            src,
            last_time[0],
            duration,
            n,
        )
    return n


def _usable_audio(inp: Any, src: Path) -> Any:
    """The first audio stream, or None (with a warning) when it cannot be carried over.

    An unknown codec, or a damaged header without a sample rate or channel
    count (the muxer would refuse the whole output for it), drops the audio:
    the video is still worth writing, and it is the input that is broken.
    """
    if not inp.streams.audio:
        return None
    a = inp.streams.audio[0]
    cc = a.codec_context
    if cc is None or not cc.name or cc.name == "none":
        log.warning("%s: the audio stream has an unknown codec; the output has no audio", src)
        return None
    if not cc.sample_rate or cc.sample_rate <= 0 or not cc.channels or cc.channels <= 0:
        log.warning(
            "%s: the audio stream has no valid sample rate or channel count; "
            "the output has no audio",
            src,
        )
        return None
    return a


def _audio_out(out: Any, ain: Any, copy_audio: bool, src: Path) -> tuple[Any, Any]:
    """The output audio stream, and a resampler when the audio must be re-encoded."""
    if ain is None:
        return None, None
    if copy_audio:
        return out.add_stream_from_template(ain), None
    codec = "libopus" if out.default_audio_codec == "opus" else out.default_audio_codec
    try:
        rate = int(ain.codec_context.sample_rate or 48000)
        c = av.codec.Codec(codec, "w")
        rates = list(c.audio_rates or [])
        if rates and rate not in rates:
            rate = 48000 if 48000 in rates else int(rates[0])
        aout = out.add_stream(codec, rate=rate)
        lay = ain.codec_context.layout
        aout.layout = lay.name if lay is not None and lay.nb_channels <= 2 else "stereo"
        fmt = c.audio_formats[0].name if c.audio_formats else "fltp"
        aout.format = fmt
        log.info(
            "%s: audio %s cannot go into this container as is; re-encoding it as %s",
            src,
            ain.codec_context.name,
            codec,
        )
        return aout, av.AudioResampler(format=fmt, layout=aout.layout.name, rate=rate)
    except _BAD_DATA as e:
        log.warning("%s: the audio cannot be written to this container (%s); dropped it", src, e)
        return None, None


def _run_threads(
    head: list[Any],
    items: Iterator[Any],
    vout: Any,
    aout: Any,
    resampler: Any,
    out: Any,
    process: FramesProcessor,
    rotation: int,
    time_base: Fraction,
    src: Path,
    progress: Callable[[int], None] | None,
    last_time: list[float],
) -> int:
    """Decode (thread) -> process (this thread, maybe its own helpers) -> encode+mux (thread).

    ``last_time[0]`` is set to the timestamp (seconds) of the last frame decoded.

    Every thread stops when ``stop`` is set; errors of the helper threads are
    re-raised here, so the caller's cleanup (temporary file removal) runs.
    """
    decoded: queue.Queue[Any] = queue.Queue(maxsize=4)
    encoded: queue.Queue[Any] = queue.Queue(maxsize=4)
    stop = threading.Event()
    errors: list[BaseException] = []
    w, h = vout.width, vout.height
    last_pts: list[int] = [-(2**62)]  # last video pts sent, in ``time_base``
    last_adts, bad_audio = [-(2**62)], [0]  # last copied audio dts; packets dropped

    def decode() -> None:
        try:
            for item in itertools.chain(head, items):
                if item[0] == "video":
                    # converted here, beside the decoder, not in the busier process thread
                    try:
                        img = upright(item[1].to_ndarray(format="bgr24"), rotation)
                    except _BAD_DATA as e:
                        log.warning("%s: skipped an unconvertible frame (%s)", src, e)
                        continue
                    item = ("video", (item[1], img))
                if not put_until(decoded, item, stop):
                    return
        except BaseException as e:
            errors.append(e)
            stop.set()
        finally:
            put_until(decoded, _END, stop)

    def encode() -> None:
        try:
            while True:
                item = _get(encoded, stop)
                if item is _END:
                    return
                kind, obj = item
                if kind == "audio":
                    if aout is None:
                        continue
                    if obj.dts <= last_adts[0]:
                        # a damaged input's audio going back in time: the muxer
                        # would refuse the whole file for it
                        bad_audio[0] += 1
                        continue
                    if obj.pts is not None and obj.pts < obj.dts:
                        bad_audio[0] += 1  # pts before dts: invalid, muxers refuse it
                        continue
                    last_adts[0] = obj.dts
                    obj.stream = aout
                    try:
                        out.mux(obj)
                    except av.error.FFmpegError as e:
                        if e.errno != errno.EINVAL:
                            raise
                        # the muxer refused this copied packet's timestamps; the
                        # check runs before anything is written, so go on without it
                        bad_audio[0] += 1
                elif kind == "audio_frame":
                    if aout is not None:
                        obj.pts = None
                        for rf in resampler.resample(obj):
                            for packet in aout.encode(rf):
                                out.mux(packet)
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
    resized = False
    sources: deque[Any] = deque()  # decoded frames whose result has not come back yet

    def frames() -> Iterator[U8]:
        """Upright video frames for ``process``; audio goes straight to the encoder.

        Audio may thus reach the muxer a frame or two ahead of the video
        beside it, which its interleaving absorbs.
        """
        while not stop.is_set():
            item = _get(decoded, stop)
            if item is _END:
                return
            kind, obj = item
            if kind != "video":
                if not put_until(encoded, item, stop):
                    return
                continue
            sources.append(obj[0])
            yield obj[1]

    results = process(frames())
    try:
        for res in results:
            obj = sources.popleft()
            if res.shape[1] != w or res.shape[0] != h:
                if not resized:
                    log.warning(
                        "%s: frame size changed mid-stream to %dx%d; scaling to %dx%d",
                        src,
                        res.shape[1],
                        res.shape[0],
                        w,
                        h,
                    )
                    resized = True
                res = np.asarray(cv2.resize(res, (w, h), interpolation=cv2.INTER_AREA))
            nf = bgr_to_video_frame(res)
            pts = obj.pts if obj.pts is not None else obj.dts
            if pts is not None and obj.time_base is not None and obj.time_base != time_base:
                pts = round(pts * obj.time_base / time_base)
            if pts is None or pts <= last_pts[0]:
                # missing or repeated timestamp: the muxer needs them increasing
                pts = last_pts[0] + 1 if last_pts[0] > -(2**62) else 0
            last_pts[0] = pts
            last_time[0] = float(pts * time_base)
            nf.pts = pts
            nf.time_base = time_base
            n += 1
            if progress is not None:
                progress(n)
            if not put_until(encoded, ("video", nf), stop):
                break
    except BaseException:
        stop.set()
        raise
    finally:
        close = getattr(results, "close", None)
        if close is not None:  # a generator stopped early: let it release its helpers
            close()
        if not stop.is_set():
            put_until(encoded, _END, stop)
        te.join()
        stop.set()
        # The decoder exits at its next queue put; wait for it, because closing
        # the input under a running decode could crash inside FFmpeg.
        while td.is_alive():
            td.join(0.5)
    if bad_audio[0]:
        log.warning("%s: dropped %d audio packet(s) with broken timestamps", src, bad_audio[0])
    if errors:
        err = errors[0]
        if isinstance(err, _WRITE_ERRORS):
            raise _sink_error(err, "writing failed") from err
        raise err
    return n
