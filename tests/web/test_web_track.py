"""BlurTrack on its own: timestamps, drop-stale, live settings, errors, clean stop."""

from __future__ import annotations

import asyncio
import fractions
import threading
from typing import Any

import numpy as np
import pytest

pytest.importorskip("aiortc")

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from blurcam.errors import ModelError, SettingsError
from blurcam.settings import MaskSettings, Settings
from blurcam.testing import FakeSegmenter, synthetic_frame
from blurcam.web import BlurTrack

# The test sources repeat one picture, which the still-image gate would not send
# to the model again; these tests need every frame to pay for the (slow) model.
EVERY_FRAME = Settings(mask=MaskSettings(still_reuse=0))

TB = fractions.Fraction(1, 90000)


class Source(MediaStreamTrack):
    """Yields ``n`` frames as fast as asked (or every ``interval`` s), then ends."""

    kind = "video"

    def __init__(self, n: int = 1000, interval: float = 0.0) -> None:
        super().__init__()
        self.n, self.interval, self.i = n, interval, 0
        self.img = synthetic_frame(160, 120)

    async def recv(self) -> av.VideoFrame:
        if self.i >= self.n:
            raise MediaStreamError
        await asyncio.sleep(self.interval)
        f = av.VideoFrame.from_ndarray(self.img, format="bgr24")
        f.pts, f.time_base = 3000 * self.i, TB
        self.i += 1
        return f


def track_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("blurcam-track")]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_frames_are_processed_and_keep_timestamps() -> None:
    async def main() -> None:
        src = Source(n=5, interval=0.01)
        t = BlurTrack(src, segmenter=FakeSegmenter(), strength=1.0)
        outs = []
        with pytest.raises(MediaStreamError):
            while True:
                outs.append(await t.recv())
        assert outs, "no frame"
        for f in outs:
            assert f.time_base == TB and f.pts % 3000 == 0
            assert (f.width, f.height) == (160, 120)
        assert [f.pts for f in outs] == sorted({f.pts for f in outs})
        img = outs[-1].to_ndarray(format="bgr24")
        assert not np.array_equal(img, src.img)  # background changed
        assert t.readyState == "ended"
        await t.wait_closed()

    run(main())


def test_slow_model_drops_stale_frames_instead_of_queueing() -> None:
    async def main() -> None:
        src = Source(interval=0.005)  # ~200 fps camera
        t = BlurTrack(
            src, settings=EVERY_FRAME, segmenter=FakeSegmenter(delay=0.05), adaptive=False
        )
        pts = [(await t.recv()).pts for _ in range(6)]
        t.stop()
        await t.wait_closed()
        assert t.stats.dropped > 10
        # consecutive outputs skip ahead: always the newest frame, not the next queued one
        assert np.median(np.diff(pts)) > 3000
        # in flight at any time: one queued, one in the worker, one finished
        assert t.stats.frames_in - t.stats.frames_out - t.stats.dropped <= 3

    run(main())


def test_settings_change_live_and_on_off() -> None:
    async def main() -> None:
        src = Source(interval=0.005)
        t = BlurTrack(src, segmenter=FakeSegmenter(), strength=0.2)
        await t.recv()
        assert t.update(strength=0.9).effect.strength == 0.9
        for _ in range(3):  # frames already in flight keep the old settings
            await t.recv()
        assert t._stream.settings.effect.strength == 0.9
        t.enabled = False
        for _ in range(3):
            f = await t.recv()
        assert np.array_equal(f.to_ndarray(format="bgr24"), src.img)  # passed through
        with pytest.raises(SettingsError):
            t.update(strength=3)
        with pytest.raises(SettingsError, match="unknown option"):
            t.update(colour="red")
        t.stop()
        await t.wait_closed()

    run(main())


def test_model_error_passes_frames_through_and_reports() -> None:
    def broken(s: Any, size: Any) -> Any:
        raise ModelError("model file not found: nowhere.tflite")

    async def main() -> None:
        src = Source(interval=0.005)
        t = BlurTrack(src, segmenter_factory=broken)
        f = await t.recv()
        assert np.array_equal(f.to_ndarray(format="bgr24"), src.img)
        assert t.stats.error is not None and "not found" in t.stats.error
        t.stop()
        await t.wait_closed()

    run(main())


def test_stop_leaves_no_thread() -> None:
    before = len(track_threads())

    async def main() -> None:
        tracks = [BlurTrack(Source(interval=0.01), segmenter=FakeSegmenter()) for _ in range(3)]
        for t in tracks:
            await t.recv()
        assert len(track_threads()) >= before + 3
        for t in tracks:
            t.stop()
        await asyncio.gather(*(t.wait_closed() for t in tracks))
        with pytest.raises(MediaStreamError):
            await tracks[0].recv()

    run(main())
    assert len(track_threads()) == before


def test_keep_point_follows_frame_size_and_keeps_region_sharp() -> None:
    from blurcam.web.track import has_effect_field

    if not has_effect_field("keep_point"):
        pytest.skip("EffectSettings has no keep_point yet")

    async def main() -> None:
        src = Source(interval=0.005)
        t = BlurTrack(src, segmenter=FakeSegmenter(), strength=1.0)
        t.keep_at((0.1, 0.2))
        for _ in range(3):
            out = (await t.recv()).to_ndarray(format="bgr24")
        assert t._stream.settings.effect.keep_point == (16, 24)  # 0.1*159, 0.2*119
        # inside the kept square the background is the camera's, outside it is blurred
        assert np.array_equal(out[20:28, 12:20], src.img[20:28, 12:20])
        assert not np.array_equal(out[20:28, 130:138], src.img[20:28, 130:138])
        t.update(strength=0.5)  # other changes keep the point
        for _ in range(3):
            await t.recv()
        assert t._stream.settings.effect.keep_point == (16, 24)
        t.keep_at(None)
        for _ in range(3):
            await t.recv()
        assert t._stream.settings.effect.keep_point is None
        with pytest.raises(SettingsError):
            t.keep_at((1.5, 0.0))
        t.stop()
        await t.wait_closed()

    run(main())


def test_background_image_replaces_background() -> None:
    from blurcam.pipeline import Stream

    if not hasattr(Stream, "set_background"):
        pytest.skip("Stream.set_background not available yet")

    async def main() -> None:
        src = Source(interval=0.005)
        t = BlurTrack(src, segmenter=FakeSegmenter(), effect="replace")
        green = np.zeros((50, 70, 3), np.uint8)
        green[..., 1] = 255
        t.set_background(green)
        for _ in range(3):
            out = (await t.recv()).to_ndarray(format="bgr24")
        assert t.stats.error is None
        corner = out[:10, :10].reshape(-1, 3).mean(axis=0)
        assert corner[1] > 200 and corner[0] < 60 and corner[2] < 60
        t.stop()
        await t.wait_closed()

    run(main())


def test_stop_wakes_a_waiting_recv() -> None:
    async def main() -> None:
        t = BlurTrack(Source(interval=0.01), segmenter=FakeSegmenter(delay=0.2))
        waiting = asyncio.ensure_future(t.recv())
        await asyncio.sleep(0.05)  # a frame is in the worker, another queued
        t.stop()
        t.stop()  # idempotent
        with pytest.raises(MediaStreamError):
            await asyncio.wait_for(waiting, 5.0)
        await t.wait_closed()

    run(main())


def test_over_budget_moves_down_the_quality_ladder() -> None:
    """The live runner's policy (blurcam.adaptive): a window over budget lowers the level,
    and lower levels run the model on fewer frames."""

    async def main() -> dict[str, int]:
        seg = FakeSegmenter(delay=0.04)  # 40 ms a frame against a 33 ms camera
        t = BlurTrack(Source(interval=1 / 30), settings=EVERY_FRAME, segmenter=seg)
        while t.stats.level == 0 and t.stats.frames_out < 150:
            await t.recv()
        for _ in range(20):  # frames at the lower level
            await t.recv()
        every = t.stats.model_every
        processed = t.stats.frames_out
        t.stop()
        await t.wait_closed()
        fixed = BlurTrack(
            Source(interval=1 / 30), segmenter=FakeSegmenter(delay=0.04), adaptive=False
        )
        for _ in range(6):
            await fixed.recv()
        assert fixed.stats.model_every == 1
        fixed.stop()
        await fixed.wait_closed()
        return {"every": every, "calls": seg.calls, "out": processed}

    r = run(main())
    assert r["every"] >= 2, r
    assert r["calls"] < r["out"], r  # some frames reused the previous mask
