"""The live runner: drop-stale slots, stats that add up, live controls, quality ladder."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from blurcam.live.control import apply_controls
from blurcam.live.runner import LEVELS, AdaptiveQuality, LatestSlot, LiveRunner
from blurcam.live.sinks import NullSink
from blurcam.live.sources import Frame
from blurcam.settings import EffectSettings, SegmentSettings, Settings
from blurcam.testing import FakeSegmenter, disc_mask, synthetic_frame

W, H = 160, 120


class SynthSource:
    """A stand-in camera: ``n`` synthetic frames at ``fps`` (``pace=False``: as fast as taken)."""

    def __init__(self, n: int, fps: float = 100.0, moving: bool = True, pace: bool = True) -> None:
        self.n, self.fps, self.pace = n, fps, pace
        self.size = (W, H)
        self.status = "ok"
        self.skipped = 0
        self._stop = threading.Event()
        self._frames = [
            synthetic_frame(W, H, cx=0.3 + 0.4 * (i % 20) / 19 if moving else 0.5)
            for i in range(20)
        ]

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.n):
            if self._stop.is_set():
                return
            yield Frame(self._frames[i % 20], time.monotonic(), i)
            if self.pace:
                self._stop.wait(1.0 / self.fps)

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()


class RecordingSink(NullSink):
    """Keeps (index-free) copies of what it got and lets a test act on the n-th frame."""

    name = "record"

    def __init__(self, delay: float = 0.0, on_write: Any = None) -> None:
        super().__init__()
        self.delay = delay
        self.on_write = on_write
        self.out: list[NDArray[np.uint8]] = []
        self.ts: list[float] = []
        self.closed = self.aborted = False

    def write(self, frame: NDArray[np.uint8], ts: float) -> None:
        self.out.append(frame.copy())
        self.ts.append(ts)
        if self.on_write is not None:
            self.on_write(len(self.out))
        if self.delay:
            time.sleep(self.delay)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


def test_latest_slot_keeps_only_the_newest() -> None:
    slot: LatestSlot[int] = LatestSlot()
    assert slot.put(1) is None
    assert slot.put(2) == 1  # the stale one comes back to be counted
    assert slot.depth() == 1 and slot.replaced == 1
    assert slot.get(timeout=0) == 2
    assert slot.get(timeout=0) is None
    slot.put(3)
    slot.close()
    assert not slot.closed  # still holds 3
    assert slot.get() == 3 and slot.closed and slot.get() is None


def test_slow_model_and_slow_sink_never_build_a_backlog() -> None:
    """A model and a sink far slower than the source: frames are dropped, never queued."""
    seg = FakeSegmenter(delay=0.05)  # 20 fps model
    sink = RecordingSink(delay=0.02)  # ~50 fps output, source 200 fps
    src = SynthSource(150, fps=200)
    runner = LiveRunner(src, [sink], Settings(), segmenter=seg, adaptive=False)
    rep = runner.run(tick=0.05)
    assert rep["frames_in"] == 150
    assert rep["frames_in"] == rep["frames_out"] + rep["dropped"]
    assert rep["dropped_stale"] > 0
    # the frame the composite takes is the newest one (or one behind, if the
    # capture thread was mid-put): never an older queued frame
    assert rep["max_queue_age_frames"] <= 1
    assert seg.calls < 150  # the slow model was not fed every frame
    assert sink.closed and not sink.aborted
    assert len(sink.out) == rep["frames_out"]
    ts = np.array(sink.ts)
    assert (np.diff(ts) > 0).all(), "frames written out of order"


def test_stats_add_up_with_model_every_nth_frame() -> None:
    seg = FakeSegmenter()
    src = SynthSource(60, fps=100)
    sink = RecordingSink()
    runner = LiveRunner(src, [sink], segmenter=seg, adaptive=False, level=3)  # every 4th
    rep = runner.run(tick=0.05)
    assert rep["frames_in"] == 60 == rep["frames_out"] + rep["dropped"]
    assert rep["inferences"] <= 60 // LEVELS[3].every + 1
    assert rep["frames_out"] > 0
    assert rep["level"] == 3 and rep["level_share"]["L3"] == 1.0
    lat = rep["latency_ms"]
    assert 0 <= lat["p50_ms"] <= lat["p95_ms"] <= lat["max_ms"]


def test_still_scene_skips_the_model_moving_one_does_not() -> None:
    runs = {}
    for moving in (False, True):
        seg = FakeSegmenter()
        src = SynthSource(40, fps=100, moving=moving)
        runner = LiveRunner(src, [RecordingSink()], segmenter=seg, adaptive=False, level=0)
        rep = runner.run(tick=0.05)
        assert rep["frames_out"] > 0
        assert seg.calls >= rep["inferences"]
        runs[moving] = rep
    # a still camera runs the model on about one frame in three (still_reuse 2) ...
    still = runs[False]
    assert still["still_skipped"] > 0
    assert still["inferences"] <= (still["inferences"] + still["still_skipped"]) // 2
    # ... a moving scene on every frame the segment thread takes
    assert runs[True]["still_skipped"] == 0


def test_never_outputs_an_unblurred_frame_at_start() -> None:
    """Frames that arrive before the first mask are dropped, not passed through."""
    src = SynthSource(20, fps=200, moving=False)
    sink = RecordingSink()
    runner = LiveRunner(src, [sink], segmenter=FakeSegmenter(delay=0.05), adaptive=False)
    rep = runner.run(tick=0.05)
    assert rep["passthrough"] == 0
    frame = synthetic_frame(W, H)
    bg = disc_mask(W, H) == 0
    for out in sink.out:
        assert np.abs(out.astype(int) - frame)[bg].mean() > 3  # background is blurred


def _bg_change(out: NDArray[np.uint8]) -> float:
    frame = synthetic_frame(W, H)
    bg = disc_mask(W, H, r=0.4) == 0  # clear of the soft edge
    return float(np.abs(out.astype(int) - frame)[bg].mean())


def test_controls_change_the_output_mid_stream() -> None:
    src = SynthSource(400, fps=100, moving=False)
    runner: LiveRunner

    def act(n: int) -> None:
        if n == 15:
            apply_controls(runner, {"enabled": False})
        elif n == 30:
            apply_controls(runner, {"enabled": True, "strength": 0.0})
        elif n == 45:
            apply_controls(runner, {"strength": 1.0, "effect": "blur"})
        elif n == 60:
            runner.stop()

    sink = RecordingSink(on_write=act)
    s = Settings(effect=EffectSettings(strength=0.3))
    runner = LiveRunner(src, [sink], s, segmenter=FakeSegmenter(), adaptive=False)
    runner.run(tick=0.05)
    d = [_bg_change(o) for o in sink.out]
    # a change lands within a frame or two (the composite may be mid-frame)
    weak, off, zero, strong = d[2:14], d[18:29], d[34:44], d[49:59]
    assert min(weak) > 2.0
    assert max(off) == 0.0  # switched off: the camera image as is
    assert max(zero) < 1.0  # strength 0: nothing blurred
    assert min(strong) > max(weak)  # stronger blur changes the background more


def test_model_switch_without_restart() -> None:
    """A model change loads in the segment thread; output follows the new model."""
    everyone = np.full((H, W), 255, np.uint8)  # "selfie": the whole frame is a person
    nobody = np.zeros((H, W), np.uint8)  # "landscape": no person at all
    built: list[str] = []

    def factory(s: SegmentSettings, size: tuple[int, int]) -> FakeSegmenter:
        built.append(s.model)
        return FakeSegmenter(mask=everyone if s.model == "selfie" else nobody)

    src = SynthSource(400, fps=100, moving=False)
    runner: LiveRunner

    def act(n: int) -> None:
        if n == 10:
            apply_controls(runner, {"model": "selfie"})
        elif n == 40:
            runner.stop()

    sink = RecordingSink(on_write=act)
    s = Settings(segment=SegmentSettings(model="landscape"), effect=EffectSettings(strength=1.0))
    runner = LiveRunner(src, [sink], s, segmenter_factory=factory, adaptive=False)
    rep = runner.run(tick=0.05)
    assert built == ["landscape", "selfie"]
    d = [_bg_change(o) for o in sink.out]
    assert min(d[:9]) > 2.0  # nobody: everything blurred
    assert max(d[25:40]) < 0.5  # everyone: nothing blurred
    assert rep["frames_in"] == rep["frames_out"] + rep["dropped"]


def test_bad_model_switch_keeps_the_old_model() -> None:
    from blurcam.errors import ModelError

    def factory(s: SegmentSettings, size: tuple[int, int]) -> FakeSegmenter:
        if s.model == "selfie":
            raise ModelError("corrupt model file")
        return FakeSegmenter()

    src = SynthSource(400, fps=100)
    runner: LiveRunner

    def act(n: int) -> None:
        if n == 5:
            apply_controls(runner, {"model": "selfie"})
        elif n == 25:
            runner.stop()

    sink = RecordingSink(on_write=act)
    runner = LiveRunner(src, [sink], segmenter_factory=factory, adaptive=False)
    runner.run(tick=0.05)
    assert len(sink.out) >= 25
    assert runner.model_error is not None and "corrupt" in runner.model_error


def test_error_in_a_sink_aborts_every_sink_and_raises() -> None:
    from blurcam.errors import SinkError

    class Broken(RecordingSink):
        def write(self, frame: NDArray[np.uint8], ts: float) -> None:
            if len(self.out) == 5:
                raise SinkError("disk full")
            super().write(frame, ts)

    good, bad = RecordingSink(), Broken()
    runner = LiveRunner(SynthSource(100, fps=200), [good, bad], segmenter=FakeSegmenter())
    with pytest.raises(SinkError, match="disk full"):
        runner.run(tick=0.05)
    assert good.aborted and bad.aborted and not good.closed


def test_quality_level_sets_mask_resolution() -> None:
    runner = LiveRunner(SynthSource(1), [NullSink()], segmenter=FakeSegmenter(), level=3)
    assert runner.applied.mask.refine_width == LEVELS[3].refine_width
    runner.quality.index = 4
    runner._set_level(runner.quality.level)
    assert runner.applied.mask.refine_width == LEVELS[4].refine_width
    # the user's own settings are untouched by the level
    assert runner.settings.mask.refine_width == Settings().mask.refine_width


def test_adaptive_quality_degrades_then_recovers() -> None:
    q = AdaptiveQuality(fps=30.0, window=0.95, patience=3)  # 30 frames a window
    interval = 1 / 30
    t = 0.0

    def window(latency: float, drops: int = 0) -> None:
        nonlocal t
        for i in range(30):
            t += interval
            q.observe(t, latency, latency * 0.5, drops if i == 0 else 0)

    window(0.2 * interval)
    assert q.index == 0
    window(1.5 * interval)  # missed budget: one level down at once
    window(1.5 * interval)
    assert q.index == 2
    window(0.2 * interval, drops=3)  # drops alone are a miss too
    assert q.index == 3
    for _ in range(3):
        window(0.2 * interval)
    assert q.index == 2  # three clean windows: one level back up
    window(1.5 * interval)  # ...which failed at once: patience doubles
    assert q.index == 3 and q.patience == 6
    for _ in range(5):
        window(0.2 * interval)
    assert q.index == 3
    window(0.2 * interval)
    assert q.index == 2  # the climb starts
    window(0.2 * interval)
    assert q.index == 1 and q.patience == 3  # the step held: one window per level now
    window(0.2 * interval)
    assert q.index == 0
    assert [lv for _, lv in q.changes] == [1, 2, 3, 2, 3, 2, 1, 0]


def test_adaptive_quality_climbs_back_within_seconds_and_never_waits_long() -> None:
    """A load that pushed the ladder to the bottom is left behind within a few seconds
    of latency returning under budget, even after failed climbs (patience is capped)."""
    q = AdaptiveQuality(fps=30.0, window=0.95)  # 30 frames a window
    interval = 1 / 30
    t = 0.0

    def seconds(n: int, latency: float) -> None:
        nonlocal t
        for _ in range(30 * n):
            t += interval
            q.observe(t, latency, latency)

    for _ in range(6):  # a load that comes and goes: every climb fails at first
        seconds(5, 1.5 * interval)
        assert q.index == len(LEVELS) - 1
        seconds(1, 0.2 * interval)
    assert q.patience <= q.max_patience
    seconds(10, 1.5 * interval)
    start = t
    while q.index > 0:
        seconds(1, 0.2 * interval)
        assert t - start < q.max_patience + len(LEVELS), "stuck at a low level"
    fresh = AdaptiveQuality(fps=30.0, window=0.95, start=len(LEVELS) - 1)
    t0 = t
    while fresh.index > 0:
        t += interval
        fresh.observe(t, 0.2 * interval, 0.2 * interval)
    assert t - t0 <= fresh.base_patience + len(LEVELS) - 1 + 0.5  # seconds


def test_every_level_keeps_the_edge_refined_and_the_model_close() -> None:
    for lv in LEVELS:
        assert lv.every <= 3 and lv.refine_width >= 240
    from blurcam.adaptive import apply_level

    s = apply_level(Settings(), LEVELS[-1])
    assert s.mask.refine and s.mask.refine_width == LEVELS[-1].refine_width


def test_adaptive_quality_off_keeps_the_level() -> None:
    q = AdaptiveQuality(fps=30.0, enabled=False, start=1)
    for i in range(100):
        q.observe(i / 30, 1.0, 1.0, 5)
    assert q.index == 1 and not q.changes


def test_model_that_fails_at_start_aborts_the_sinks() -> None:
    from blurcam.errors import ModelError

    def factory(s: SegmentSettings, size: tuple[int, int]) -> FakeSegmenter:
        raise ModelError("model file not found: x.tflite")

    sink = RecordingSink()
    runner = LiveRunner(SynthSource(10), [sink], segmenter_factory=factory)
    with pytest.raises(ModelError):
        runner.run()
    assert sink.aborted and not sink.closed and not sink.out


def test_missed_budget_lowers_quality_and_the_report_says_so() -> None:
    """A sink twice as slow as the frame interval: drops every second -> down the ladder."""
    src = SynthSource(150, fps=50)  # 3 s
    sink = RecordingSink(delay=0.04)
    runner = LiveRunner(src, [sink], segmenter=FakeSegmenter())
    rep = runner.run(tick=0.1)
    assert rep["level"] > 0 and rep["level_changes"] > 0
    assert rep["level_share"]["L0"] < 1.0
    assert rep["level_text"].startswith(f"L{rep['level']}:")
    assert rep["frames_in"] == rep["frames_out"] + rep["dropped"]
