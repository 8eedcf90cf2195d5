"""Worker processes and thread limits for file jobs: one pool for ``blurcam blur``'s split
parts and ``blurcam batch``'s files.

Workers are spawned (never forked: a forked copy of a process with model and
codec threads can deadlock) and start with their CPU threads capped, so N
workers on N cores do not oversubscribe them; they report frames done through
one queue the driver drains.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as futures_wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import cv2

from .errors import WorkerStopped

__all__ = [
    "STOP_WAIT",
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


# How long a stopped worker may take to remove its temporaries before it is killed,
# and how often a worker checks that its driver still runs.
STOP_WAIT = 5.0
_WATCH_EVERY = 0.5
# what the worker's watchdog leaves a task whose driver is gone before exiting anyway
_ORPHAN_GRACE = 30.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _signal_on_parent_death(signum: int) -> None:
    """Linux: have the kernel send ``signum`` when the parent dies (``PR_SET_PDEATHSIG``).

    Strictly, when the parent *thread* that started this process exits: pools
    are started and used from one thread that outlives them.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)


class _PoolWorker:
    """A pool worker's side of the pool: its progress queue, stop signals, its driver.

    A stop signal (SIGTERM, SIGINT) interrupts the running task as Ctrl-C
    would, so its writers remove their temporaries; further signals while
    it unwinds are ignored, so the cleanup is not cut short. When the
    driver is stopping (``stopping`` set), a task that was already queued
    for this worker (the executor queues ahead, and ``cancel_futures``
    cannot take those back) is not started. If the driver dies (killed
    outright), nobody will take a result: the task is interrupted the same
    way and the process exits. On Linux the kernel reports the
    driver's death at once (``PR_SET_PDEATHSIG``); a watchdog thread polling
    the parent PID does it on any POSIX system (an orphan gets another
    parent; not on Windows) and also covers a death before that
    was set up.
    """

    def __init__(self, progress: Any, driver: int, stopping: Any) -> None:
        self.progress = progress
        self.driver = driver
        self.stopping = stopping  # a multiprocessing Event the driver sets in stop()
        self.busy = False
        self.interrupted = False  # the running task has been interrupted
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, self._on_signal)
        _signal_on_parent_death(signal.SIGTERM)
        if self.orphaned():
            os._exit(1)
        threading.Thread(target=self._watchdog, name="blurcam-watchdog", daemon=True).start()

    def orphaned(self) -> bool:
        return os.getppid() != self.driver

    def _on_signal(self, signum: int, frame: Any) -> None:
        if not self.busy:
            # idle, or sending a result back: the driver ends this process (with
            # its pool) unless it is gone
            if self.orphaned():
                os._exit(128 + signum)
            return
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt(signal.Signals(signum).name)

    def _watchdog(self) -> None:
        while not self.orphaned():
            time.sleep(_WATCH_EVERY)
        if not self.busy:
            os._exit(1)
        # a real signal to the main thread, so that a blocking call there returns too
        # (run() exits once the task has unwound)
        main = threading.main_thread().ident
        assert main is not None
        signal.pthread_kill(main, signal.SIGTERM)
        time.sleep(_ORPHAN_GRACE)
        os._exit(1)  # stuck in native code: go anyway

    def run(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self.orphaned():
            os._exit(1)
        if self.stopping.is_set():
            raise WorkerStopped(f"worker process {os.getpid()}: the pool is stopping")
        try:  # busy only inside: an interrupt can never escape as a KeyboardInterrupt
            self.busy, self.interrupted = True, False
            return fn(*args)
        except KeyboardInterrupt as e:
            # never re-raised as a KeyboardInterrupt in the driver, which would
            # take a stopped worker for its own Ctrl-C
            raise WorkerStopped(f"worker process {os.getpid()} was stopped ({e})") from None
        finally:
            self.busy = False
            if self.orphaned():
                os._exit(1)


# This process's pool-worker state when it is one (set by the pool initializer: a
# multiprocessing queue must be inherited at process start, not sent with a task);
# plumbing, never a model or session.
_worker: _PoolWorker | None = None


def _init_pool_worker(progress_queue: Any, stopping: Any, threads: int, driver: int) -> None:
    global _worker
    _worker = _PoolWorker(progress_queue, driver, stopping)
    limit_threads(threads)


def _run_task(fn: Callable[..., T], *args: Any) -> T:
    """Worker side of :meth:`ProcessPool.call`."""
    assert _worker is not None
    return _worker.run(fn, args)


def worker_progress() -> Any:
    """The progress queue of this pool worker (None outside one)."""
    return _worker.progress if _worker is not None else None


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

    Workers start with :func:`limit_threads` and follow their driver: they
    stop when it dies, however it dies (:class:`_PoolWorker`), so none is left
    behind waiting on a pipe. :func:`worker_progress` hands the progress
    queue to the work they run.
    """

    backend = "local"

    def __init__(self, workers: int, threads: int) -> None:
        ctx = mp.get_context("spawn")
        self.capacity = self.slots = workers
        self.progress: Any = ctx.Queue()
        self._stopping = ctx.Event()
        self._ctx, self._threads, self._workers = ctx, threads, workers
        self._ex = self._new()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=self._ctx,
            initializer=_init_pool_worker,
            initargs=(self.progress, self._stopping, self._threads, os.getpid()),
        )

    def call(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` in a worker; a pool whose worker died is replaced first.

        A worker stopped by a signal while the driver runs on fails the call
        with :class:`~blurcam.errors.WorkerStopped`.
        """
        try:
            return self._ex.submit(_run_task, fn, *args)
        except BrokenProcessPool:
            log.warning("a worker process died; starting a new pool")
            self._ex.shutdown(wait=False, cancel_futures=True)
            self._ex = self._new()
            return self._ex.submit(_run_task, fn, *args)

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
        """Ctrl-C or SIGTERM: drop queued units and stop the running ones.

        Every worker gets SIGTERM, which interrupts its task (its temporaries
        are removed), and starts no other; one still running after
        :data:`STOP_WAIT` seconds, or when another interrupt cuts the wait
        short, is killed. Returns once every future is settled.
        """
        procs = list(getattr(self._ex, "_processes", {}).values())
        self._stopping.set()
        self._ex.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(OSError, ValueError):
                if p.is_alive() and p.pid:
                    os.kill(p.pid, signal.SIGTERM)
        try:
            deadline = time.monotonic() + STOP_WAIT
            for p in procs:
                p.join(timeout=max(0.0, deadline - time.monotonic()))
        finally:
            for p in procs:
                with contextlib.suppress(OSError, ValueError):
                    if p.is_alive():
                        p.kill()
        self._ex.shutdown(wait=True)  # every future settled: done, failed or cancelled

    def close(self) -> None:
        self._ex.shutdown(wait=True)
        self.progress.close()
