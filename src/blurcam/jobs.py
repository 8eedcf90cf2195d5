"""Whole-file jobs: blur an image or video, write the masks of a sequence.

The CLI and the batch runner call these; they own no image maths, only the
plumbing of source -> :class:`~blurcam.pipeline.Stream` -> sink.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from .errors import SinkError, SourceError
from .io import (
    VIDEO_EXTS,
    check_output_path,
    is_image_path,
    list_images,
    probe_video,
    read_image,
    transcode,
    write_image,
)
from .io.video import iter_frames
from .pipeline import Stream
from .pool import opencv_threads
from .segment import check_model
from .settings import Settings
from .split import PART_MIN_SECONDS, blur_parallel, parallel_parts

__all__ = ["blur_file", "check_files", "count_frames", "mask_file"]

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


def check_files(settings: Settings) -> None:
    """Fail now, and once, when a file the settings name is missing (not on the first
    frame, or on every file of a batch).

    Raises:
        SourceError: the background image/video or the depth model does not exist.
        ModelError: the model is an unknown name, or a path that is missing or a folder.
    """
    e = settings.effect
    for path, what in ((e.background, "background"), (e.depth_model, "depth model")):
        if path is not None and not Path(path).expanduser().is_file():
            raise SourceError(f"{what} not found: {path}")
    check_model(settings.segment.model)


def _kind(path: Path) -> str:
    if not path.exists():
        raise SourceError(f"input not found: {path}")
    if path.is_dir():
        return "folder"
    if is_image_path(path):
        return "image"
    return "video"


def count_frames(path: Path) -> int:
    """Frames a job over ``path`` will process (0 when unknown), for progress bars."""
    kind = _kind(path)
    if kind == "image":
        return 1
    if kind == "folder":
        return len(list_images(path))
    return probe_video(path).frames


def blur_file(
    src: Path,
    dst: Path,
    settings: Settings,
    *,
    force: bool = False,
    quality: str = "fast",
    progress: Progress | None = None,
    stream: Stream | None = None,
    workers: int = 1,
    split_min: float | None = None,
) -> int:
    """Blur the background of an image or video file into ``dst``; returns frames written.

    With ``workers`` > 1 a video of at least two ``split_min`` seconds (default
    :data:`~blurcam.split.PART_MIN_SECONDS`, so a minute) is cut into
    keyframe-aligned parts blurred by that many processes and stitched
    (:mod:`blurcam.split`); the output is the same upright, exactly
    sized video as one process writes.

    Raises:
        SourceError: the input cannot be read.
        SinkError: the output exists (without ``force``), is the input, or cannot be written.
    """
    kind = _kind(src)
    if kind == "folder":
        raise SourceError(f"{src} is a folder: use 'blurcam batch' for folders")
    check_output_path(dst, inputs=(src,), force=force)
    st = stream or Stream(settings)
    try:
        if kind == "image":
            if not is_image_path(dst):
                raise SinkError(f"{src} is an image, so the output must be one too, not {dst}")
            write_image(dst, st.process_image(read_image(src)))
            if progress:
                progress(1)
            return 1
        if dst.suffix.lower() not in VIDEO_EXTS:
            raise SinkError(
                f"{src} is a video, so the output needs a video extension ({', '.join(VIDEO_EXTS)})"
            )
        if workers > 1 and stream is None and not settings.tracks_over_time:
            part_min = PART_MIN_SECONDS if split_min is None else split_min
            parts = parallel_parts(probe_video(src).duration, workers, dst, part_min)
            if parts > 1:
                n = blur_parallel(
                    src, dst, settings, parts=parts, quality=quality, progress=progress
                )
                if n is not None:
                    return n
        with opencv_threads(1):
            return transcode(
                src, dst, st.process_iter, many=True, quality=quality, progress=progress
            )
    finally:
        if stream is None:
            st.close()


def mask_file(
    src: Path,
    outdir: Path,
    settings: Settings,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> int:
    """Write the final alpha masks (8-bit PNG, 255 = person) of an image, folder or video.

    A folder is one sequence in name order (temporal state carried; images may
    change size mid-sequence, which restarts the temporal state) and keeps the
    stems; a video gives ``000000.png``, ``000001.png``, ... Returns the number
    of masks written. ``outdir`` is created when missing. If the job fails, the
    masks it wrote are removed again (and ``outdir`` too when it made it), so a
    failed run leaves the disk as it was.

    Raises:
        SourceError: the input cannot be read.
        SinkError: ``outdir`` is a file, cannot be created or written, or a mask
            exists without ``force``.
    """
    kind = _kind(src)
    if outdir.exists() and not outdir.is_dir():
        raise SinkError(f"{outdir} exists and is not a folder")
    if kind == "image":
        names = [src.stem]
    elif kind == "folder":
        images = list_images(src)
        names = [p.stem for p in images]
    else:
        probe_video(src)  # fail early, before any folder is made
        names = []
    if outdir.is_dir():
        for name in names:
            check_output_path(outdir / f"{name}.png", inputs=(src,), force=force)
    made_dir = not outdir.exists()
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SinkError(f"cannot create the output folder {outdir}: {e.strerror or e}") from e
    st = Stream(settings)
    written: list[Path] = []

    def emit(name: str) -> None:
        dst = outdir / f"{name}.png"
        check_output_path(dst, inputs=(src,), force=force)
        alpha = st.last_alpha
        assert alpha is not None
        write_image(dst, alpha)
        written.append(dst)
        if progress:
            progress(len(written))

    ok = False
    try:
        if kind == "image":
            st.process_image(read_image(src))
            emit(src.stem)
        elif kind == "folder":
            for p in images:
                st.process(read_image(p))
                emit(p.stem)
        else:
            for i, (frame, _ts) in enumerate(iter_frames(src)):
                st.process(frame)
                emit(f"{i:06d}")
            if not written:
                raise SourceError(f"{src}: no video frame could be decoded")
        ok = True
    finally:
        st.close()
        if not ok:
            for p in written:
                p.unlink(missing_ok=True)
            if made_dir:
                with contextlib.suppress(OSError):
                    outdir.rmdir()
    return len(written)
