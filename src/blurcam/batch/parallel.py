"""One long video, several processes: how ``blurcam blur`` uses every core on one file.

A single process keeps a 2-core machine only ~80% busy on a 1080p file: the
decoder, the two pipeline stages and the encoder hand every frame through one
interpreter, and those hand-offs serialise. Two processes, each blurring its
own keyframe-aligned half of the file (:mod:`blurcam.batch.split`), keep both
cores busy; the halves are then stitched with the input's audio. Measured on
a 60 s 1080p30 file with audio on 2 cores: 2.66x -> 3.29x real time with
``--quality draft``, 2.2x -> 2.5x with the default (docs/BENCHMARKS.md).

What changes against one process: the mask history starts afresh at each cut
(one frame of smoothing, at a keyframe), and the video is encoded without
B-frames (the parts must concatenate), a few percent larger at the same
quality. The frame count, timestamps, orientation and size are the same: the
parts are read and written by the same VideoReader and VideoWriter as one
process uses.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION
from concurrent.futures import wait as futures_wait
from dataclasses import replace
from pathlib import Path

from ..settings import Settings
from . import run
from .split import SPLIT_EXTS, Segment, blur_segment, plan_segments, stitch

__all__ = ["PART_MIN_SECONDS", "blur_parallel", "parallel_parts"]

log = logging.getLogger(__name__)

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
    progress = run._reporter((0, segment.index), run._worker_progress)
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
    pool = run._Pool(len(segments), threads=1)
    seen: dict[int, int] = {}
    try:
        with tempfile.TemporaryDirectory(prefix=".blurcam-parts-", dir=dst.parent) as wd:
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
        pool.stop()  # a failed part or Ctrl-C: the other parts are not needed
        raise
    finally:
        pool.close()
    if written != frames:
        log.warning("%s: stitched %d of the %d frames the parts hold", dst, written, frames)
    if progress is not None:
        progress(written)
    return written
