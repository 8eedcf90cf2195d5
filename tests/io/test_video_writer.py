"""VideoWriter: atomic close/abort, odd sizes, timestamps, audio, B-frames, encode thread."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import numpy as np
import pytest

from blurcam.errors import SinkError
from blurcam.io import VideoReader, VideoWriter
from blurcam.io.video_reader import DecodedFrame
from blurcam.testing import synthetic_frame
from media import make_video, stream_summary


def _decoded(path: Path) -> list[tuple[np.ndarray, float]]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [(f.to_ndarray(format="bgr24"), float(f.pts * s.time_base)) for f in c.decode(s)]


def _write(writer: VideoWriter, n: int, size: tuple[int, int] = (64, 48)) -> None:
    for i in range(n):
        writer.write(synthetic_frame(*size, cx=0.2 + 0.05 * i), i)


def test_writer_close_writes_a_playable_file(tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    with VideoWriter(out, (64, 48), 12) as w:
        _write(w, 6)
        assert not out.exists(), "the file appears only when complete"
    frames = _decoded(out)
    assert [round(t * 12) for _, t in frames] == list(range(6))
    assert np.abs(frames[0][0].astype(int) - synthetic_frame(64, 48, cx=0.2)).mean() < 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4"]


def test_writer_abort_leaves_nothing_and_keeps_an_existing_output(tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    out.write_bytes(b"previous")
    w = VideoWriter(out, (64, 48), 12, queue_size=2)
    _write(w, 4)
    w.abort()
    w.abort()  # idempotent
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4"]
    with pytest.raises(SinkError, match="aborted"):
        w.write(synthetic_frame(64, 48))
    # an exception in the block aborts too
    with pytest.raises(ZeroDivisionError), VideoWriter(out, (64, 48), 12) as w:
        _write(w, 2)
        raise ZeroDivisionError
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4"]
    assert not [t for t in threading.enumerate() if t.name == "blurcam-encode"]


def test_writer_without_frames_keeps_nothing(tmp_path: Path) -> None:
    VideoWriter(tmp_path / "o.mp4", (64, 48), 12).close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".webm", ".avi"])
def test_writer_keeps_odd_sizes_exactly(tmp_path: Path, ext: str) -> None:
    """H.264 switches to yuv444p for an odd size; VP9 and MPEG-4 take it in yuv420p."""
    out = tmp_path / f"o{ext}"
    with VideoWriter(out, (91, 161), 12) as w:
        _write(w, 3, (91, 161))
    s = stream_summary(out)
    assert s["size"] == (91, 161) and s["frames"] == 3
    with av.open(str(out)) as c:
        fmt = c.streams.video[0].codec_context.pix_fmt
    assert fmt == ("yuv444p" if ext in (".mp4", ".mkv") else "yuv420p")


def test_writer_makes_timestamps_increase(tmp_path: Path) -> None:
    """Missing or repeated timestamps become the next tick; gaps are kept."""
    out = tmp_path / "o.mkv"
    with VideoWriter(out, (64, 48), 10) as w:
        for pts in (0, 1, 1, None, 7):
            w.write(synthetic_frame(64, 48), pts)
    assert [round(t * 10) for _, t in _decoded(out)] == [0, 1, 2, 3, 7]


def test_writer_scales_a_frame_of_another_size(tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    with VideoWriter(out, (64, 48), 12) as w:
        w.write(synthetic_frame(64, 48), 0)
        w.write(synthetic_frame(30, 20), 1)
    assert {f.shape for f, _ in _decoded(out)} == {(48, 64, 3)}


@pytest.mark.parametrize("ext, codec", [(".mp4", "aac"), (".webm", "opus")])
def test_writer_keeps_audio(tmp_path: Path, ext: str, codec: str) -> None:
    """AAC is copied packet for packet into MP4, re-encoded (Opus) for WebM."""
    src = make_video(tmp_path / "in.mp4", frames=12)
    out = tmp_path / f"o{ext}"
    with (
        VideoReader(src, audio=True) as r,
        VideoWriter(out, r.size, r.rate, time_base=r.time_base, audio=r.audio_stream) as w,
    ):
        for item in r.items():
            if isinstance(item, DecodedFrame):
                w.write(item.image, item.pts)
            else:
                w.write_audio(item)
    s, before = stream_summary(out), stream_summary(src)
    assert s["frames"] == 12 and s["audio"] == codec
    if codec == "aac":
        assert s["audio_packets"] == before["audio_packets"]


def test_writer_without_bframes_writes_in_presentation_order(tmp_path: Path) -> None:
    """``bframes=False`` (split parts): decode order = presentation order, so parts concatenate."""
    out = tmp_path / "o.mp4"
    with VideoWriter(out, (64, 48), 12, preset="medium", bframes=False) as w:
        _write(w, 12)
    with av.open(str(out)) as c:
        pts = [p.pts for p in c.demux(video=0) if p.pts is not None]
    assert pts == sorted(pts)


def test_writer_copies_packets_of_a_template(tmp_path: Path) -> None:
    """Stream copy (the stitch): packets in, the same video out; going back in time is refused."""
    src = make_video(tmp_path / "in.mp4", frames=8, audio=False)
    out = tmp_path / "copy.mp4"
    with VideoReader(src) as r, VideoWriter(out, template=r.video_stream) as w:
        packets = list(r.packets())
        for p in packets:
            w.write_packet(p)
        with pytest.raises(SinkError, match="back in time"):
            w.write_packet(packets[0])
    assert w.frames == 8 and stream_summary(out)["frames"] == 8


def test_writer_thread_drops_frames_when_behind_unless_blocking(tmp_path: Path) -> None:
    gate = threading.Event()  # the encode thread waits on it: an encoder that is behind
    out = tmp_path / "drop.mp4"
    w = VideoWriter(out, (64, 48), 12, queue_size=2, block=False, thread_setup=gate.wait)
    accepted = [w.write(synthetic_frame(64, 48), i) for i in range(6)]
    assert accepted == [True, True, False, False, False, False]
    assert (w.frames, w.dropped) == (2, 4)
    gate.set()
    w.close()
    assert len(_decoded(out)) == 2
    # blocking: every frame waits for room and is kept
    with VideoWriter(tmp_path / "all.mp4", (64, 48), 12, queue_size=2) as w:
        _write(w, 6)
    assert len(_decoded(tmp_path / "all.mp4")) == 6


def test_writer_refuses_unknown_extensions(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match="unknown video extension"):
        VideoWriter(tmp_path / "o.gif", (64, 48), 12)
    assert list(tmp_path.iterdir()) == []
