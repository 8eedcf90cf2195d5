"""Split one long video by time across workers, then stitch the parts (PyAV only).

Cuts fall on keyframes of the *input*, so every worker starts decoding
exactly at its first frame and each frame belongs to one part: the frame
count of the stitched file equals a single-process run. Parts are video-only
H.264 files encoded without B-frames (decode order = presentation order), so
their packets can be concatenated without re-encoding; the audio is copied
once, from the input, while stitching. Mask history starts afresh at each cut,
the only visible difference from a single-process run (one frame of
smoothing, at a keyframe).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from ..errors import SinkError, SourceError
from ..io import atomic_output
from ..io.frames import bgr_to_video_frame
from ..io.video import QUALITY, open_input, put_until
from ..jobs import opencv_threads
from ..pipeline import Stream
from ..settings import Settings

__all__ = ["SPLIT_EXTS", "Segment", "blur_segment", "plan_segments", "stitch"]

log = logging.getLogger(__name__)

Decoded = tuple[Any, int, Any]  # (BGR uint8 frame, pts, time base)
U8 = NDArray[np.uint8]

# outputs whose codec (H.264) can be stitched by packet copy
SPLIT_EXTS = (".mp4", ".m4v", ".mov", ".mkv")


@dataclass(frozen=True, slots=True)
class Segment:
    """Frames with ``start <= pts < end`` (stream time base); None = from start / to end.

    A part is written with its timestamps moved back by ``offset`` seconds
    (``start`` in seconds), so that it starts at 0: an MP4 that starts later
    gets an edit list in milliseconds, which shifts its frames by a rounding
    error on reading. :func:`stitch` adds the offset back exactly.
    """

    index: int
    start: int | None
    end: int | None
    offset: Fraction = Fraction(0)


def _keyframe_at_or_before(container: Any, vs: Any, pts: int) -> int | None:
    """The pts of the keyframe at or before ``pts`` (by seeking, not by reading the file)."""
    try:
        container.seek(pts, stream=vs, backward=True, any_frame=False)
        for packet in container.demux(vs):
            if packet.pts is None:
                continue
            return int(packet.pts) if packet.is_keyframe else None
    except (av.error.FFmpegError, StopIteration):
        return None
    return None


def plan_segments(src: Path, parts: int) -> list[Segment]:
    """Cut ``src`` into at most ``parts`` keyframe-aligned time ranges of about equal length.

    Costs ``parts`` seeks, not a read of the file, so it is cheap for a
    2-hour recording. Fewer parts come back when keyframes are sparse.

    Raises:
        SourceError: the file cannot be read.
    """
    container = open_input(src)
    try:
        vs = container.streams.video[0]
        tb = vs.time_base
        if vs.duration is not None and tb:
            duration, start = int(vs.duration), int(vs.start_time or 0)
        elif container.duration is not None and tb:
            duration = int(Fraction(container.duration, 1_000_000) / tb)
            start = 0
        else:
            return [Segment(0, None, None)]
        cuts: set[int] = set()
        for k in range(1, max(1, parts)):
            kf = _keyframe_at_or_before(container, vs, start + duration * k // parts)
            if kf is not None and kf > start:
                cuts.add(kf)
    finally:
        container.close()
    bounds: list[int | None] = [None, *sorted(cuts), None]
    return [
        Segment(i, a, b, Fraction(a) * tb if a is not None else Fraction(0))
        for i, (a, b) in enumerate(itertools.pairwise(bounds))
    ]


def blur_segment(
    src: Path,
    dst: Path,
    settings: Settings,
    segment: Segment,
    *,
    quality: str = "fast",
    progress: Callable[[int], None] | None = None,
) -> int:
    """Blur the frames of one segment of ``src`` into a video-only H.264 part ``dst``.

    Returns frames written. ``dst`` appears only on success.

    Raises:
        SourceError: the input cannot be read or the segment holds no frame.
        SinkError: the part cannot be written.
    """
    preset, crf = QUALITY[quality]
    inp = open_input(src)
    stream = Stream(settings)
    n = 0
    try:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        if segment.start is not None:
            inp.seek(segment.start, stream=vin, backward=True, any_frame=False)
        with atomic_output(dst) as tmp:
            out = av.open(str(tmp), mode="w")
            try:
                rate = vin.average_rate or vin.guessed_rate or Fraction(30, 1)
                vout = out.add_stream("libx264", rate=rate)
                cc = vin.codec_context
                vout.width, vout.height = int(cc.width) & ~1, int(cc.height) & ~1
                vout.pix_fmt = "yuv420p"
                vout.time_base = vin.time_base
                vout.codec_context.time_base = vin.time_base
                # no B-frames: dts == pts, so parts concatenate with monotonic timestamps
                vout.options = {"preset": preset, "crf": str(crf), "bf": "0"}
                vout.thread_type = "AUTO"  # x264 frame threads overlap encoding with the model
                shift = int(segment.offset / vin.time_base)  # exact: offset = start * tb
                # closing() stops the decode thread before the input is closed
                stamps: deque[tuple[int, Any]] = deque()

                def images(dec: Iterator[Decoded]) -> Iterator[U8]:
                    for img, pts, time_base in dec:
                        stamps.append((pts, time_base))
                        yield img

                with (
                    opencv_threads(1),
                    contextlib.closing(_ahead(_segment_frames(inp, vin, segment, src))) as dec,
                    contextlib.closing(stream.process_iter(images(dec))) as results,
                ):
                    for full in results:  # the mask stage runs a frame ahead
                        pts, time_base = stamps.popleft()
                        res = full[: vout.height, : vout.width]
                        nf = bgr_to_video_frame(res)
                        nf.pts, nf.time_base = pts - shift, time_base
                        for packet in vout.encode(nf):
                            out.mux(packet)
                        n += 1
                        if progress is not None:
                            progress(n)
                for packet in vout.encode(None):
                    out.mux(packet)
            except av.error.FFmpegError as e:
                raise SinkError(f"encoding part {dst} failed: {e}") from e
            finally:
                out.close()
            if n == 0:
                raise SourceError(f"{src}: segment {segment.index} holds no decodable frame")
    finally:
        stream.close()
        inp.close()
    return n


def _segment_frames(inp: Any, vin: Any, seg: Segment, src: Path) -> Iterator[Decoded]:
    """(BGR frame, pts, time base) of the frames of ``seg``, in presentation order."""
    try:
        for frame in inp.decode(vin):
            if frame.pts is None:
                continue
            if seg.start is not None and frame.pts < seg.start:
                continue
            if seg.end is not None and frame.pts >= seg.end:
                return
            yield frame.to_ndarray(format="bgr24"), frame.pts, frame.time_base
    except av.error.FFmpegError as e:
        log.warning("%s: segment %d stopped at a decode error (%s)", src, seg.index, e)


_END = object()


def _ahead(items: Iterator[Decoded], size: int = 4) -> Generator[Decoded, None, None]:
    """Run ``items`` (the decoder) in a thread up to ``size`` frames ahead of the consumer.

    Decoding then overlaps the model, as in :func:`blurcam.io.video.transcode`;
    an error in the thread is raised here, and leaving early stops the thread.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=size)
    stop = threading.Event()
    errors: list[BaseException] = []

    def put(item: Any) -> bool:
        return put_until(q, item, stop)

    def run() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as e:
            errors.append(e)
        finally:
            put(_END)

    t = threading.Thread(target=run, name="blurcam-segment-decode", daemon=True)
    t.start()
    try:
        while (item := q.get()) is not _END:
            yield item
        if errors:
            raise errors[0]
    finally:
        stop.set()
        t.join(timeout=5)


def _packets(path: Path, kind: str) -> Iterator[Any]:
    """Packets (with timestamps) of the first ``kind`` stream of ``path``, in file order."""
    with av.open(str(path)) as c:
        streams = c.streams.video if kind == "video" else c.streams.audio
        if not streams:
            return
        for packet in c.demux(streams[0]):
            if packet.dts is None and packet.pts is None:
                continue  # flush packet
            yield packet


def _seconds(packet: Any) -> float:
    ts = packet.dts if packet.dts is not None else packet.pts
    return float(ts * packet.time_base)


def _shifted(path: Path, offset: Fraction) -> Iterator[Any]:
    """Video packets of a part with ``offset`` seconds added back to their timestamps."""
    for packet in _packets(path, "video"):
        if offset:
            ticks = round(offset / packet.time_base)
            if packet.pts is not None:
                packet.pts += ticks
            if packet.dts is not None:
                packet.dts += ticks
        yield packet


def stitch(parts: list[Path], src: Path, dst: Path, offsets: list[Fraction] | None = None) -> int:
    """Concatenate the video of ``parts`` (in order) and the audio of ``src`` into ``dst``.

    ``offsets`` are the parts' :attr:`Segment.offset` (seconds to add back).

    Packets are copied, not re-encoded, and interleaved by time so memory
    stays flat however long the file. Returns the number of video packets.

    Raises:
        SinkError: the parts do not fit together or ``dst`` cannot be written.
    """
    if not parts:
        raise SinkError(f"nothing to stitch for {dst}")
    n = 0
    with av.open(str(parts[0])) as first, av.open(str(src)) as orig:
        vtemplate = first.streams.video[0]
        atemplate = orig.streams.audio[0] if orig.streams.audio else None
        with atomic_output(dst) as tmp:
            out = av.open(str(tmp), mode="w")
            try:
                vout = out.add_stream_from_template(vtemplate)
                aout = out.add_stream_from_template(atemplate) if atemplate else None
                shifts = offsets or [Fraction(0)] * len(parts)
                video = (
                    ("v", p)
                    for part, off in zip(parts, shifts, strict=True)
                    for p in _shifted(part, off)
                )
                audio = (("a", p) for p in (_packets(src, "audio") if aout else iter(())))
                merged = heapq.merge(video, audio, key=lambda kp: _seconds(kp[1]))
                last = float("-inf")
                for kind, packet in merged:
                    if kind == "v":
                        t = _seconds(packet)
                        if t <= last:
                            raise SinkError(f"parts of {dst} overlap in time (at {t:.3f} s)")
                        last = t
                        packet.stream = vout
                        n += 1
                    else:
                        packet.stream = aout
                    out.mux(packet)
            except av.error.FFmpegError as e:
                raise SinkError(f"stitching {dst} failed: {e}") from e
            finally:
                out.close()
    return n
