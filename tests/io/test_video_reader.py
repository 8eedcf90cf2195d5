"""VideoReader: upright frames, timestamps, time ranges, decode-ahead, audio, bad data."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from blurcam.errors import SourceError
from blurcam.io import VideoReader
from blurcam.io.video_reader import DecodedFrame
from blurcam.split import plan_segments
from blurcam.testing import synthetic_frame
from media import encode_frames, make_video


def _stored(path: Path) -> list[tuple[np.ndarray, int]]:
    """(stored pixels, pts) of every frame, straight from PyAV (no rotation applied)."""
    with av.open(str(path)) as c:
        return [(f.to_ndarray(format="bgr24"), int(f.pts)) for f in c.decode(video=0)]


def test_reader_frames_and_timestamps(tmp_path: Path) -> None:
    """Variable frame rate: every frame keeps its own presentation time."""
    tb = Fraction(1, 1000)
    pts = [0, 40, 50, 200, 230, 500]
    images = [synthetic_frame(64, 48, cx=0.2 + 0.05 * i) for i in range(len(pts))]
    src = encode_frames(tmp_path / "vfr.mkv", images, pts, time_base=tb)
    with VideoReader(src) as r:
        assert r.size == (64, 48) and r.rotation == 0
        frames = list(r)
    assert [f.time for f in frames] == pytest.approx([p / 1000 for p in pts], abs=1e-3)
    assert all(f.pts == round(f.time / f.time_base) for f in frames)
    assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in frames)
    stored = _stored(src)
    assert all(np.array_equal(f.image, s) for f, (s, _) in zip(frames, stored, strict=True))


@pytest.mark.parametrize("rotation, turns", [(90, 1), (-90, 3), (180, 2)])
def test_reader_turns_rotated_odd_frames_upright(tmp_path: Path, rotation: int, turns: int) -> None:
    """Display matrix honoured (counter-clockwise degrees), odd sizes kept exactly."""
    src = make_video(tmp_path / "r.mp4", frames=4, size=(161, 91), codec="mpeg4", rotation=rotation)
    stored = _stored(src)
    with VideoReader(src) as r:
        assert r.rotation == rotation % 360
        assert r.size == ((91, 161) if turns % 2 else (161, 91))
        assert (r.info.width, r.info.height) == r.size
        frames = list(r)
    assert len(frames) == 4
    for f, (raw, _) in zip(frames, stored, strict=True):
        assert np.array_equal(f.image, np.rot90(raw, turns))


def test_reader_time_ranges_are_disjoint_and_complete(tmp_path: Path) -> None:
    """Consecutive [start, end) ranges give every frame exactly once, pixels unchanged.

    Cuts on keyframes (as split parts use) and off them (decoded from the
    keyframe before, then skipped) both hold.
    """
    src = make_video(tmp_path / "k.mp4", frames=48, fps=12, codec="mpeg4")  # keyframe/s
    whole = _stored(src)
    all_pts = [p for _, p in whole]
    keyframe_cuts = [s.start for s in plan_segments(src, 4)[1:]]
    assert len(keyframe_cuts) == 3
    other_cuts = [all_pts[5], all_pts[17], all_pts[18], all_pts[40]]
    for cuts in (keyframe_cuts, other_cuts):
        bounds: list[int | None] = [None, *cuts, None]
        got: list[DecodedFrame] = []
        for a, b in itertools.pairwise(bounds):
            with VideoReader(src, start=a, end=b, ahead=2) as r:
                part = list(r)
            assert part, (a, b)
            assert all((a is None or f.pts >= a) and (b is None or f.pts < b) for f in part)
            got += part
        assert [f.pts for f in got] == all_pts  # complete, in order, no frame twice
        assert all(np.array_equal(f.image, s) for f, (s, _) in zip(got, whole, strict=True))


def test_reader_empty_range_is_a_source_error(tmp_path: Path) -> None:
    src = make_video(tmp_path / "k.mp4", frames=12, fps=12, codec="mpeg4", audio=False)
    last = _stored(src)[-1][1]
    with (
        pytest.raises(SourceError, match="no video frame could be decoded in the range"),
        VideoReader(src, start=last + 1) as r,
    ):
        list(r)


def test_reader_decode_ahead_gives_the_same_frames_and_stops(tmp_path: Path) -> None:
    src = make_video(tmp_path / "v.mp4", frames=20)
    with VideoReader(src) as r:
        plain = [(f.pts, f.image) for f in r]
    with VideoReader(src, ahead=3) as r:
        ahead = [(f.pts, f.image) for f in r]
    assert [p for p, _ in plain] == [p for p, _ in ahead]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(plain, ahead, strict=True))
    # leaving early: close() stops the decode thread before closing the file
    with VideoReader(src, ahead=2) as r:
        for _ in zip(range(3), r, strict=False):
            pass
    assert not [t for t in threading.enumerate() if t.name == "blurcam-decode"]


def test_reader_is_read_once(tmp_path: Path) -> None:
    src = make_video(tmp_path / "v.mp4", frames=3, audio=False)
    with VideoReader(src) as r:
        assert len(list(r)) == 3
        with pytest.raises(SourceError, match="read once"):
            list(r)


def test_reader_hands_on_audio_packets_in_file_order(tmp_path: Path) -> None:
    src = make_video(tmp_path / "v.mp4", frames=12)
    with av.open(str(src)) as c:
        want = sum(1 for p in c.demux(audio=0) if p.size)
    with VideoReader(src, audio=True, ahead=2) as r:
        assert r.audio_stream is not None
        items = list(r.items())
    audio = [i for i in items if not isinstance(i, DecodedFrame)]
    assert len(audio) == want and sum(isinstance(i, DecodedFrame) for i in items) == 12
    # without audio=True nothing but frames comes, and no audio stream is offered
    with VideoReader(src) as r:
        assert r.audio_stream is None
        assert all(isinstance(i, DecodedFrame) for i in r.items())


def test_reader_keeps_what_decodes_of_a_truncated_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    full = make_video(tmp_path / "full.mkv", frames=30)
    half = tmp_path / "half.mkv"
    half.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, logger="blurcam"), VideoReader(half, ahead=2) as r:
        n = sum(1 for _ in r)
    assert 0 < n < 30
    assert any("truncated" in rec.getMessage() for rec in caplog.records)


def test_reader_extent_and_keyframes(tmp_path: Path) -> None:
    src = make_video(tmp_path / "k.mp4", frames=24, fps=12, codec="mpeg4")
    with VideoReader(src) as r:
        extent = r.extent()
        assert extent is not None and extent[1] * r.time_base == pytest.approx(2.0, abs=0.1)
        one_s = round(1 / r.time_base)
        assert r.keyframe_at_or_before(one_s + 5) == one_s


def _bomb(path: Path, side: int = 16000) -> Path:
    """A 66 kB Matroska file declaring ``side`` x ``side`` raw grey frames (256 MP at 16000):
    a 256x256 clip whose PixelWidth/PixelHeight elements are rewritten."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("rawvideo", rate=1)
        vs.width, vs.height, vs.pix_fmt = 256, 256, "gray"
        f = av.VideoFrame.from_ndarray(np.zeros((256, 256), np.uint8), format="gray")
        f.pts, f.time_base = 0, Fraction(1, 1)
        for p in (*vs.encode(f), *vs.encode(None)):
            out.mux(p)
    data = bytearray(path.read_bytes())
    for element in (0xB0, 0xBA):  # PixelWidth, PixelHeight: 2-byte value 256
        at = data.index(bytes([element, 0x82, 0x01, 0x00]))
        data[at + 2 : at + 4] = side.to_bytes(2, "big")
    path.write_bytes(bytes(data))
    return path


def _refused(what: Callable[[], object]) -> pytest.ExceptionInfo[SourceError]:
    with pytest.raises(SourceError) as e:
        what()
    assert "BLURCAM_MAX_PIXELS" in str(e.value), e.value
    return e


def test_a_video_above_the_pixel_limit_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15, item 4 for video: the declared frame size is checked against
    $BLURCAM_MAX_PIXELS before a frame is decoded, by every reader of video files."""
    from blurcam.io.background import BackgroundSource
    from blurcam.io.video import probe_video
    from blurcam.live.sources import FileSource

    src = make_video(tmp_path / "in.mp4", frames=3, size=(160, 96))  # 15 360 pixels
    monkeypatch.setenv("BLURCAM_MAX_PIXELS", "10000")
    decoded: list[object] = []
    monkeypatch.setattr(av.VideoFrame, "to_ndarray", lambda *a, **k: decoded.append(a))
    e = _refused(lambda: VideoReader(src))
    assert f"{src}: 160x96 is 0 megapixels, above the limit of 0.01" in str(e.value)
    _refused(lambda: probe_video(src))
    _refused(lambda: BackgroundSource(src))
    _refused(lambda: FileSource(src))
    assert decoded == []
    monkeypatch.setenv("BLURCAM_MAX_PIXELS", "15360")  # exactly the limit: fine
    with VideoReader(src) as r:
        assert r.path == src


def test_a_crafted_video_bomb_is_refused(tmp_path: Path) -> None:
    """66 kB declaring 16000x16000 (256 MP, default limit 100 MP): refused, with nothing
    allocated for its frames (FFmpeg's own probe gets the limit too)."""
    bomb = _bomb(tmp_path / "bomb.mkv")
    assert bomb.stat().st_size < 100_000
    _refused(lambda: VideoReader(bomb))
