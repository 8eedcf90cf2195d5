"""Reading video files with PyAV: one :class:`VideoReader` for every job that decodes.

A whole-file job, one part of a split job, the mask writer and the live file
source all read through it, so they agree on what a frame is:

- **Upright**: phone videos store pixels sideways plus a display matrix.
  Frames are turned upright (``VideoFrame.rotation``, multiples of 90
  degrees, read from the first frame) before anyone sees them; ``size`` is
  the upright size. Odd sizes are kept as they are.
- **Timestamps**: every frame carries its presentation time in the stream's
  time base (a missing one is guessed from the frame rate), so variable frame
  rate survives and a split part can be cut exactly.
- **Time ranges**: ``start``/``end`` select the frames with
  ``start <= pts < end``; consecutive ranges give disjoint, complete frame
  sets, which is what lets a split part read exactly its own frames.
- **Bad data**: a packet that does not decode is skipped, a read error ends
  the input; the frames decoded so far are kept and a warning says so, as
  does a stream that stops well before the length its header announces.
- **Decoding ahead**: with ``ahead`` the demuxer, the decoder and the
  conversion to BGR run in their own thread, a few frames ahead of the
  consumer, off the thread that runs the model.
- **Audio**: with ``audio`` the audio packets come along in file order, for
  a :class:`~blurcam.io.video_writer.VideoWriter` to copy or re-encode.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from ..errors import SourceError
from ..frame import U8
from .atomic import check_input_file
from .handoff import END, Worker
from .image import check_pixels, max_pixels

__all__ = [
    "BAD_DATA",
    "DecodedFrame",
    "VideoInfo",
    "VideoReader",
    "frame_rotation",
    "open_input",
    "probe_video",
    "upright",
]

log = logging.getLogger(__name__)


# Everything PyAV raises for bad data. UnicodeDecodeError: metadata in a broken
# charset; ValueError/IndexError/TypeError/AttributeError/ZeroDivisionError:
# PyAV reading nonsense header fields (zero rates, missing codec context).
BAD_DATA = (
    av.error.FFmpegError,
    UnicodeDecodeError,
    ValueError,
    IndexError,
    TypeError,
    AttributeError,
    ZeroDivisionError,
    OverflowError,
)
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


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """One decoded video frame, upright, with its presentation time."""

    image: U8  # uint8 HxWx3 BGR, upright, C-contiguous; owned (not reused by the reader)
    pts: int  # presentation time in ``time_base`` units (the input stream's)
    time_base: Fraction

    @property
    def time(self) -> float:
        """Presentation time in seconds."""
        return float(self.pts * self.time_base)


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
    """Open a media file for reading, turning every failure into :class:`SourceError`.

    A video stream whose declared frame size exceeds :func:`~.image.max_pixels`
    is refused here, before any frame is decoded, as an image's is before
    it is decoded (a small file declaring a huge size is a decompression
    bomb). FFmpeg gets the same limit (``max_pixels``) for the frames it
    may decode while probing the streams.

    Raises:
        SourceError: missing, empty, not a video, no decoder, or too many pixels.
    """
    check_input_file(path)
    limit = max_pixels()
    try:
        container = av.open(str(path), mode="r", timeout=30.0, options={"max_pixels": str(limit)})
    except BAD_DATA as e:
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
            # FFmpeg also blanks a declared size above max_pixels that no parser restores
            raise SourceError(
                f"{path}: the video stream has no usable frame size (a corrupt header, or "
                f"more than {limit / 1e6:g} megapixels: set BLURCAM_MAX_PIXELS to allow more)"
            )
        check_pixels(path, int(cc.width), int(cc.height), limit)
    except SourceError:
        container.close()
        raise
    except BAD_DATA as e:
        container.close()
        raise SourceError(f"cannot read {path} as a video: {e}") from e
    return container


def _rate(vs: Any) -> Fraction:
    rate = vs.average_rate or vs.guessed_rate or Fraction(30, 1)
    return Fraction(rate) if rate > 0 else Fraction(30, 1)


def _info(container: Any, rotation: int = 0) -> VideoInfo:
    vs = container.streams.video[0]
    cc = vs.codec_context
    rate = _rate(vs)
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
        except BAD_DATA:
            continue
        for frame in frames:
            return frame_rotation(frame)
    return 0


def probe_video(path: Path) -> VideoInfo:
    """Header facts of a video file (decodes at most the first frame, for rotation).

    Cheaper than opening a :class:`VideoReader`: a file whose first frames do
    not decode still gets its header facts (rotation 0) instead of an error.

    Raises:
        SourceError: missing, empty, not a media file, no video stream, or an
            unsupported codec.
    """
    container = open_input(path)
    try:
        try:
            rotation = _first_rotation(container, container.streams.video[0])
        except BAD_DATA as e:
            log.warning("%s: cannot read the first frame (%s)", path, e)
            rotation = 0
        try:
            return _info(container, rotation)
        except BAD_DATA as e:
            raise SourceError(f"cannot read {path} as a video: {e}") from e
    finally:
        container.close()


def _usable_audio(container: Any, path: Path) -> Any:
    """The first audio stream, or None (with a warning) when it cannot be carried over.

    An unknown codec, or a damaged header without a sample rate or channel
    count (the muxer would refuse the whole output for it), drops the audio:
    the video is still worth writing, and it is the input that is broken.
    """
    if not container.streams.audio:
        return None
    a = container.streams.audio[0]
    cc = a.codec_context
    if cc is None or not cc.name or cc.name == "none":
        log.warning("%s: the audio stream has an unknown codec; the output has no audio", path)
        return None
    if not cc.sample_rate or cc.sample_rate <= 0 or not cc.channels or cc.channels <= 0:
        log.warning(
            "%s: the audio stream has no valid sample rate or channel count; "
            "the output has no audio",
            path,
        )
        return None
    return a


# an av.Packet (its stub became generic over the stream type in later PyAV versions)
Packet = Any
# what the demuxer hands on: ("v", av.VideoFrame) or ("a", Packet)
_Raw = tuple[str, Any]


class VideoReader:
    """Decode one video file as upright BGR frames with timestamps (and its audio packets).

    Iterating gives :class:`DecodedFrame` objects in presentation order;
    :meth:`items` gives the audio packets too, in file order. A reader is
    read once. ``start``/``end`` (stream time base, ``end`` excluded) read
    one time range: the file is sought to the keyframe at or before
    ``start``, and frames outside the range are decoded but not returned.
    With ``ahead`` > 0 decoding runs in a thread that many frames ahead.

    The first frame is decoded when the reader is first asked for its size,
    rotation or frames: it fixes the rotation and size for the whole stream.

    A context manager; :meth:`close` stops the decode thread before the file
    is closed (closing under a running decode could crash inside FFmpeg).

    Raises:
        SourceError: the file cannot be read, holds no video stream, or no
            frame (in the range) decodes.
    """

    def __init__(
        self,
        path: Path,
        *,
        start: int | None = None,
        end: int | None = None,
        audio: bool = False,
        ahead: int = 0,
    ) -> None:
        self.path = path
        self.start, self.end = start, end
        self._ahead = ahead
        self._container = open_input(path)
        try:
            vs = self._container.streams.video[0]
            vs.thread_type = "AUTO"
            self.video_stream: Any = vs  # also a template for copying its packets
            self.time_base: Fraction = Fraction(vs.time_base or Fraction(1, 90000))
            self.rate: Fraction = _rate(vs)
            # the input stream whose packets items() hands on (None: no usable audio)
            self.audio_stream: Any = _usable_audio(self._container, path) if audio else None
            if start is not None:
                self._container.seek(start, stream=vs, backward=True, any_frame=False)
        except BAD_DATA as e:
            self._container.close()
            raise SourceError(f"cannot read {path} as a video: {e}") from e
        self._raw: Iterator[_Raw] | None = None
        self._head: list[_Raw] = []  # items read up to and including the first frame
        self._rotation: int | None = None
        self._size = (0, 0)
        self._read = False
        self._worker: Worker | None = None
        self._skipped = 0  # corrupt packets

    # ------------------------------------------------------------------ facts
    @property
    def rotation(self) -> int:
        """Counter-clockwise degrees applied to the stored pixels (0, 90, 180, 270)."""
        self._prime()
        assert self._rotation is not None
        return self._rotation

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the upright frames, odd sizes included."""
        self._prime()
        return self._size

    @property
    def info(self) -> VideoInfo:
        """Header facts, with the rotation and upright size of the first frame."""
        return _info(self._container, self.rotation)

    def extent(self) -> tuple[int, int] | None:
        """(first pts, duration) of the video stream in :attr:`time_base`, None when unknown."""
        vs, tb = self.video_stream, self.video_stream.time_base
        if vs.duration is not None and tb:
            return int(vs.start_time or 0), int(vs.duration)
        if self._container.duration is not None and tb:
            return 0, int(Fraction(self._container.duration, 1_000_000) / tb)
        return None

    def keyframe_at_or_before(self, pts: int) -> int | None:
        """The pts of the keyframe at or before ``pts``, by seeking, not by reading the file.

        Moves the read position: call it before reading, not during.
        """
        try:
            self._container.seek(pts, stream=self.video_stream, backward=True, any_frame=False)
            for packet in self._container.demux(self.video_stream):
                if packet.pts is None:
                    continue
                return int(packet.pts) if packet.is_keyframe else None
        except (av.error.FFmpegError, StopIteration):
            return None
        return None

    # ---------------------------------------------------------------- reading
    def _prime(self) -> None:
        """Decode up to the first frame in range: its rotation and size fix the stream's."""
        if self._rotation is not None:
            return
        self._raw = self._demux()
        for item in self._raw:
            self._head.append(item)
            if item[0] == "v":
                frame = item[1]
                self._rotation = frame_rotation(frame)
                w, h = int(frame.width), int(frame.height)
                self._size = (h, w) if self._rotation in (90, 270) else (w, h)
                return
        where = "" if self.start is None and self.end is None else " in the range read"
        raise SourceError(f"{self.path}: no video frame could be decoded{where}")

    def _demux(self) -> Iterator[_Raw]:
        """Video frames in range, timestamped, and (with audio) audio packets, in file order."""
        step = max(1, round(1 / (self.rate * self.time_base)))  # one frame, in ticks
        last: int | None = None
        for kind, obj in self._decode():
            if kind == "v":
                if obj.pts is None:  # guessed: its dts, else one frame after the last
                    guess = 0 if last is None else last + step
                    obj.pts = obj.dts if obj.dts is not None else guess
                last = int(obj.pts)
                if self.end is not None and last >= self.end:
                    return
                if self.start is not None and last < self.start:
                    continue
            yield kind, obj

    def _decode(self) -> Iterator[_Raw]:
        """Every decoded video frame and (with audio) audio packet, in file order.

        A packet that fails to decode is skipped; a read error ends the stream
        with a warning. Either way what decoded before is kept.
        """
        vs, ain = self.video_stream, self.audio_stream
        try:
            for packet in self._container.demux(*([vs] if ain is None else [vs, ain])):
                if packet.stream is ain:
                    if packet.dts is not None and packet.size:
                        yield ("a", packet)
                    continue
                try:
                    frames = packet.decode()
                except BAD_DATA as e:
                    self._skipped += 1
                    log.debug("%s: skipped a corrupt packet (%s)", self.path, e)
                    continue
                for frame in frames:
                    yield ("v", frame)
            # flush the decoder (frames held back for B-frame reordering)
            with contextlib.suppress(*BAD_DATA):
                for frame in vs.decode(None):
                    yield ("v", frame)
        except BAD_DATA as e:
            log.warning("%s: stopped at a read error (%s); kept the frames before it", self.path, e)

    def _decoded(self) -> Iterator[DecodedFrame | Packet]:
        """The primed stream, video converted to upright BGR; warns about what was lost."""
        assert self._raw is not None and self._rotation is not None
        rotation, tb = self._rotation, self.time_base
        n, last = 0, 0.0
        for kind, obj in itertools.chain(self._head, self._raw):
            if kind == "a":
                yield obj
                continue
            try:
                img = upright(obj.to_ndarray(format="bgr24"), rotation)
            except BAD_DATA as e:
                log.warning("%s: skipped an unconvertible frame (%s)", self.path, e)
                continue
            frame = DecodedFrame(img, int(obj.pts), tb)
            n, last = n + 1, frame.time
            yield frame
        self._head.clear()
        if self._skipped:
            log.warning("%s: skipped %d corrupt packet(s)", self.path, self._skipped)
        if self.end is None:
            with contextlib.suppress(*BAD_DATA):
                duration = _info(self._container).duration
                if duration > 0 and last < duration * 0.9 - 0.2:
                    log.warning(
                        "%s: frames stop at %.2f s of the %.2f s the header announces "
                        "(truncated or corrupt?); kept the %d that decoded",
                        self.path,
                        last,
                        duration,
                        n,
                    )

    def items(self) -> Iterator[DecodedFrame | Packet]:
        """Frames and (with ``audio``) audio packets in file order; read once.

        Audio packets are not cut to a time range: they come as demuxed.
        Leaving the loop early is fine; :meth:`close` stops the decoding.
        """
        if self._read:
            raise SourceError(f"{self.path}: a VideoReader is read once; open another")
        self._read = True
        self._prime()
        if self._ahead <= 0:
            yield from self._decoded()
            return
        source = self._decoded()

        def produce(worker: Worker) -> None:
            for item in source:
                if not worker.put(item):
                    return
            worker.put(END)

        worker = self._worker = Worker("blurcam-decode", produce, self._ahead)
        try:
            while (item := worker.get()) is not END:
                yield item
            if worker.error is not None:
                raise worker.error
        finally:
            worker.join()

    def __iter__(self) -> Iterator[DecodedFrame]:
        """Frames only, in presentation order (audio packets, if any, are left out)."""
        for item in self.items():
            if isinstance(item, DecodedFrame):
                yield item

    def packets(self, kind: str = "video") -> Iterator[Packet]:
        """Packets of the video (or with ``kind="audio"`` the usable audio) stream, undecoded.

        For copying without re-encoding: only packets with a timestamp come,
        in file order, from the start (or the keyframe before ``start``). A
        read error ends them with a warning. Not to be mixed with reading
        frames.
        """
        stream = self.video_stream if kind == "video" else self.audio_stream
        if stream is None:
            return
        try:
            for packet in self._container.demux(stream):
                if packet.dts is None and packet.pts is None:
                    continue  # the flush packet at the end
                if kind == "video" or packet.size:
                    yield packet
        except BAD_DATA as e:
            log.warning("%s: stopped at a read error (%s)", self.path, e)

    # -------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Stop the decode thread, then close the file (idempotent)."""
        if self._worker is not None:
            self._worker.join()
            self._worker = None
        self._raw = None
        self._head.clear()
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
