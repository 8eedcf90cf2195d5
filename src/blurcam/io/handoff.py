"""One worker thread and its owner, joined by a small bounded queue.

The video reader decodes ahead in a worker (the owner takes frames) and the
video writer encodes behind one (the owner gives frames); both need the same
three things, kept here once: a queue that never holds more than a few
frames (memory stays flat however long the file), a stop flag that wakes
whichever side is waiting, and the worker's exception handed to the owner,
so a failure surfaces in the thread that can clean up.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["END", "Worker"]

END: Any = object()  # the last item a producer puts; also what get() returns once stopped

_POLL = 0.1  # seconds between looks at the stop flag while waiting on the queue


class Worker:
    """A daemon thread running ``work(self)`` beside a bounded queue of ``size`` items.

    Either side may be the producer. :meth:`put` and :meth:`get` wait for
    room or an item but give up once :attr:`stop` is set (by :meth:`join`, or
    by the worker itself when ``work`` raises), so neither side can hang on
    a partner that has gone. What ``work`` raised is kept in :attr:`error`.
    """

    def __init__(self, name: str, work: Callable[[Worker], None], size: int) -> None:
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, size))
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._work = work
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._work(self)
        except BaseException as e:
            self.error = e
            self.stop.set()

    def put(self, item: Any) -> bool:
        """Queue ``item``, waiting for room; False (item not queued) once stopped."""
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def put_nowait(self, item: Any) -> bool:
        """Queue ``item`` if there is room now; False when full or stopped."""
        if self.stop.is_set():
            return False
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            return False
        return True

    def get(self) -> Any:
        """The next item, waiting for one; :data:`END` once stopped and empty."""
        while True:
            try:
                return self.queue.get(timeout=_POLL)
            except queue.Empty:
                if self.stop.is_set():
                    return END

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, *, stop: bool = True) -> None:
        """Wait for the worker to end; with ``stop`` tell it to end first.

        Without ``stop`` the worker finishes its queue (a producer owner puts
        :data:`END` first). Waited for without a limit, in short joins that
        leave Ctrl-C deliverable: the worker may be inside FFmpeg, and the
        files it works on must not be closed under it.
        """
        if stop:
            self.stop.set()
        while self._thread.is_alive():
            self._thread.join(0.5)
