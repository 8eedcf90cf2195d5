"""Stop signals: SIGTERM takes the same path as Ctrl-C in every command.

systemd, docker, Kubernetes and ``timeout`` stop a program with SIGTERM, whose
default action kills the process on the spot: no ``finally`` runs, so a
recording is lost and a hidden ``.part`` temporary stays behind. While a
command runs, :func:`stop_signals` makes SIGTERM raise ``KeyboardInterrupt``
in the main thread, exactly as Ctrl-C (SIGINT) does, so the one cleanup path
that Ctrl-C already takes (writers abort, workers stop, a recording is
finished) serves both. It remembers which signal came, for the exit code:
``128 + signal number`` (130 for SIGINT, 143 for SIGTERM), the shell's
convention.

Once a command's outputs are final (the file renamed into place, the
recording closed), :func:`shield` makes further stop signals do nothing: a
late signal must not turn a finished run into an "interrupted" exit, nor
stop the report that follows.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["STOP_SIGNALS", "StopSignals", "shield", "stop_signals"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Which stop signal ended the command (the last one, if several came)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def _raise(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        raise KeyboardInterrupt(signal.Signals(signum).name)

    @property
    def name(self) -> str:
        """``SIGINT`` or ``SIGTERM`` (``SIGINT`` when the interrupt came from elsewhere)."""
        return signal.Signals(self.signum or signal.SIGINT).name

    @property
    def exit_code(self) -> int:
        """128 + the signal number: 130 for Ctrl-C, 143 for SIGTERM."""
        return 128 + int(self.signum or signal.SIGINT)


@contextmanager
def stop_signals(*, exiting: bool = False) -> Iterator[StopSignals]:
    """SIGINT and SIGTERM raise ``KeyboardInterrupt`` inside the block.

    A signal the process was started with ignored (``nohup``, a background
    job) stays ignored. On leaving, the previous handlers come back; with
    ``exiting`` (the ``blurcam`` program, about to exit with the command's
    code) stop signals are ignored instead, so one that arrives while the
    interpreter shuts down cannot change that code. Outside the main thread
    (where handlers cannot be set) nothing is changed.
    """
    stop = StopSignals()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    old: dict[int, Any] = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s, handler in old.items():
        if handler is not signal.SIG_IGN:
            signal.signal(s, stop._raise)
    try:
        yield stop
    finally:
        for s, handler in old.items():
            if exiting:
                signal.signal(s, signal.SIG_IGN)
            elif handler is not None:
                signal.signal(s, handler)


def shield() -> None:
    """From now on, stop signals are ignored: the command's outputs are final.

    Only replaces handlers that :func:`stop_signals` installed, so a library
    user's own handlers are never touched; :func:`stop_signals` restores the
    previous handlers when the command returns.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for s in STOP_SIGNALS:
        handler = signal.getsignal(s)
        if isinstance(getattr(handler, "__self__", None), StopSignals):
            signal.signal(s, signal.SIG_IGN)
