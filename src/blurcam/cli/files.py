"""``blurcam blur`` and ``blurcam mask``: whole files."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated

import typer

from .. import jobs
from ..errors import SettingsError, SourceError
from ..settings import DEFAULT_THREADS, EffectSettings, GuardSettings, Settings
from .app import (
    Device,
    FrameProgress,
    Model,
    Strength,
    Threads,
    app,
    build_settings,
    err_console,
    progress_bar,
)

Quality = Annotated[
    str, typer.Option("--quality", "-q", help="Encoder speed/size: draft, fast, good, best.")
]
Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output.")]
People = Annotated[
    str, typer.Option("--people", help="all, or main: keep only the main person, blur the rest.")
]
FaceGuard = Annotated[
    bool,
    typer.Option("--face-guard/--no-face-guard", help="Never blur a detected face (default on)."),
]


# ---- effect options of `blurcam blur` (effects engineer; docs/EFFECTS.md)
Effect = Annotated[
    str,
    typer.Option("--effect", "-e", help="blur, bokeh (lens), replace (see --background) or depth."),
]
Background = Annotated[
    Path | None,
    typer.Option("--background", "-b", help="Image or video (looped) for --effect replace."),
]
Keep = Annotated[
    str | None, typer.Option("--keep", help="Keep sharp around x,y (input pixels), tracked.")
]
KeepBox = Annotated[
    str | None, typer.Option("--keep-box", help="Keep sharp the box x,y,w,h (pixels), tracked.")
]
DepthModel = Annotated[
    Path | None,
    typer.Option("--depth-model", help="ONNX monocular depth model for --effect depth."),
]
LightWrap = Annotated[
    float,
    typer.Option("--light-wrap", min=0.0, max=1.0, help="Replace: background light on the edge."),
]
Harmonize = Annotated[
    float,
    typer.Option("--harmonize", min=0.0, max=1.0, help="Replace: match the camera's colours."),
]


def _numbers(text: str | None, n: int, flag: str) -> tuple[float, ...] | None:
    """``"x,y"`` -> ``(x, y)``; a clear one-line error otherwise."""
    if text is None:
        return None
    try:
        vals = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        vals = ()
    if len(vals) != n:
        raise SettingsError(f"{flag} expects {n} comma-separated numbers, got {text!r}")
    return vals


def effect_settings(
    effect: str = "blur",
    strength: float = 0.7,
    background: Path | None = None,
    keep: str | None = None,
    keep_box: str | None = None,
    depth_model: Path | None = None,
    light_wrap: float = 0.3,
    harmonize: float = 0.0,
) -> EffectSettings:
    """The effect options of ``blurcam blur`` -> :class:`EffectSettings`.

    Raises:
        SettingsError: bad numbers or option values.
        SourceError: the background or depth model file does not exist.
    """
    for path, what in ((background, "background"), (depth_model, "depth model")):
        if path is not None and not path.is_file():
            raise SourceError(f"{what} not found: {path}")
    return EffectSettings(
        kind=effect,
        strength=strength,
        background=None if background is None else str(background),
        keep_point=_numbers(keep, 2, "--keep"),  # type: ignore[arg-type]
        keep_box=_numbers(keep_box, 4, "--keep-box"),  # type: ignore[arg-type]
        depth_model=None if depth_model is None else str(depth_model),
        light_wrap=light_wrap,
        harmonize=harmonize,
    )


def _progress(desc: str, src: Path) -> AbstractContextManager[FrameProgress]:
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
    threads: Threads = DEFAULT_THREADS,
    device: Device = "cpu",
    effect: Effect = "blur",
    background: Background = None,
    keep: Keep = None,
    keep_box: KeepBox = None,
    depth_model: DepthModel = None,
    light_wrap: LightWrap = 0.3,
    harmonize: Harmonize = 0.0,
    people: People = "all",
    face_guard: FaceGuard = True,
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
) -> None:
    """Blur or replace the background of an image or a video (audio is copied unchanged)."""
    fx = effect_settings(
        effect, strength, background, keep, keep_box, depth_model, light_wrap, harmonize
    )
    settings = build_settings(
        strength=strength,
        model=model,
        effect=effect,
        threads=threads,
        device=device,
        base=Settings(effect=fx, guards=GuardSettings(face=face_guard, people=people)),
    )
    with _progress("blur", input) as bar:
        n = jobs.blur_file(
            input,
            output,
            settings,
            force=force,
            quality=quality,
            progress=bar.set,
            workers=workers or os.cpu_count() or 1,
        )
    err_console.print(f"wrote {output} ({n} frame{'s' if n != 1 else ''})")


@app.command()
def mask(
    input: Annotated[Path, typer.Argument(help="Image, folder of images, or video.")],
    outdir: Annotated[Path, typer.Argument(help="Folder for the 8-bit PNG masks.")],
    model: Model = "auto",
    force: Force = False,
    threads: Threads = DEFAULT_THREADS,
    people: People = "all",
    face_guard: FaceGuard = True,
) -> None:
    """Write the person masks (8-bit PNG, 255 = person) of an image, a folder or a video."""
    settings = build_settings(
        model=model,
        threads=threads,
        base=Settings(guards=GuardSettings(face=face_guard, people=people)),
    )
    with _progress("mask", input) as bar:
        n = jobs.mask_file(input, outdir, settings, force=force, progress=bar.set)
    err_console.print(f"wrote {n} mask{'s' if n != 1 else ''} to {outdir}")
