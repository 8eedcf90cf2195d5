"""The live stream runner: capture, mask node and render in three threads.

::

    source --capture--> [seg slot] --segment--> motion + mask nodes -> newest packet
                  \\                                                  |
                   `--> [out slot] --composite--> stream.render(frame, packet) -> sinks

Each thread owns its nodes: the segment thread the motion and mask nodes
(still gate, flow, model, history), the composite thread the effect and
composite nodes (face detection and tracks, layers, buffers). They share only the newest
:class:`~blurcam.nodes.MaskPacket`, which is never written after it is made;
the composite thread fits it to its own frame (:func:`blurcam.nodes.follow`)
unless the packet is of that very frame. Settings changes reach each node
on its own thread, between frames.

Every slot holds at most one frame and a newer frame replaces the waiting one
(counted as dropped), so there is never a backlog: a slow stage costs frames,
not latency. The model runs on every Nth frame (N set by the quality level)
while the composite runs on every frame with the newest mask carried forward.
At the top level the composite waits a bounded time for the mask of its own
frame; lower levels never wait.

:class:`~blurcam.adaptive.AdaptiveQuality` watches latency, busy time and
drops per one-second window and moves along the quality ladder.

Every frame keeps its capture timestamp; :class:`LiveStats` reports fps
in/out, drops and the added latency (capture -> written to every sink)
p50/p95/max, live and at the end. ``frames_in == frames_out + dropped`` once
the runner has stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from ..adaptive import LEVELS, AdaptiveQuality, Level, apply_level, percentile
from ..errors import BlurcamError
from ..frame import U8
from ..nodes import MaskPacket, follow
from ..pipeline import Stream
from ..segment import Segmenter, SegmenterFactory, open_for
from ..settings import SegmentSettings, Settings
from .sinks import LiveSink, lower_thread_priority
from .sources import Frame, LiveSource

__all__ = [
    "LEVELS",
    "AdaptiveQuality",
    "LatestSlot",
    "Level",
    "LiveRunner",
    "LiveStats",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


# ------------------------------------------------------------------- slots
class LatestSlot(Generic[T]):
    """A size-1 queue that keeps only the newest item.

    ``put`` never blocks: it returns the stale item it replaced (or ``None``)
    so the caller can count it as dropped. ``get`` waits for an item; after
    :meth:`close` it still hands out the last one, then ``None``.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.replaced = 0

    def put(self, item: T) -> T | None:
        with self._cond:
            old, self._item = self._item, item
            if old is not None:
                self.replaced += 1
            self._cond.notify_all()
            return old

    def get(self, timeout: float | None = None) -> T | None:
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def depth(self) -> int:
        return 0 if self._item is None else 1

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """True once closed and emptied."""
        return self._closed and self._item is None


# ------------------------------------------------------------------- stats
@dataclass
class LiveStats:
    """Counters and latencies of one run; only the owning thread writes each field."""

    fps_nominal: float = 0.0
    frames_in: int = 0  # capture thread
    dropped_stale: int = 0  # capture thread: replaced in the output slot
    dropped_warmup: int = 0  # composite thread: no mask yet
    frames_out: int = 0  # composite thread
    inferences: int = 0  # segment thread
    still_skipped: int = 0  # segment thread: model frames whose image had not moved
    seg_skipped: int = 0  # capture thread: model frames replaced before the model took them
    passthrough: int = 0  # composite thread: written unprocessed (effect off)
    max_lag: int = 0  # composite thread: newest captured index - written index
    max_age: int = 0  # composite thread: frames newer than the one it took, when it took it
    latency: list[float] = field(default_factory=list)  # seconds, per written frame
    busy: list[float] = field(default_factory=list)  # composite thread seconds per frame
    level_frames: dict[int, int] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0
    source_skipped: int = 0

    @property
    def dropped(self) -> int:
        return self.dropped_stale + self.dropped_warmup

    def summary(self, since: int = 0) -> dict[str, float]:
        """p50/p95/max latency in ms of frames from index ``since`` of ``latency``."""
        lat = self.latency[since:]
        return {
            "p50_ms": percentile(lat, 50) * 1e3,
            "p95_ms": percentile(lat, 95) * 1e3,
            "max_ms": (max(lat) if lat else 0.0) * 1e3,
        }

    def report(self, level: Level, levels: Sequence[Level]) -> dict[str, Any]:
        """Everything worth printing at exit, as plain data (the CLI formats it)."""
        elapsed = max(1e-9, (self.ended or time.monotonic()) - self.started)
        n = len(self.latency)
        half = n // 2
        total = max(1, sum(self.level_frames.values()))
        return {
            "seconds": elapsed,
            "fps_nominal": self.fps_nominal,
            "fps_in": self.frames_in / elapsed,
            "fps_out": self.frames_out / elapsed,
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "dropped": self.dropped,
            "dropped_stale": self.dropped_stale,
            "dropped_warmup": self.dropped_warmup,
            "source_skipped": self.source_skipped,
            "inferences": self.inferences,
            "still_skipped": self.still_skipped,
            "passthrough": self.passthrough,
            "latency_ms": self.summary(),
            "latency_p95_first_half_ms": percentile(self.latency[:half], 95) * 1e3,
            "latency_p95_second_half_ms": percentile(self.latency[half:], 95) * 1e3,
            "busy_p95_ms": percentile(self.busy, 95) * 1e3,
            "max_lag_frames": self.max_lag,
            "max_queue_age_frames": self.max_age,
            "level": level.index,
            "level_text": level.describe(),
            "level_share": {
                f"L{lv.index}": self.level_frames.get(lv.index, 0) / total for lv in levels
            },
        }


# ---------------------------------------------------------------- model slot
class _ModelSlot:
    """The stream's segmenter, swappable between frames by the segment thread.

    The runner owns it (so the mask node never closes or rebuilds a model
    itself). A model change is requested from any thread
    and carried out on the next call; if the new model fails to load, the old
    one keeps running and ``error`` says why.
    """

    def __init__(self, factory: SegmenterFactory, settings: SegmentSettings) -> None:
        self._factory = factory
        self._settings = settings
        self._pending: SegmentSettings | None = None
        self._inner: Segmenter | None = None
        self._size: tuple[int, int] | None = None
        self.error: str | None = None

    @property
    def name(self) -> str:
        return self._inner.name if self._inner is not None else self._settings.model

    @property
    def input_size(self) -> tuple[int, int]:
        return self._inner.input_size if self._inner is not None else (0, 0)

    def load(self, size: tuple[int, int]) -> None:
        """Build the model now (raises ``ModelError`` at start, not mid-stream)."""
        self._size = size
        if self._inner is None:
            self._inner = self._factory(self._settings, size)

    def request(self, settings: SegmentSettings) -> None:
        if settings != self._settings:
            self._pending = settings

    def __call__(self, frame: U8) -> NDArray[np.float32]:
        pending, self._pending = self._pending, None
        if pending is not None:
            self._swap(pending, (frame.shape[1], frame.shape[0]))
        if self._inner is None:
            self.load((frame.shape[1], frame.shape[0]))
        assert self._inner is not None
        return self._inner(frame)

    def _swap(self, settings: SegmentSettings, size: tuple[int, int]) -> None:
        try:
            new = self._factory(settings, size)
        except BlurcamError as e:
            self.error = f"model {settings.model!r} not loaded: {e}"
            log.error("%s; keeping %s", self.error, self.name)
            return
        old, self._inner, self._settings = self._inner, new, settings
        self.error = None
        if old is not None:
            old.close()
        log.info("model switched to %s", new.name)

    def reset(self) -> None:
        if self._inner is not None:
            self._inner.reset()

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
        self._inner = None


# ------------------------------------------------------------------ runner
@dataclass(frozen=True, slots=True)
class _Item:
    frame: Frame
    model: bool  # this frame was sent to the model


class LiveRunner:
    """Runs one live stream: ``source`` -> blur -> every sink, until stopped.

    ``settings`` are the user's; the quality level only lowers the mask
    working width on top of them. Change them live with :meth:`update`
    (thread-safe, applied between frames). ``segmenter`` replaces the model
    (tests pass a slow fake one); otherwise ``segmenter_factory`` builds it.

    Raises (from :meth:`run`):
        ModelError: the model cannot be loaded at start.
        SinkError, SourceError: an output or input failed mid-stream.
    """

    def __init__(
        self,
        source: LiveSource,
        sinks: Sequence[LiveSink],
        settings: Settings | None = None,
        *,
        segmenter: Segmenter | None = None,
        segmenter_factory: SegmenterFactory = open_for,
        adaptive: bool = True,
        level: int = 0,
        levels: Sequence[Level] = LEVELS,
        sync_wait: float = 0.5,
        background_nice: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.sinks = list(sinks)
        self._settings = settings or Settings()
        self.enabled = True
        if segmenter is not None:
            fixed = segmenter
            self._model = _ModelSlot(lambda s, size: fixed, self._settings.segment)
        else:
            self._model = _ModelSlot(segmenter_factory, self._settings.segment)
        self.quality = AdaptiveQuality(source.fps, levels=levels, start=level, enabled=adaptive)
        # what the nodes run with (the user's settings at the quality level); each
        # thread hands it to its own nodes between frames
        self.applied = apply_level(self._settings, self.quality.level)
        self.stream = Stream(self.applied, segmenter=self._model)  # type: ignore[arg-type]
        self.stats = LiveStats(fps_nominal=source.fps)
        self.sync_wait = sync_wait  # x frame interval the top level waits for its mask
        self.background_nice = background_nice  # the model thread yields to capture/composite
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._seg_slot: LatestSlot[Frame] = LatestSlot()
        self._out_slot: LatestSlot[_Item] = LatestSlot()
        self._mask_cond = threading.Condition()
        self._mask_index = -1  # index of the newest frame the model has seen
        self._packet: tuple[int, MaskPacket] | None = None  # newest packet, its frame index
        self._fresh_after = -1  # after re-enable: pass through until a mask newer than this
        self._newest = -1
        self._errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._running = 0  # threads not yet finished (guarded by _lock)

    # ------------------------------------------------------------ controls
    @property
    def settings(self) -> Settings:
        """The user's settings (without the quality level's overrides)."""
        return self._settings

    @property
    def level(self) -> Level:
        return self.quality.level

    @property
    def model_error(self) -> str | None:
        return self._model.error

    def update(self, settings: Settings | None = None, *, enabled: bool | None = None) -> None:
        """Swap settings and/or turn the effect on/off; applied from the next frame.

        A model change loads in the segment thread while the old mask keeps
        being used, so the output never stalls.
        """
        with self._lock:
            if settings is not None:
                self._model.request(settings.segment)
                self._settings = settings
                self.applied = apply_level(settings, self.quality.level)
            if enabled is not None and enabled != self.enabled:
                if enabled:
                    self._fresh_after = self._newest
                self.enabled = enabled

    def _set_level(self, level: Level) -> None:
        with self._lock:
            self.applied = apply_level(self._settings, level)

    # ------------------------------------------------------------- threads
    def _capture(self) -> None:
        last_model = -(10**9)
        stats = self.stats
        try:
            for frame in self.source:
                if self._stop.is_set():
                    break
                stats.frames_in += 1
                self._newest = frame.index
                to_model = self.enabled and frame.index - last_model >= self.quality.level.every
                if to_model:
                    last_model = frame.index
                    if self._seg_slot.put(frame) is not None:
                        stats.seg_skipped += 1
                if self._out_slot.put(_Item(frame, to_model)) is not None:
                    stats.dropped_stale += 1
        finally:
            self._seg_slot.close()
            self._out_slot.close()

    def _segment(self) -> None:
        # a late mask costs a little quality; a late composite costs a frame
        lower_thread_priority(self.background_nice)
        while True:
            frame = self._seg_slot.get(timeout=0.1)
            if frame is None:
                if self._seg_slot.closed or self._stop.is_set():
                    return
                continue
            motion, node = self.stream.motion, self.stream.mask
            if node.settings is not self.applied:
                motion.update(self.applied)
                node.update(self.applied)
            # a still scene keeps its mask: no model run (CPU a laptop keeps for the call)
            packet = node.run(frame.image, motion.run(frame.image))
            if packet.inferred:
                self.stats.inferences += 1
            else:
                self.stats.still_skipped += 1
            with self._mask_cond:
                self._packet = (frame.index, packet)
                self._mask_index = max(self._mask_index, frame.index)
                self._mask_cond.notify_all()

    def _wait_mask(self, index: int, timeout: float) -> bool:
        deadline = self._clock() + timeout
        with self._mask_cond:
            while self._mask_index < index:
                left = deadline - self._clock()
                if left <= 0 or self._stop.is_set() or self._seg_slot.closed:
                    return self._mask_index >= index
                self._mask_cond.wait(min(left, 0.05))
            return True

    def _composite(self) -> None:
        stats = self.stats
        interval = 1.0 / self.source.fps
        dropped_seen = 0
        while True:
            item = self._out_slot.get(timeout=0.1)
            if item is None:
                if self._out_slot.closed:
                    return
                continue
            frame = item.frame
            stats.max_age = max(stats.max_age, self._newest - frame.index)
            t0 = self._clock()
            level = self.quality.level
            out: U8 | None
            if not self.enabled:
                out = frame.image
                stats.passthrough += 1
            elif self._mask_index < 0:
                # start-up: the first mask is on its way; never show an unblurred frame
                if not self._wait_mask(0, 1.0):
                    stats.dropped_warmup += 1
                    continue
                out = self._render(frame)
            elif self._mask_index <= self._fresh_after:
                out = frame.image  # just switched on: the fresh mask is on its way
                stats.passthrough += 1
            else:
                if item.model and level.sync:
                    left = frame.ts + self.sync_wait * interval - t0
                    if left > 0:
                        self._wait_mask(frame.index, left)
                out = self._render(frame)
            for sink in self.sinks:
                sink.write(out, frame.ts)
            t1 = self._clock()
            stats.frames_out += 1
            stats.latency.append(t1 - frame.ts)
            stats.busy.append(t1 - t0)
            stats.level_frames[level.index] = stats.level_frames.get(level.index, 0) + 1
            stats.max_lag = max(stats.max_lag, self._newest - frame.index)
            dropped_now = stats.dropped + self.source.skipped
            new = self.quality.observe(t1, t1 - frame.ts, t1 - t0, dropped_now - dropped_seen)
            dropped_seen = dropped_now
            if new is not None:
                self._set_level(new)

    def _render(self, frame: Frame) -> U8:
        """Effect and composite of ``frame`` with the newest mask (composite thread).

        The packet of this very frame is used as it is; an older one is
        fitted to this frame (:func:`blurcam.nodes.follow`).
        """
        target = self.applied
        if self.stream.composite.settings is not target:
            self.stream.effect.update(target)
            self.stream.composite.update(target)
        with self._mask_cond:
            assert self._packet is not None
            index, packet = self._packet
        if index != frame.index:
            packet = follow(packet, frame.image, target)
        return self.stream.render(frame.image, packet)

    def _guard(self, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as e:
                self._errors.append(e)
                self._stop.set()
                self.source.stop()
                self._seg_slot.close()
                self._out_slot.close()
            finally:
                with self._lock:  # the last thread out says so (no is_alive() race)
                    self._running -= 1
                    if self._running == 0:
                        self._done.set()

        return run

    # ----------------------------------------------------------------- run
    def start(self) -> None:
        """Load the model and start the threads (``run`` does this for you)."""
        self._model.load(self.source.size)
        # warm-up on a blank frame: allocates the stream's buffers for this size
        # (the threads then never reallocate them) and pays the model's first-run cost
        w, h = self.source.size
        self.stream.process(np.zeros((h, w, 3), np.uint8))
        self.stats.started = self._clock()
        for name, target in (
            ("capture", self._capture),
            ("segment", self._segment),
            ("composite", self._composite),
        ):
            t = threading.Thread(target=self._guard(target), name=f"blurcam-{name}", daemon=True)
            self._threads.append(t)
        self._running = len(self._threads)
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        """Ask every thread to finish (the frame in the output slot is still written)."""
        self._stop.set()
        self.source.stop()

    def snapshot(self) -> dict[str, Any]:
        """Live state for the status line and the control API."""
        st = self.stats
        return {
            "frames_in": st.frames_in,
            "frames_out": st.frames_out,
            "dropped": st.dropped,
            "inferences": st.inferences,
            "still_skipped": st.still_skipped,
            "level": self.quality.index,
            "level_text": self.quality.level.describe(),
            "status": getattr(self.source, "status", "ok"),
            "enabled": self.enabled,
            "model": self._model.name,
            "model_error": self._model.error,
            "effect": self._settings.effect.kind,
            "strength": self._settings.effect.strength,
        }

    def ticks(self, every: float = 1.0) -> Iterator[dict[str, Any]]:
        """Run until the stream ends, yielding a live summary every ``every`` seconds."""
        last_n = last_out = last_in = 0
        last_t = self._clock()
        while not self._done.wait(every):
            now = self._clock()
            st = self.stats
            dt = max(1e-9, now - last_t)
            snap = self.snapshot()
            snap["fps_in"] = (st.frames_in - last_in) / dt
            snap["fps_out"] = (st.frames_out - last_out) / dt
            snap.update(st.summary(since=last_n))
            last_n, last_in, last_out, last_t = len(st.latency), st.frames_in, st.frames_out, now
            yield snap

    def run(
        self,
        *,
        duration: float | None = None,
        on_tick: Callable[[dict[str, Any]], None] | None = None,
        tick: float = 1.0,
    ) -> dict[str, Any]:
        """Run until the source ends, ``duration`` seconds pass, or Ctrl-C; returns the report.

        Ctrl-C (``KeyboardInterrupt``; the CLI delivers SIGTERM the same way)
        stops cleanly: sinks are closed, so a recording is finished and kept.
        A second one anywhere in that finish aborts every sink (no
        half-written file) and propagates. On an error every sink is aborted
        and the error raised.
        """
        try:
            self.start()
            interrupted = False
            try:
                for snap in self.ticks(tick):
                    if on_tick is not None:
                        on_tick(snap)
                    if duration is not None and self._clock() - self.stats.started >= duration:
                        self.stop()
            except KeyboardInterrupt:
                interrupted = True
            self.stop()
            return self._finish(interrupted)
        except BaseException:  # a model that fails to load, an error, a second Ctrl-C
            self.stop()
            self._seg_slot.close()
            self._out_slot.close()
            self._abort_sinks()
            raise
        finally:
            self._close_model()

    def _finish(self, interrupted: bool) -> dict[str, Any]:
        """Join the threads, close (keep) every sink and build the report."""
        for t in self._threads:
            while t.is_alive():
                t.join(timeout=0.2)
                if t.name == "blurcam-capture" and t.is_alive() and self._stop.is_set():
                    # a camera stuck in read(): give it a moment, then leave it behind
                    t.join(timeout=2.0)
                    break
        self.stats.ended = self._clock()
        self.stats.source_skipped = int(getattr(self.source, "skipped", 0))
        leftover = self._out_slot.get(timeout=0)
        if leftover is not None:  # only when the composite died: count it
            self.stats.dropped_stale += 1
        if self._errors:
            raise self._errors[0]
        for sink in self.sinks:
            sink.close()
        report = self.stats.report(self.quality.level, self.quality.levels)
        report["interrupted"] = interrupted
        report["level_changes"] = len(self.quality.changes)
        report["sink_dropped"] = {s.name: int(getattr(s, "dropped", 0)) for s in self.sinks}
        return report

    def _abort_sinks(self) -> None:
        for sink in self.sinks:
            try:
                sink.abort()
            except Exception as e:  # keep aborting the others
                log.warning("aborting %s: %s", sink.name, e)

    def _close_model(self) -> None:
        self.source.close()
        self._model.close()
