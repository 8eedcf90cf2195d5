"""``blurcam blur`` and ``blurcam mask``: whole files."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from .. import jobs
from .app import Device, Model, Strength, Threads, app, build_settings, err_console, progress_bar

Quality = Annotated[
    str, typer.Option("--quality", "-q", help="Encoder speed/size: draft, fast, good, best.")
]
Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output.")]


def _progress(desc: str, src: Path):  # type: ignore[no-untyped-def]
    total = jobs.count_frames(src) or None
    return progress_bar(desc, total)


@app.command()
def blur(
    input: Annotated[Path, typer.Argument(help="Image (jpg/png/webp) or video file.")],
    output: Annotated[Path, typer.Argument(help="Output file; its extension sets the format.")],
    strength: Strength = 0.7,
    model: Model = "auto",
    quality: Quality = "fast",
    force: Force = False,
    threads: Threads = 2,
    device: Device = "cpu",
) -> None:
    """Blur the background of an image or a video (audio is copied unchanged)."""
    settings = build_settings(strength=strength, model=model, threads=threads, device=device)
    t0 = time.perf_counter()
    with _progress("blur", input) as p:
        task = p.task_ids[0]

        def tick(n: int) -> None:
            dt = time.perf_counter() - t0
            p.update(task, completed=n, rate=f"{n / dt:.1f} fps" if dt > 0 else "")

        n = jobs.blur_file(input, output, settings, force=force, quality=quality, progress=tick)
    err_console.print(f"wrote {output} ({n} frame{'s' if n != 1 else ''})")


@app.command()
def mask(
    input: Annotated[Path, typer.Argument(help="Image, folder of images, or video.")],
    outdir: Annotated[Path, typer.Argument(help="Folder for the 8-bit PNG masks.")],
    model: Model = "auto",
    force: Force = False,
    threads: Threads = 2,
) -> None:
    """Write the person masks (8-bit PNG, 255 = person) of an image, a folder or a video."""
    settings = build_settings(model=model, threads=threads)
    with _progress("mask", input) as p:
        task = p.task_ids[0]
        n = jobs.mask_file(
            input, outdir, settings, force=force, progress=lambda k: p.update(task, completed=k)
        )
    err_console.print(f"wrote {n} mask{'s' if n != 1 else ''} to {outdir}")
