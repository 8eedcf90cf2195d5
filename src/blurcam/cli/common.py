"""What every command shares: the consoles and the frame progress bar."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["FrameProgress", "bar_columns", "console", "err_console", "progress_bar"]

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

    def finish(self, done: int) -> None:
        """End at ``done`` of ``done``: the header's frame count is an estimate (a
        truncated file announces more frames than it holds)."""
        self._p.update(self._task, total=done)
        self.set(done)


def bar_columns(field: str) -> list[ProgressColumn]:
    """The columns of every blurcam progress bar: name, bar, n/total, the task's own
    ``field`` (fps, failures...), elapsed and remaining time."""
    return [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(f"{{task.fields[{field}]}}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[FrameProgress]:
    """A rich progress bar on stderr, counting frames."""
    with Progress(*bar_columns("rate"), console=err_console, transient=False) as p:
        p.add_task(description, total=total, rate="")
        yield FrameProgress(p)
