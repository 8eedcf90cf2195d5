"""A WebRTC video track that blurs the background of another track.

:class:`BlurTrack` follows aiortc's track shape (one ``async recv()``), so it
drops into any aiortc app::

    pc.addTrack(BlurTrack(incoming_video_track, strength=0.8))

Why it looks the way it does:

- The model runs in a one-thread executor owned by the track, never on the
  event loop, so ICE/RTCP/DTLS keep running while a frame is processed; one
  thread per track also keeps each segmenter on a single thread.
- aiortc queues decoded frames without bound. A reader task drains the source
  continuously; a frame goes to the worker at once when it is idle, otherwise
  it waits in a one-frame slot where a newer frame replaces it. Finished
  frames wait in another one-frame slot for the sender's ``recv``. So the
  model works while the sender encodes the previous frame, and when
  processing is slower than the camera stale frames are dropped (counted in
  :attr:`BlurTrack.stats`) instead of queued: latency stays at about one
  processing time rather than growing.
- Output frames keep the source frame's ``pts`` and ``time_base``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from numpy.typing import NDArray

from ..adaptive import AdaptiveQuality, apply_level
from ..errors import BlurcamError, SettingsError
from ..frame import as_bgr
from ..nodes import MaskPacket, follow
from ..pipeline import Stream
from ..segment import Segmenter, SegmenterFactory
from ..settings import EffectSettings, Settings, build_settings

__all__ = ["BlurTrack", "TrackStats", "has_effect_field"]

log = logging.getLogger(__name__)


@dataclass
class TrackStats:
    """Running figures of one track, for pages and tests (EMA = smoothed).

    ``process_ms``: model + effect time per frame (executor thread).
    ``latency_ms``: from the source frame's arrival to the processed frame
    being handed to the sender (waiting + processing).
    """

    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    process_ms: float = 0.0
    latency_ms: float = 0.0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    model_every: int = 1  # the model runs on every Nth frame (the quality level's)
    level: int = 0  # quality level (blurcam.adaptive.LEVELS; 0 = best)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "dropped": self.dropped,
            "process_ms": round(self.process_ms, 2),
            "latency_ms": round(self.latency_ms, 2),
            "fps": round(self.fps, 2),
            "width": self.width,
            "height": self.height,
            "model_every": self.model_every,
            "level": self.level,
            "error": self.error,
        }


def has_effect_field(name: str) -> bool:
    """Whether :class:`EffectSettings` has ``name`` (features land at different times)."""
    return any(f.name == name for f in fields(EffectSettings))


def _ema(old: float, new: float, k: float = 0.1) -> float:
    return new if old == 0.0 else old + k * (new - old)


class BlurTrack(MediaStreamTrack):
    """Video track yielding background-blurred frames of ``source``.

    Args:
        source: any aiortc video track (a remote track, a player, ...).
        settings: full :class:`~blurcam.settings.Settings`; the keyword
            options by name (``effect``, ``strength``, ``model``, ...: any of
            :data:`blurcam.settings.OPTIONS`) are applied on top.
        segmenter: a ready segmenter (tests inject a fake one); owned by the
            caller. Without it one is built from ``settings.segment`` on the
            first frame, through ``segmenter_factory`` when given.
        enabled: False passes frames through untouched (the page's on/off).
        adaptive: move along the quality ladder of :mod:`blurcam.adaptive`
            (model every Nth frame, a smaller mask) while frames cost more
            than the camera's frame interval allows (``stats.level``), the
            same policy as ``blurcam cam``.

    Live changes: assign :attr:`settings` (or call :meth:`update`) at any
    time; the new settings take effect on the next frame. The track never
    raises for a processing error (a live call must not die): it logs it,
    passes frames through and shows the message in :attr:`stats`.

    Raises:
        SettingsError: an option is out of range (at construction).
    """

    kind = "video"

    def __init__(
        self,
        source: MediaStreamTrack,
        *,
        settings: Settings | None = None,
        segmenter: Segmenter | None = None,
        segmenter_factory: SegmenterFactory | None = None,
        enabled: bool = True,
        adaptive: bool = True,
        **options: Any,
    ) -> None:
        super().__init__()
        s = build_settings(settings, **options)
        kw: dict[str, Any] = (
            {} if segmenter_factory is None else {"segmenter_factory": segmenter_factory}
        )
        self._stream = Stream(s, segmenter, **kw)
        self._source = source
        self._settings = s
        self._applied = s  # the user's settings the stream has (worker thread only)
        self.quality = AdaptiveQuality(30.0, enabled=adaptive)
        self._level = self.quality.level  # the level the stream has (worker thread only)
        self._packet: MaskPacket | None = None  # the last model packet (worker thread only)
        self._dropped_seen = 0
        self._hooks: list[Callable[[Stream], None]] = []
        self._keep: tuple[float, float] | None = None
        self._keep_managed = False
        self.enabled = enabled
        self.stats = TrackStats()
        self._interval = 1 / 30  # EMA of the source's frame interval (s)
        self._last_in = 0.0
        self._warmup = 2  # frames left out of the figures (model load, first run)
        self._n = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blurcam-track")
        self._queued: tuple[Any, float] | None = None  # newest frame waiting for the worker
        self._done: tuple[Any, float] | None = None  # newest processed frame, not yet sent
        self._busy = False
        self._last_offered = 0.0  # arrival time of the newest frame offered to recv
        self._stopped = False
        self._ready = asyncio.Event()
        self._ended = False
        self._reader: asyncio.Task[None] | None = None
        self._closed: asyncio.Future[None] | None = None
        self._out_times: deque[float] = deque()

    # -------------------------------------------------------------- settings
    @property
    def settings(self) -> Settings:
        """The settings in force from the next frame on."""
        return self._settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        # one attribute write: the worker compares it with what it applied last
        self._settings = value

    def update(self, **options: Any) -> Settings:
        """Apply options by name (:data:`blurcam.settings.OPTIONS`) live; returns the settings.

        Raises:
            SettingsError: an unknown option, or a value out of range (nothing changes).
        """
        self.settings = build_settings(self._settings, **options)
        return self._settings

    def call_in_worker(self, fn: Callable[[Stream], None]) -> None:
        """Run ``fn(stream)`` on the worker thread before the next frame.

        For stream-level changes that are not plain settings (a background
        image, a keep-sharp point): they happen between frames, on the thread
        that owns the stream, so no lock is needed.
        """
        self._hooks.append(fn)

    def keep_at(self, point: tuple[float, float] | None) -> None:
        """Keep the region at ``point`` sharp (click-to-keep); None stops.

        ``point`` is ``(x, y)`` as fractions 0..1 of the frame, so it stays
        right when the sender changes resolution mid-call (browsers do);
        it becomes ``EffectSettings.keep_point`` in pixels on every frame.

        Raises:
            SettingsError: a coordinate outside [0, 1], or no keep support.
        """
        if not has_effect_field("keep_point"):
            raise SettingsError("keeping a region sharp is not available in this version")
        if point is not None:
            x, y = float(point[0]), float(point[1])
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise SettingsError(f"keep point must be fractions in [0, 1], got {point}")
            point = (x, y)
        self._keep = point
        self._keep_managed = True

    def set_background(self, image: NDArray[np.uint8] | None) -> None:
        """Use ``image`` (uint8 HxWx3 BGR) for the ``replace`` effect; None drops it.

        The image is handed to the stream on its own thread, between frames.

        Raises:
            SettingsError: this version has no background replacement.
        """
        if not hasattr(self._stream, "set_background"):
            raise SettingsError("background replacement is not available in this version")
        self.call_in_worker(lambda stream: stream.set_background(image))

    # ------------------------------------------------------------ aiortc API
    async def recv(self) -> av.VideoFrame:
        """The newest processed frame not yet returned (older ones are dropped)."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._reader is None:
            self._reader = asyncio.ensure_future(self._read_loop())
        while self._done is None:
            stopped = self.readyState != "live"
            if stopped or (self._ended and not self._busy and self._queued is None):
                self.stop()
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        (frame, t_in), self._done = self._done, None
        assert isinstance(frame, av.VideoFrame)
        now = time.perf_counter()
        st = self.stats
        st.frames_out += 1
        st.latency_ms = _ema(st.latency_ms, (now - t_in) * 1000.0)
        self._out_times.append(now)
        while now - self._out_times[0] > 1.0:
            self._out_times.popleft()
        if len(self._out_times) > 1:
            span = self._out_times[-1] - self._out_times[0]
            st.fps = (len(self._out_times) - 1) / span if span > 0 else 0.0
        return frame

    def stop(self) -> None:
        """Stop the track: the reader task ends and the worker thread exits.

        The source track is not stopped (it belongs to the caller). Await
        :meth:`wait_closed` to be sure the worker thread has gone.
        """
        if self._stopped:
            return
        self._stopped = True
        super().stop()
        if self._reader is not None:
            self._reader.cancel()
        self._ended = True
        self._ready.set()
        # Close the stream on its own thread, after any frame in progress.
        fut = self._executor.submit(self._stream.close)
        self._executor.shutdown(wait=False)
        try:
            self._closed = asyncio.wrap_future(fut)
        except RuntimeError:  # no running loop (stopped from sync code)
            self._closed = None

    async def wait_closed(self) -> None:
        """Wait until the worker thread has finished (after :meth:`stop`)."""
        self.stop()
        if self._closed is not None:
            try:
                await self._closed
            except Exception:  # closing a broken segmenter must not block shutdown
                log.debug("error while closing the stream", exc_info=True)
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)

    # -------------------------------------------------------------- internals
    async def _read_loop(self) -> None:
        """Drain the source; each frame goes to the worker, or waits as the newest.

        Processing starts as soon as a frame arrives (not when the sender asks),
        so the model works while the sender encodes the previous frame.
        """
        try:
            while True:
                f = await self._source.recv()
                self.stats.frames_in += 1
                item = (f, time.perf_counter())
                if self._last_in:
                    self._interval = _ema(self._interval, min(1.0, item[1] - self._last_in))
                self._last_in = item[1]
                if not self.enabled:
                    self._deliver(item)
                elif self._busy:
                    if self._queued is not None:
                        self.stats.dropped += 1
                    self._queued = item
                else:
                    self._start(item)
        except MediaStreamError:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:  # a broken source ends this track, not the loop
            log.warning("video source failed", exc_info=True)
        self._ended = True
        self._ready.set()

    def _start(self, item: tuple[Any, float]) -> None:
        loop = asyncio.get_running_loop()
        try:
            fut = loop.run_in_executor(self._executor, self._work, item[0])
        except RuntimeError:  # executor shut down: the track is stopping
            return
        self._busy = True
        fut.add_done_callback(lambda f: self._finished(f, item[1]))

    def _finished(self, fut: asyncio.Future[Any], t_in: float) -> None:
        self._busy = False
        if fut.cancelled() or fut.exception() is not None or self.readyState != "live":
            self._ready.set()
            return
        self._deliver((fut.result(), t_in))
        if self._queued is not None:
            item, self._queued = self._queued, None
            if self.enabled:
                self._start(item)
            else:  # switched off meanwhile
                self._deliver(item)

    def _deliver(self, item: tuple[Any, float]) -> None:
        """Offer a finished frame to ``recv``; never one older than the last offered.

        (A frame processed while the track was switched off finishes after
        newer passed-through frames: it is dropped, so output stays in order.)
        """
        if item[1] <= self._last_offered:
            self.stats.dropped += 1
            return
        if self._done is not None:  # the sender did not take the previous one
            self.stats.dropped += 1
        self._last_offered = item[1]
        self._done = item
        self._ready.set()

    def _sync_keep(self, w: int, h: int) -> None:
        """Worker thread: the fractional keep point -> ``keep_point`` in pixels."""
        k = self._keep
        px = None if k is None else (round(k[0] * (w - 1)), round(k[1] * (h - 1)))
        s = self._stream.settings
        if getattr(s.effect, "keep_point", None) != px:
            eff = replace(s.effect, keep_point=px, keep_box=None)
            self._stream.update(replace(s, effect=eff))

    @property
    def adaptive(self) -> bool:
        """Whether the quality level adapts to the time frames cost."""
        return self.quality.enabled

    @adaptive.setter
    def adaptive(self, value: bool) -> None:
        self.quality.enabled = value

    def _work(self, frame: av.VideoFrame) -> av.VideoFrame:
        """Worker thread: apply pending changes, process, keep the timestamps."""
        wanted, level = self._settings, self.quality.level
        if wanted is not self._applied or level is not self._level:
            if wanted.segment != self._applied.segment:
                self._warmup = 2  # a new model loads: its first frames are not typical
            self._stream.update(apply_level(wanted, level))
            self._applied, self._level = wanted, level
        if self._keep_managed:
            self._sync_keep(frame.width, frame.height)
        while self._hooks:
            hook = self._hooks.pop(0)
            try:
                hook(self._stream)
            except Exception as e:
                log.warning("stream change failed: %s", e)
                self.stats.error = str(e)
        self._n += 1
        model = self._packet is None or self._n % level.every == 0
        t0 = time.perf_counter()
        try:
            img = as_bgr(frame.to_ndarray(format="bgr24"))
            if model or self._packet is None:
                packet = self._packet = self._stream.mask_packet(img)
            else:  # the model's last mask, fitted to this frame
                packet = follow(self._packet, img, self._stream.settings)
            out = self._stream.render(img, packet, alone=True)
            new = av.VideoFrame.from_ndarray(out, format="bgr24")
        except BlurcamError as e:
            if self.stats.error != str(e):
                log.warning("passing frames through: %s", e)
            self.stats.error = str(e)
            return frame
        except Exception as e:  # a bug, but a live call must go on
            if self.stats.error != repr(e):
                log.exception("frame processing failed; passing frames through")
            self.stats.error = repr(e)
            return frame
        self.stats.error = None
        new.pts = frame.pts
        new.time_base = frame.time_base
        st = self.stats
        st.width, st.height = frame.width, frame.height
        now = time.perf_counter()
        ms = (now - t0) * 1000.0
        if self._warmup:  # model loading and first-run costs would skew the figures
            self._warmup -= 1
            return new
        st.process_ms = _ema(st.process_ms, ms)
        self._observe(now, ms / 1000.0)
        return new

    def _observe(self, now: float, seconds: float) -> None:
        """Hand this frame's cost to the quality policy (the budget: the camera's interval)."""
        q = self.quality
        q.interval = self._interval
        drops, self._dropped_seen = self.stats.dropped - self._dropped_seen, self.stats.dropped
        q.observe(now, seconds, seconds, drops)
        self.stats.level, self.stats.model_every = q.index, q.level.every
