"""The typer app and what every command shares: error handling, settings, progress."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..errors import BlurcamError

try:  # typer >= 0.20 vendors click as typer._click
    from typer._click import exceptions as _cx
except ImportError:  # pragma: no cover - older typer on real click
    from click import exceptions as _cx  # type: ignore[no-redef]

__all__ = [
    "FrameProgress",
    "app",
    "console",
    "err_console",
    "main",
    "progress_bar",
]

app = typer.Typer(
    name="blurcam",
    help="Blur or replace the background behind people in images, videos and live video.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
err_console = Console(stderr=True)


class FrameProgress:
    """Frames done so far on one progress bar, shown with the running fps.

    Jobs report either a running total (:meth:`set`) or a batch of new
    frames (:meth:`add`); both are plain callables to pass as ``progress=``.
    """

    def __init__(self, progress: Progress) -> None:
        self._p = progress
        self._task = progress.task_ids[0]
        self._t0 = time.perf_counter()
        self.done = 0

    def set(self, done: int) -> None:
        self.done = done
        dt = time.perf_counter() - self._t0
        self._p.update(self._task, completed=done, rate=f"{done / dt:.1f} fps" if dt > 0 else "")

    def add(self, n: int) -> None:
        self.set(self.done + n)


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[FrameProgress]:
    """A rich progress bar on stderr, counting frames."""
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err_console, transient=False) as p:
        p.add_task(description, total=total, rate="")
        yield FrameProgress(p)


@app.callback()
def _root(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logs.")] = 0,
) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    """Entry point: a :class:`BlurcamError` is one line on stderr and its exit code."""
    from . import commands  # noqa: F401  - registers the commands

    try:
        rv = app(args=argv, standalone_mode=False)
    except BlurcamError as e:
        err_console.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        return e.exit_code
    except typer.Exit as e:
        return int(e.exit_code or 0)
    except typer.Abort:
        err_console.print("interrupted")
        return 130
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except _cx.ClickException as e:
        e.show(file=sys.stderr)
        return e.exit_code
    return int(rv or 0) if isinstance(rv, int) else 0
