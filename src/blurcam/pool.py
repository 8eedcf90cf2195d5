"""Worker processes and thread limits for file jobs: one pool for ``blurcam blur``'s split
parts and ``blurcam batch``'s files.

Workers are spawned (never forked: a forked copy of a process with model and
codec threads can deadlock) and start with their CPU threads capped, so N
workers on N cores do not oversubscribe them; they report frames done through
one queue the driver drains.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import queue
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as futures_wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import cv2

__all__ = [
    "ProcessPool",
    "limit_threads",
    "opencv_threads",
    "reporter",
    "worker_progress",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


@contextlib.contextmanager
def opencv_threads(n: int) -> Iterator[None]:
    """Run the block with OpenCV's thread pool at ``n`` threads, then restore it.

    A video job already keeps every core busy (decoder, encoder, the two
    pipeline stages); OpenCV's own pool would only spin-wait between calls
    and take CPU from them (~1 CPU-ms per 1080p frame, docs/BENCHMARKS.md).
    """
    old = cv2.getNumThreads()
    cv2.setNumThreads(n)
    try:
        yield
    finally:
        cv2.setNumThreads(old)


def limit_threads(threads: int) -> None:
    """Keep one worker to ``threads`` CPU threads so N workers do not oversubscribe the cores.

    The model threads come from the settings; this caps OpenCV and the OpenMP
    and BLAS pools that numpy-based code may start.
    """
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    cv2.setNumThreads(threads)


# The progress queue of a pool worker. It must be inherited at process start
# (a multiprocessing queue cannot travel in a task's arguments), so the pool
# initializer stores it here; it is plumbing, never a model or session.
_worker_progress: Any = None


def _init_pool_worker(progress_queue: Any, threads: int) -> None:
    global _worker_progress
    _worker_progress = progress_queue
    limit_threads(threads)


def worker_progress() -> Any:
    """The progress queue of this pool worker (None outside one)."""
    return _worker_progress


def reporter(key: tuple[int, int], q: Any) -> Callable[[int], None] | None:
    """A ``progress(frames)`` callable that puts ``(key, frames)`` on ``q`` (at most 4/s)."""
    if q is None:
        return None
    last = 0.0

    def report(n: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= 0.25:
            last = now
            with contextlib.suppress(Exception):
                q.put_nowait((key, n))

    return report


class ProcessPool:
    """A spawn-safe local process pool whose workers report frames through one queue.

    Workers start with :func:`limit_threads` and :data:`_worker_progress` set
    (:func:`worker_progress` hands it to the work they run).
    """

    backend = "local"

    def __init__(self, workers: int, threads: int) -> None:
        ctx = mp.get_context("spawn")
        self.capacity = self.slots = workers
        self.progress: Any = ctx.Queue()
        self._ctx, self._threads, self._workers = ctx, threads, workers
        self._ex = self._new()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=self._ctx,
            initializer=_init_pool_worker,
            initargs=(self.progress, self._threads),
        )

    def call(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` in a worker; a pool whose worker died is replaced first."""
        try:
            return self._ex.submit(fn, *args)
        except BrokenProcessPool:
            log.warning("a worker process died; starting a new pool")
            self._ex.shutdown(wait=False, cancel_futures=True)
            self._ex = self._new()
            return self._ex.submit(fn, *args)

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        done, _ = futures_wait(handles, timeout=timeout, return_when=FIRST_COMPLETED)
        return list(done)

    def outcome(self, handle: Any) -> dict[str, Any]:
        result: dict[str, Any] = handle.result()
        return result

    def drain(self) -> list[tuple[tuple[int, int], int]]:
        out = []
        while True:
            try:
                out.append(self.progress.get_nowait())
            except (queue.Empty, OSError, ValueError):
                return out

    def stop(self) -> None:
        """Ctrl-C: drop queued units, interrupt running ones (they clean their temporaries)."""
        procs = list(getattr(self._ex, "_processes", {}).values())
        self._ex.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(OSError, ValueError):
                if p.is_alive() and p.pid:
                    os.kill(p.pid, signal.SIGINT)
        deadline = time.monotonic() + 5.0
        for p in procs:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.terminate()

    def close(self) -> None:
        self._ex.shutdown(wait=True)
        self.progress.close()
