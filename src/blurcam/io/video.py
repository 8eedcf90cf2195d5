"""Video files: probe, decode, and transcode with the audio kept.

Every job that reads a video does it through :class:`~.video_reader.VideoReader`
and every job that writes one through :class:`~.video_writer.VideoWriter`; this
module composes them. :func:`transcode` (a whole file) and
:func:`blurcam.split.blur_segment` (one part of a long one) run the same
loop, :func:`process_video`: the reader decodes and converts to BGR a few
frames ahead in its thread, the caller's thread runs ``process`` (which may
keep its own helper busy), and for a whole file the writer converts and
encodes behind in a third thread, all joined by small bounded queues. A
2-core machine thus keeps both cores busy without buffering the video in
memory. (A split part encodes on its own thread: its process shares the
cores with one other part, so a third thread would only add hand-offs.)

What a bad or unusual file gets is said in those two modules (rotation, odd
sizes, timestamps, corrupt or truncated data, audio, atomic output);
docs/RELIABILITY.md has the full table.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import cast

from ..errors import SinkError
from ..frame import U8
from .video_reader import (
    DecodedFrame,
    VideoInfo,
    VideoReader,
    frame_rotation,
    open_input,
    probe_video,
    upright,
)
from .video_writer import CODEC_BY_EXT, QUALITY, VideoWriter

__all__ = [
    "QUALITY",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "frame_rotation",
    "iter_frames",
    "open_input",
    "probe_video",
    "process_video",
    "transcode",
    "upright",
]

log = logging.getLogger(__name__)


# frames in, results out in the same order (may keep a few frames in flight)
FramesProcessor = Callable[[Iterable[U8]], Iterable[U8]]

DECODE_AHEAD = 4  # frames the reader decodes ahead of the model
ENCODE_QUEUE = 4  # frames waiting for the encoder


def iter_frames(path: Path) -> Iterator[tuple[U8, float]]:
    """Decode a video as (upright BGR uint8 frame, timestamp in seconds).

    A corrupt tail ends the iteration with a warning instead of an error, so
    whatever decodes is kept.

    Raises:
        SourceError: the file cannot be read or no frame decodes.
    """
    with VideoReader(path) as reader:
        for frame in reader:
            yield frame.image, frame.time


def process_video(
    src: Path,
    dst: Path,
    process: FramesProcessor,
    *,
    quality: str = "fast",
    start: int | None = None,
    end: int | None = None,
    bframes: bool = True,
    audio: bool = True,
    encode_queue: int = ENCODE_QUEUE,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Read ``src`` (or its ``[start, end)`` range), run ``process``, write ``dst``.

    The one frame loop of every video job: a whole file (:func:`transcode`)
    and a split part (:func:`blurcam.split.blur_segment`, a range with
    ``bframes=False`` and no audio). Each result is written with its input
    frame's timestamp; a range starts at 0 in ``dst`` (``start`` subtracted:
    an MP4 that starts later gets an edit list in milliseconds, which shifts
    its frames by a rounding error on reading). The reader's audio packets go
    to the writer as they come, so audio may reach the muxer a frame or two
    ahead of the video beside it, which its interleaving absorbs.
    ``encode_queue`` frames wait for the writer's encode thread; 0 encodes
    on the calling thread (x264's own frame threads still run). Returns the
    number of frames written; ``dst`` appears only on success.

    Raises:
        SourceError: ``src`` cannot be read or no frame (in range) decodes.
        SinkError: ``dst`` cannot be written.
    """
    preset, crf = QUALITY[quality]
    with (
        VideoReader(src, start=start, end=end, audio=audio, ahead=DECODE_AHEAD) as reader,
        VideoWriter(
            dst,
            reader.size,
            reader.rate,
            time_base=reader.time_base,
            preset=preset,
            crf=crf,
            bframes=bframes,
            audio=reader.audio_stream,
            queue_size=encode_queue,
        ) as writer,
    ):
        shift = start or 0
        stamps: deque[int] = deque()  # timestamps of frames whose result has not come back

        def images() -> Iterator[U8]:
            for item in reader.items():
                if isinstance(item, DecodedFrame):
                    stamps.append(item.pts)
                    yield item.image
                else:
                    writer.write_audio(item)

        n = 0
        results = process(images())
        try:
            for res in results:
                writer.write(res, stamps.popleft() - shift)
                n += 1
                if progress is not None:
                    progress(n)
        finally:
            close = getattr(results, "close", None)
            if close is not None:  # a generator stopped early: let it release its helpers
                close()
        return n


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
    if ext not in CODEC_BY_EXT:
        raise SinkError(f"unknown video extension {ext!r}: use {', '.join(CODEC_BY_EXT)}")
    run = cast(FramesProcessor, process) if many else _per_frame(process)
    return process_video(src, dst, run, quality=quality, progress=progress)


def _per_frame(process: Callable[[U8], U8] | FramesProcessor) -> FramesProcessor:
    f = cast(Callable[[U8], U8], process)
    return lambda frames: map(f, frames)
