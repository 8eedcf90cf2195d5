"""``blurcam blur`` and ``blurcam mask``: whole files."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated

import typer

from .. import jobs
from ..io import remove_leftovers
from ..settings import Settings
from ..split import PART_MIN_SECONDS
from .common import FrameProgress, err_console, progress_bar
from .options import Quality, check_quality, with_settings
from .signals import shield

Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output.")]


def _progress(desc: str, src: Path) -> AbstractContextManager[FrameProgress]:
    total = jobs.count_frames(src) or None
    return progress_bar(desc, total)


@with_settings("effect", "model", "guards")
def blur(
    input: Annotated[Path, typer.Argument(help="Image (jpg/png/webp) or video file.")],
    output: Annotated[Path, typer.Argument(help="Output file; its extension sets the format.")],
    *,
    settings: Settings,
    quality: Quality = "fast",
    force: Force = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            min=1,
            help="Processes for a long video (default: one per CPU). A video of a minute or "
            "more is cut at keyframes into parts of >= 30 s, blurred in parallel and stitched; "
            "1 = one process.",
        ),
    ] = None,
    split_min: Annotated[
        float,
        typer.Option(
            "--split-min",
            min=0.0,
            help="Shortest part, in seconds, when a long video is split across workers "
            "(0 = never split).",
        ),
    ] = PART_MIN_SECONDS,
) -> None:
    """Blur or replace the background of an image or a video (audio is copied unchanged)."""
    check_quality(quality)
    jobs.check_files(settings)
    remove_leftovers(output.expanduser().absolute().parent)
    with _progress("blur", input) as bar:
        n = jobs.blur_file(
            input,
            output,
            settings,
            force=force,
            quality=quality,
            progress=bar.set,
            workers=workers or os.cpu_count() or 1,
            split_min=split_min,
        )
        shield()  # the output is in place: a late signal changes nothing
        bar.finish(n)
    err_console.print(f"wrote {output} ({n} frame{'s' if n != 1 else ''})")


@with_settings("model", "guards")
def mask(
    input: Annotated[Path, typer.Argument(help="Image, folder of images, or video.")],
    outdir: Annotated[Path, typer.Argument(help="Folder for the 8-bit PNG masks.")],
    *,
    settings: Settings,
    force: Force = False,
) -> None:
    """Write the person masks (8-bit PNG, 255 = person) of an image, a folder or a video."""
    jobs.check_files(settings)
    remove_leftovers(outdir)
    with _progress("mask", input) as bar:
        n = jobs.mask_file(input, outdir, settings, force=force, progress=bar.set)
        shield()  # the masks are written: a late signal changes nothing
        bar.finish(n)
    err_console.print(f"wrote {n} mask{'s' if n != 1 else ''} to {outdir}")
