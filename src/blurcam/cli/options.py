"""The stream options of every command, declared once, built by ``settings.build_settings``.

``blurcam blur``, ``batch``, ``cam``, ``serve`` and ``mask`` take the same
``--model``, ``--effect``, ``--keep-box``, ``--face-guard`` ... options. They
are declared here once, in groups, and :func:`with_settings` adds a group to
a command: typer sees the options in the command's signature, and the
command receives one validated :class:`~blurcam.settings.Settings` as its
``settings`` argument instead. So a new option reaches every command, and
the batch manifest, the web page and the live controls name it the same way
(:data:`blurcam.settings.OPTIONS`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ..errors import SettingsError
from ..io.video import QUALITY
from ..settings import DEFAULT_THREADS, EffectSettings, GuardSettings, Settings, build_settings

__all__ = ["Device", "Model", "Quality", "Strength", "Threads", "check_quality", "with_settings"]

F = TypeVar("F", bound=Callable[..., Any])

_E = EffectSettings()
_G = GuardSettings()

Strength = Annotated[
    float, typer.Option("--strength", "-s", min=0.0, max=1.0, help="Blur strength, 0 (off) to 1.")
]
Model = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="auto, selfie, landscape, NAME=PATH for a reference model (sinet, meet, rvm), "
        "or a path to a .tflite/.onnx model.",
    ),
]
Threads = Annotated[
    int,
    typer.Option(
        "--threads", min=1, max=64, help="Model threads (default: half the cores, at most 2)."
    ),
]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, gpu or npu (falls back to cpu).")]
Quality = Annotated[
    str, typer.Option("--quality", "-q", help="Encoder speed/size: draft, fast, good, best.")
]


def check_quality(quality: str) -> None:
    """Refuse an unknown ``--quality`` before any work (a bad option, exit 2).

    Raises:
        SettingsError: not one of :data:`blurcam.io.video.QUALITY`.
    """
    if quality not in QUALITY:
        raise SettingsError(f"--quality must be one of {', '.join(QUALITY)}, got {quality!r}")


def _opt(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


GROUPS: dict[str, list[inspect.Parameter]] = {
    "model": [
        _opt("model", Model, "auto"),
        _opt("threads", Threads, DEFAULT_THREADS),
        _opt("device", Device, "cpu"),
    ],
    "guards": [
        _opt(
            "people",
            Annotated[
                str,
                typer.Option("--people", help="all, or main: keep only the main person."),
            ],
            _G.people,
        ),
        _opt(
            "face_guard",
            Annotated[
                bool,
                typer.Option(
                    "--face-guard/--no-face-guard", help="Never blur a detected face (default on)."
                ),
            ],
            _G.face,
        ),
    ],
    "effect": [
        _opt(
            "effect",
            Annotated[
                str,
                typer.Option(
                    "--effect",
                    "-e",
                    help="blur, bokeh (lens), replace (see --background), depth, or none.",
                ),
            ],
            _E.kind,
        ),
        _opt("strength", Strength, _E.strength),
        _opt(
            "background",
            Annotated[
                Path | None,
                typer.Option(
                    "--background", "-b", help="Image or video (looped) for --effect replace."
                ),
            ],
            None,
        ),
        _opt(
            "light_wrap",
            Annotated[
                float,
                typer.Option(
                    "--light-wrap", min=0.0, max=1.0, help="Replace: background light on the edge."
                ),
            ],
            _E.light_wrap,
        ),
        _opt(
            "harmonize",
            Annotated[
                float,
                typer.Option(
                    "--harmonize", min=0.0, max=1.0, help="Replace: match the camera's colours."
                ),
            ],
            _E.harmonize,
        ),
        _opt(
            "bokeh_shape",
            Annotated[str, typer.Option("--bokeh-shape", help="Bokeh: disc or hex (blades).")],
            _E.bokeh_shape,
        ),
        _opt(
            "highlights",
            Annotated[
                float,
                typer.Option(
                    "--highlights", min=0.0, max=1.0, help="Bokeh: how much bright spots bloom."
                ),
            ],
            _E.highlights,
        ),
        _opt(
            "depth_model",
            Annotated[
                Path | None,
                typer.Option(
                    "--depth-model", help="ONNX monocular depth model for --effect depth."
                ),
            ],
            None,
        ),
        _opt(
            "keep",
            Annotated[
                str | None,
                typer.Option("--keep", help="Keep sharp around x,y (input pixels), tracked."),
            ],
            None,
        ),
        _opt(
            "keep_box",
            Annotated[
                str | None,
                typer.Option("--keep-box", help="Keep sharp the box x,y,w,h (pixels), tracked."),
            ],
            None,
        ),
    ],
}


def with_settings(*groups: str) -> Callable[[F], F]:
    """Add the options of ``groups`` (``model``, ``guards``, ``effect``) to a typer command.

    The command declares ``settings: Settings`` (keyword) and gets the
    options built into it by :func:`blurcam.settings.build_settings`; a bad
    value raises ``SettingsError`` (one line, exit 2, from ``cli.app.main``).
    """
    params = [p for g in groups for p in GROUPS[g]]
    names = [p.name for p in params]

    def deco(func: F) -> F:
        sig = inspect.signature(func, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name != "settings"]

        @functools.wraps(func)
        def command(**kw: Any) -> Any:
            options = {n: kw.pop(n) for n in names}
            kw["settings"] = build_settings(Settings(), **options)
            return func(**kw)

        every = own + params
        command.__signature__ = sig.replace(parameters=every)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in every}
        if sig.return_annotation is not inspect.Signature.empty:
            command.__annotations__["return"] = sig.return_annotation
        del command.__wrapped__  # typer reads the signature above, not the wrapped one
        return command  # type: ignore[return-value]

    return deco
