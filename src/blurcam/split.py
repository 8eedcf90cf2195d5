"""One long video, several processes: split by time at keyframes, blur the parts, stitch.

Cuts fall on keyframes of the *input*, so every worker starts decoding
exactly at its first frame and each frame belongs to one part: the frame
count of the stitched file equals a single-process run. A part is read and
written by the same :class:`~blurcam.io.VideoReader` and
:class:`~blurcam.io.VideoWriter` as a whole file, so it is upright and keeps
odd sizes exactly as a single-process run does. Parts are video-only H.264
files encoded without B-frames (decode order = presentation order), so their
packets can be concatenated without re-encoding; the audio is copied once,
from the input, while stitching. Mask history starts afresh at each cut,
the only visible difference from a single-process run (one frame of
smoothing, at a keyframe).

Why: a single process keeps a 2-core machine only ~80% busy on a 1080p file:
the decoder, the two pipeline stages and the encoder hand every frame through
one interpreter, and those hand-offs serialise. Two processes, each blurring
its own half of the file, keep both cores busy (:func:`blur_parallel`, which
``blurcam blur`` uses for a video of a minute or more; ``blurcam batch`` runs
the parts through its own pool). The parts are encoded without B-frames, a
few percent larger at the same quality.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import SinkError
from .io import VideoReader, VideoWriter
from .io.atomic import PARTS_PREFIX, owner_tag
from .io.video import process_video
from .pipeline import Stream
from .pool import ProcessPool, opencv_threads, reporter, worker_progress
from .settings import Settings

__all__ = [
    "PART_MIN_SECONDS",
    "SPLIT_EXTS",
    "Segment",
    "blur_parallel",
    "blur_segment",
    "parallel_parts",
    "plan_segments",
    "stitch",
]

log = logging.getLogger(__name__)

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


def plan_segments(src: Path, parts: int) -> list[Segment]:
    """Cut ``src`` into at most ``parts`` keyframe-aligned time ranges of about equal length.

    Costs ``parts`` seeks, not a read of the file, so it is cheap for a
    2-hour recording. Fewer parts come back when keyframes are sparse.

    Raises:
        SourceError: the file cannot be read.
    """
    with VideoReader(src) as reader:
        tb = reader.time_base
        extent = reader.extent()
        if extent is None:
            return [Segment(0, None, None)]
        start, duration = extent
        cuts: set[int] = set()
        for k in range(1, max(1, parts)):
            kf = reader.keyframe_at_or_before(start + duration * k // parts)
            if kf is not None and kf > start:
                cuts.add(kf)
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

    The same reader, writer and threads as a whole-file job (upright frames,
    odd sizes kept), with B-frames off so that the parts concatenate; the
    part starts at time 0 (:attr:`Segment.offset` is what :func:`stitch`
    adds back). Returns frames written. ``dst`` appears only on success.

    Raises:
        SourceError: the input cannot be read or the segment holds no frame.
        SinkError: the part cannot be written.
    """
    with contextlib.closing(Stream(settings)) as stream, opencv_threads(1):
        return process_video(
            src,
            dst,
            stream.process_iter,
            quality=quality,
            start=segment.start,
            end=segment.end,
            bframes=False,
            audio=False,
            # one process per core: an encode thread would only add hand-offs
            # (64 s 1080p on 2 cores: 13% slower with it, 3 paired runs)
            encode_queue=0,
            progress=progress,
        )


def _seconds(packet: Any) -> float:
    ts = packet.dts if packet.dts is not None else packet.pts
    return float(ts * packet.time_base)


def _shifted(packets: Iterator[Any], offset: Fraction) -> Iterator[Any]:
    """Packets of a part with ``offset`` seconds added back to their timestamps."""
    for packet in packets:
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
    shifts = offsets or [Fraction(0)] * len(parts)
    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(VideoReader(p)) for p in parts]
        orig = stack.enter_context(VideoReader(src, audio=True))
        writer = stack.enter_context(
            VideoWriter(dst, template=readers[0].video_stream, audio=orig.audio_stream)
        )
        video = (
            ("v", p)
            for r, off in zip(readers, shifts, strict=True)
            for p in _shifted(r.packets(), off)
        )
        audio = (("a", p) for p in orig.packets("audio"))
        for kind, packet in heapq.merge(video, audio, key=lambda kp: _seconds(kp[1])):
            if kind == "v":
                writer.write_packet(packet)
            else:
                writer.write_audio(packet)
        return writer.frames


# Shorter parts would spend more of their time starting a process (imports,
# model load, ~1-2 s) than they save.
PART_MIN_SECONDS = 30.0


def parallel_parts(
    duration: float, workers: int, dst: Path, part_min: float = PART_MIN_SECONDS
) -> int:
    """How many processes to give a ``duration``-second video (1 = do not split).

    One per worker, each part at least ``part_min`` seconds long, and only
    for outputs whose container can be stitched.
    """
    if workers < 2 or part_min <= 0 or dst.suffix.lower() not in SPLIT_EXTS:
        return 1
    return max(1, min(workers, int(duration // part_min)))


def _blur_part(src: Path, part: Path, settings: Settings, segment: Segment, quality: str) -> int:
    """Worker side: one part, reporting progress through the pool's queue."""
    progress = reporter((0, segment.index), worker_progress())
    return blur_segment(src, part, settings, segment, quality=quality, progress=progress)


def blur_parallel(
    src: Path,
    dst: Path,
    settings: Settings,
    *,
    parts: int,
    quality: str = "fast",
    progress: Callable[[int], None] | None = None,
) -> int | None:
    """Blur ``src`` into ``dst`` with one process per part; returns frames written.

    Returns None, having written nothing, when the file does not cut into at
    least two parts (too few keyframes): the caller then runs it whole. The
    parts live in a hidden temporary folder beside ``dst`` and are removed;
    ``dst`` appears only when everything succeeded.

    Raises:
        SourceError: the input cannot be read.
        SinkError: a part or the stitched output cannot be written.
    """
    segments = plan_segments(src, parts)
    if len(segments) < 2:
        log.info("%s: keyframes too sparse to split; one process", src)
        return None
    # each process is one of N on N cores: one model thread, OpenCV single-threaded
    one = replace(settings, segment=replace(settings.segment, threads=1))
    seen: dict[int, int] = {}
    # named by its owner, for the next run to remove if this one is killed outright
    prefix = f"{PARTS_PREFIX}{owner_tag()}."
    with tempfile.TemporaryDirectory(prefix=prefix, dir=dst.parent) as wd:
        pool = ProcessPool(len(segments), threads=1)
        try:
            paths = [Path(wd) / f"part-{s.index:03d}.mp4" for s in segments]
            futures = [
                pool.call(_blur_part, src, p, one, s, quality)
                for s, p in zip(segments, paths, strict=True)
            ]
            pending = set(futures)
            while pending:
                done, pending = futures_wait(pending, timeout=0.25, return_when=FIRST_EXCEPTION)
                for f in done:
                    f.result()  # the first failure is raised here
                for (_, index), n in pool.drain():
                    seen[index] = n
                if progress is not None:
                    progress(sum(seen.values()))
            frames = sum(f.result() for f in futures)
            written = stitch(paths, src, dst, [s.offset for s in segments])
        except BaseException:
            # a failed part, Ctrl-C or SIGTERM: the other parts are not needed; the
            # workers end (removing their temporaries) before the folder goes
            pool.stop()
            raise
        finally:
            pool.close()
    if written != frames:
        log.warning("%s: stitched %d of the %d frames the parts hold", dst, written, frames)
    if progress is not None:
        progress(written)
    return written
