"""Run a planned batch: a local process pool by default, Ray tasks on a cluster.

This is not a job system: the pool (``concurrent.futures`` with spawned
workers) or Ray does the scheduling; this module only keeps a bounded number
of *units* in flight, retries the transient failures, stitches split videos
and turns outcomes into :class:`~blurcam.batch.report.FileResult` records.

A unit is a whole file, or one time range of a long video when splitting is
on. Every worker writes its output atomically and then its sidecar, so a
crash or Ctrl-C loses at most the units in flight. One bad file never stops
the batch: its error is recorded and the rest go on.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..errors import (
    BlurcamError,
    DeviceUnavailableError,
    InputWarning,
    ModelError,
    SettingsError,
    SourceError,
)
from ..io import probe_video, remove_leftovers
from ..jobs import blur_file
from ..pool import STOP_WAIT, ProcessPool, limit_threads, reporter, worker_progress
from ..settings import build_settings
from ..split import SPLIT_EXTS, Segment, blur_segment, plan_segments, stitch
from .plan import Job, write_sidecar
from .report import BatchReport, FileResult

__all__ = ["Tick", "Unit", "collect_warnings", "connect_ray", "run_batch", "run_unit"]

log = logging.getLogger(__name__)

# Errors that another attempt cannot fix: the input or the options are wrong.
PERMANENT = (SourceError, SettingsError, ModelError)


@dataclass(frozen=True, slots=True)
class Unit:
    """One piece of work for a worker (picklable): a whole job, or one segment of it."""

    key: tuple[int, int]  # (job index, segment index; -1 for a whole file)
    job: Job
    threads: int
    segment: Segment | None = None
    part: Path | None = None  # where a segment's video goes
    progress: Any = None  # a queue for (key, frames) messages (Ray); pool workers inherit one


@dataclass(frozen=True, slots=True)
class Tick:
    """Progress of the whole batch, handed to ``on_tick`` after every change."""

    files_total: int  # files to process (complete ones not counted)
    files_done: int  # finished, failed included
    frames_total: int  # 0 when unknown
    frames_done: int  # frames written, in-flight included
    skipped: int
    failed: int
    result: FileResult | None = None  # set when a file just finished


@contextlib.contextmanager
def collect_warnings() -> Iterator[list[str]]:
    """Gather, instead of printing, what blurcam warns about while the block runs.

    Records of the ``blurcam`` loggers at WARNING and above (a truncated
    input, dropped audio...) and :class:`~blurcam.errors.InputWarning` go
    into the list, each once. A worker's warnings thus travel back with its
    result, into the report and onto the driver's console: a Ray worker's
    stderr is not shown, and a pool worker's would land in the middle of the
    progress bars.
    """
    found: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found.append(record.getMessage())

    logger = logging.getLogger("blurcam")
    handler, propagate = Keep(logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default", InputWarning)
            yield found
        found.extend(str(w.message) for w in caught if issubclass(w.category, InputWarning))
        found[:] = dict.fromkeys(found)
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def run_unit(unit: Unit) -> dict[str, Any]:
    """Worker side: blur one file (then record it) or one segment.

    Returns frames, worker seconds, media duration and the warnings it gave.
    """
    limit_threads(unit.threads)
    job = unit.job
    settings = build_settings(job.settings, threads=unit.threads)
    progress = reporter(unit.key, unit.progress if unit.progress is not None else worker_progress())
    t0 = time.perf_counter()
    with collect_warnings() as said:
        if unit.segment is not None:
            assert unit.part is not None
            n = blur_segment(
                job.src, unit.part, settings, unit.segment, quality=job.quality, progress=progress
            )
            return {"frames": n, "seconds": time.perf_counter() - t0, "warnings": said}
        n = blur_file(
            job.src, job.dst, settings, force=True, quality=job.quality, progress=progress
        )
    seconds = time.perf_counter() - t0
    duration = 0.0
    if job.kind == "video":
        with contextlib.suppress(BlurcamError):
            duration = probe_video(job.dst).duration
    write_sidecar(job, frames=n, seconds=round(seconds, 3))
    return {"frames": n, "seconds": seconds, "duration": duration, "warnings": said}


# ----------------------------------------------------------------- executors
class _Local(ProcessPool):
    """The local backend: the process pool, running units."""

    def submit(self, unit: Unit) -> Future[dict[str, Any]]:
        return self.call(run_unit, unit)


def connect_ray(address: str, cpus: int = 1) -> Any:
    """Join the Ray cluster at ``address`` (``auto``, ``HOST:PORT``), or start a private
    one with ``cpus`` CPUs for ``local``; returns the ``ray`` module.

    The CLI calls it before anything is created, so a missing cluster leaves
    no output folder behind. Nothing is done when Ray is already initialised.

    Raises:
        DeviceUnavailableError: Ray is not installed, or no cluster answers.
    """
    try:
        import ray as ray_module
    except ImportError as e:
        raise DeviceUnavailableError(
            "--ray needs the cluster extra: pip install 'blurcam[cluster]'"
        ) from e
    ray: Any = ray_module  # untyped in places
    if ray.is_initialized():
        return ray
    try:
        if address == "local":
            # a private throw-away cluster: no token file needed under ~/.ray
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DeviceUnavailableError(
            f"cannot connect to the Ray cluster at {address!r}: {reason}"
        ) from e
    return ray


class _Ray:
    """Ray tasks with ``num_cpus`` each; retries are ours, so Ray's own are off."""

    backend = "ray"

    def __init__(self, address: str, task_cpus: float, threads: int, workers: int) -> None:
        ray = self._ray = connect_ray(address, workers)
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        self.slots = max(1, int(cpus // task_cpus))  # tasks that run at once
        self.capacity = 2 * self.slots  # in flight: every slot fed, plus one queued each
        self._task = ray.remote(run_unit).options(
            num_cpus=task_cpus, max_retries=0, retry_exceptions=False
        )
        self._threads = threads
        self._queue: Any = None
        try:  # frames progress from the tasks; an actor that reserves no CPU
            from ray.util.queue import Queue

            self._queue = Queue(actor_options={"num_cpus": 0})
        except Exception as e:  # progress is a nicety: run without it
            log.info("no Ray progress queue (%s); frames are counted as tasks finish", e)

    def submit(self, unit: Unit) -> Any:
        return self._task.remote(replace(unit, progress=self._queue))

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        ready, _ = self._ray.wait(handles, num_returns=1, timeout=timeout)
        if ready:  # collect the others that are ready too, without waiting
            more, _ = self._ray.wait(handles, num_returns=len(handles), timeout=0)
            ready = list({id(r): r for r in [*ready, *more]}.values())
        return list(ready)

    def outcome(self, handle: Any) -> dict[str, Any]:
        try:
            result: dict[str, Any] = self._ray.get(handle)
            return result
        except self._ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, BaseException):
                raise cause from None
            raise

    def drain(self) -> list[tuple[tuple[int, int], int]]:
        if self._queue is None:
            return []
        try:
            n = self._queue.qsize()
            return list(self._queue.get_nowait_batch(n)) if n else []
        except Exception:  # a lost progress message only delays the bar
            return []

    def stop(self, handles: list[Any]) -> None:
        """Ctrl-C or SIGTERM: cancel the tasks as Ctrl-C would stop them.

        A running task gets a ``KeyboardInterrupt`` (``force=False``), so its
        writers remove their temporaries; one still running after
        :data:`~blurcam.pool.STOP_WAIT` seconds, or when another interrupt cuts
        the wait short, is killed. The cluster outlives the batch.
        """
        ray = self._ray
        for h in handles:
            with contextlib.suppress(Exception):
                ray.cancel(h, force=False)
        left = handles
        try:
            with contextlib.suppress(Exception):
                _, left = ray.wait(handles, num_returns=len(handles), timeout=STOP_WAIT)
        finally:
            for h in left:
                with contextlib.suppress(Exception):
                    ray.cancel(h, force=True)
            self.close()

    def close(self) -> None:
        """Drop the progress queue; the cluster (or the caller's ray.init) outlives the batch."""
        if self._queue is not None:
            with contextlib.suppress(Exception):
                self._queue.shutdown()
            self._queue = None


# ------------------------------------------------------------------- driver
@dataclass
class _JobState:
    job: Job
    units: int = 1
    frames_expected: int = 0
    duration: float = 0.0
    parts: list[Path] = field(default_factory=list)
    offsets: list[Fraction] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0
    finished_units: int = 0
    attempts: int = 0
    error: str | None = None
    closed: bool = False
    warnings: list[str] = field(default_factory=list)


def _describe(e: BaseException) -> str:
    if isinstance(e, BrokenProcessPool):
        return f"the worker process died (crash, out of memory or kill): {e}"
    text = str(e).strip() or type(e).__name__
    if not isinstance(e, BlurcamError):
        text = f"{type(e).__name__}: {text}"
    return text.splitlines()[0] if len(text) > 500 else text


def _threads_per_worker(workers: int) -> int:
    return max(1, min(2, (os.cpu_count() or 1) // max(1, workers)))


def _part_path(work_dir: Path, job: Job, index: int) -> Path:
    """Hidden (never scanned as input) and matched by the stale-temporary cleanup of the plan."""
    tag = hashlib.sha1(str(job.dst).encode()).hexdigest()[:12]
    return work_dir / f".{job.dst.stem}.{tag}-{index:03d}.part.mp4"


def _probe_all(states: list[_JobState]) -> None:
    """Frames and duration from each video's header, for the progress bar and splitting.

    Headers are read by a few threads, since on network storage each probe
    is mostly waiting; an unreadable file is left for its worker to report.
    """

    def probe(st: _JobState) -> None:
        if st.job.kind == "image":
            st.frames_expected = 1
            return
        with contextlib.suppress(BlurcamError):
            info = probe_video(st.job.src)
            st.frames_expected, st.duration = info.frames, info.duration

    if len(states) < 8:
        for st in states:
            probe(st)
        return
    with ThreadPoolExecutor(max_workers=8) as ex:
        list(ex.map(probe, states))


def _units(
    i: int, st: _JobState, threads: int, slots: int, split_min: float, work_dir: Path | None
) -> list[tuple[Unit, int]]:
    """The first attempts at job ``i``: the whole file, or one unit per part when a long
    video is split (see :func:`run_batch`); parts and their leftovers go in ``work_dir``."""
    job = st.job
    n_parts = 1
    if (
        split_min > 0
        and slots > 1
        and job.kind == "video"
        and not job.settings.tracks_over_time
        and job.dst.suffix.lower() in SPLIT_EXTS
        and st.duration >= 2 * split_min
    ):
        n_parts = min(slots, int(st.duration // split_min))
    segments: list[Segment] = []
    if n_parts > 1:
        try:
            segments = plan_segments(job.src, n_parts)
        except BlurcamError as e:  # the worker will report it, unsplit
            log.info("not splitting %s: %s", job.src, e)
    if len(segments) < 2:
        return [(Unit((i, -1), job, threads), 1)]
    wd = work_dir or job.dst.parent
    wd.mkdir(parents=True, exist_ok=True)
    remove_leftovers(wd)
    st.parts = [_part_path(wd, job, s.index) for s in segments]
    stale = _part_path(wd, job, 0).name.replace("-000.part", "-*.part")
    for old in wd.glob(stale):  # parts of this file from a run that was killed
        with contextlib.suppress(OSError):
            old.unlink()
    st.units = len(segments)
    st.offsets = [seg.offset for seg in segments]
    return [
        (Unit((i, seg.index), job, threads, seg, part), 1)
        for seg, part in zip(segments, st.parts, strict=True)
    ]


def run_batch(
    jobs: list[Job],
    *,
    workers: int = 1,
    ray: str | None = None,
    retry: int = 1,
    split_min: float = 0.0,
    task_cpus: float = 1.0,
    work_dir: Path | None = None,
    on_tick: Callable[[Tick], None] | None = None,
) -> BatchReport:
    """Process the jobs that are not ``done``; returns every file's result.

    ``workers`` processes run locally, or with ``ray`` (an address, ``auto``
    or ``local``) Ray tasks of ``task_cpus`` CPUs each. A unit that fails with
    anything but a bad input/option is tried up to ``retry`` more times.
    Videos of at least ``2 * split_min`` seconds (``split_min`` > 0) are cut
    into keyframe-aligned parts of at least ``split_min`` seconds, one per
    free worker, and stitched in this process (parts live in ``work_dir``).

    Ctrl-C (KeyboardInterrupt; the CLI delivers SIGTERM the same way) stops
    the batch: queued files are left for the next run, running ones are
    interrupted (they remove their temporaries), and the report comes back
    with those files ``interrupted`` and ``interrupted`` set, instead of the
    exception. Each result carries the warnings its file gave (a truncated
    input, dropped audio), gathered in the worker.
    """
    if workers < 1:
        raise SettingsError(f"workers must be at least 1, got {workers}")
    if retry < 0:
        raise SettingsError(f"retry must be 0 or more, got {retry}")
    t_start = time.perf_counter()
    report = BatchReport(workers=workers, backend="ray" if ray else "local")
    results: list[FileResult | None] = [None] * len(jobs)
    states: dict[int, _JobState] = {}
    for i, job in enumerate(jobs):
        if job.done:
            results[i] = FileResult(str(job.src), str(job.dst), "skipped")
        else:
            states[i] = _JobState(job)
    skipped = len(jobs) - len(states)

    executor: Any = None
    todo: deque[tuple[Unit, int]] = deque()  # (unit, attempt)
    inflight: dict[Any, tuple[Unit, int]] = {}
    live_frames: dict[tuple[int, int], int] = {}
    frames_done = frames_total = 0
    finished = failed = 0

    def tick(result: FileResult | None = None) -> None:
        if on_tick is not None:
            on_tick(
                Tick(
                    files_total=len(states),
                    files_done=finished,
                    frames_total=frames_total,
                    frames_done=frames_done + sum(live_frames.values()),
                    skipped=skipped,
                    failed=failed,
                    result=result,
                )
            )

    def close_job(i: int, st: _JobState) -> FileResult:
        nonlocal finished, failed, frames_total
        st.closed = True
        job = st.job
        status = "failed" if st.error else "done"
        if status == "done" and st.parts:
            try:
                with collect_warnings() as said:
                    stitch(st.parts, job.src, job.dst, st.offsets)
                st.warnings += said
                write_sidecar(job, frames=st.frames, seconds=round(st.seconds, 3), parts=st.units)
            except Exception as e:  # one bad file never stops the batch
                status, st.error = "failed", _describe(e)
        for p in st.parts:
            with contextlib.suppress(OSError):
                p.unlink(missing_ok=True)
        # the header's frame count was an estimate (a truncated file holds fewer)
        frames_total += st.frames - st.frames_expected
        res = FileResult(
            input=str(job.src),
            output=str(job.dst),
            status=status,
            frames=st.frames,
            seconds=st.seconds,
            duration=st.duration,
            attempts=st.attempts,
            parts=st.units,
            error=st.error,
            warnings=list(dict.fromkeys(st.warnings)),
        )
        results[i] = res
        finished += 1
        if status == "failed":
            failed += 1
            log.info("failed: %s: %s", job.src, st.error)
        return res

    def settle(handle: Any, *, stopping: bool = False) -> None:
        """Take a finished unit's outcome: frames, a retry, an error; close its file when
        all its units are in (when ``stopping``, only a whole file, and no retry)."""
        nonlocal frames_done
        unit, attempt = inflight.pop(handle)
        i = unit.key[0]
        st = states[i]
        live_frames.pop(unit.key, None)
        try:
            out = executor.outcome(handle)
        except KeyboardInterrupt:
            raise
        except BaseException as e:
            if stopping:
                return  # stopped with the batch: "interrupted"
            if not isinstance(e, PERMANENT) and attempt <= retry:
                log.info("retrying %s (%s)", unit.job.src, _describe(e))
                todo.append((unit, attempt + 1))
                return
            st.error = _describe(e)
        else:
            st.frames += int(out["frames"])
            frames_done += int(out["frames"])
            st.seconds += float(out["seconds"])
            st.warnings += out.get("warnings", [])
            if out.get("duration"):
                st.duration = float(out["duration"])
        st.finished_units += 1
        if st.finished_units < st.units or st.closed:
            return
        if not stopping:
            tick(close_job(i, st))
        elif not st.parts:  # no stitching while stopping
            close_job(i, st)

    def stop_units() -> None:
        if isinstance(executor, _Ray):
            executor.stop(list(inflight))
        elif executor is not None:
            executor.stop()

    try:
        _probe_all(list(states.values()))
        frames_total = sum(st.frames_expected for st in states.values())
        if ray:
            threads = max(1, min(8, int(task_cpus)))
            executor = _Ray(ray, task_cpus, threads, workers)
        else:
            threads = _threads_per_worker(workers)
            executor = _Local(workers, threads) if states else None
        capacity = executor.capacity if executor is not None else 1
        slots = executor.slots if executor is not None else 1
        for i, st in states.items():
            todo.extend(_units(i, st, threads, slots, split_min, work_dir))
        tick()
        while todo or inflight:
            while todo and len(inflight) < capacity:
                unit, attempt = todo.popleft()
                st = states[unit.key[0]]
                if st.error is not None:  # another part of this file already failed
                    st.finished_units += 1
                    if st.finished_units == st.units and not st.closed:
                        tick(close_job(unit.key[0], st))
                    continue
                st.attempts = max(st.attempts, attempt)
                inflight[executor.submit(unit)] = (unit, attempt)
            done = executor.wait(list(inflight), timeout=0.25)
            running = {u.key for u, _ in inflight.values()}
            for key, n in executor.drain():
                if key in running:  # a late message from a finished unit is dropped
                    live_frames[key] = n
            for handle in done:
                settle(handle)
            tick()
    except KeyboardInterrupt:
        report.interrupted = True
        log.warning("interrupted: %d unit(s) were running, %d waiting", len(inflight), len(todo))
        stop_units()
        # a file that finished while the others were being stopped is done, not interrupted
        for handle in executor.wait(list(inflight), timeout=0) if inflight else []:
            settle(handle, stopping=True)
        for i, st in states.items():
            if results[i] is None:
                for p in st.parts:
                    with contextlib.suppress(OSError):
                        p.unlink(missing_ok=True)
                results[i] = FileResult(
                    str(st.job.src),
                    str(st.job.dst),
                    "interrupted",
                    attempts=st.attempts,
                    parts=st.units,
                    warnings=list(dict.fromkeys(st.warnings)),
                )
    except BaseException:  # a bug or a failing callback: do not leave workers behind
        stop_units()
        raise
    else:
        if executor is not None:
            executor.close()
    report.files = [r for r in results if r is not None]
    report.wall_seconds = time.perf_counter() - t_start
    return report
