"""Atomic outputs and the small video helpers, without going through the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from blurcam.errors import SinkError, SourceError
from blurcam.io import atomic_output, check_output_path, read_image, remove_leftovers, write_image
from blurcam.io.atomic import PARTS_PREFIX, STALE_AFTER, owner_tag
from blurcam.io.video import frame_rotation, iter_frames, probe_video, transcode, upright
from blurcam.testing import synthetic_frame
from media import make_video


def test_atomic_output_success_replaces(tmp_path: Path) -> None:
    out = tmp_path / "a.bin"
    out.write_bytes(b"old")
    out.chmod(0o640)
    with atomic_output(out) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".bin" and tmp != out
        tmp.write_bytes(b"new")
        assert out.read_bytes() == b"old"  # not visible before success
    assert out.read_bytes() == b"new"
    assert out.stat().st_mode & 0o777 == 0o640  # mode of the replaced file kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_atomic_output_failure_removes_temp(tmp_path: Path, exc: BaseException) -> None:
    out = tmp_path / "a.bin"
    out.write_bytes(b"old")
    with pytest.raises(type(exc)), atomic_output(out) as tmp:
        tmp.write_bytes(b"half")
        raise exc
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_atomic_output_oserror_is_sink_error(tmp_path: Path) -> None:
    out = tmp_path / "a.bin"
    with pytest.raises(SinkError, match="No space"), atomic_output(out) as tmp:
        tmp.write_bytes(b"x")
        raise OSError(28, os.strerror(28))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SinkError, match="cannot write in"), atomic_output(tmp_path / "no" / "x"):
        pass


def test_check_output_path(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    src.write_bytes(b"x")
    with pytest.raises(SinkError, match="is the input"):
        check_output_path(tmp_path / "." / "in.png", inputs=(src,), force=True)
    with pytest.raises(SinkError, match="exists"):
        check_output_path(src)
    with pytest.raises(SinkError, match="folder"):
        check_output_path(tmp_path)
    with pytest.raises(SinkError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "o.png")
    check_output_path(tmp_path / "o.png")


def test_image_roundtrip_and_errors(tmp_path: Path) -> None:
    img = synthetic_frame(33, 17)
    write_image(tmp_path / "a.png", img)
    assert np.array_equal(read_image(tmp_path / "a.png"), img)
    with pytest.raises(SinkError, match="unknown image extension"):
        write_image(tmp_path / "a.xyz", img)
    with pytest.raises(SourceError, match="not a file"):
        read_image(tmp_path)


def test_upright_rotations() -> None:
    img = np.arange(6, dtype=np.uint8).reshape(2, 3, 1).repeat(3, axis=2)
    assert upright(img, 0) is img
    assert np.array_equal(upright(img, 90), np.rot90(img, 1))  # counter-clockwise
    assert np.array_equal(upright(img, 180), np.rot90(img, 2))
    assert np.array_equal(upright(img, 270), np.rot90(img, 3))


class _F:
    def __init__(self, r: object) -> None:
        self.rotation = r


@pytest.mark.parametrize(
    "r, want", [(0, 0), (90, 90), (-90, 270), (180, 180), (-180, 180), (45, 0), (None, 0)]
)
def test_frame_rotation(r: object, want: int) -> None:
    assert frame_rotation(_F(r)) == want


def test_iter_frames_timestamps_and_probe(tmp_path: Path) -> None:
    src = make_video(tmp_path / "v.mp4", frames=6, fps=12, audio=False)
    got = list(iter_frames(src))
    assert len(got) == 6
    assert [round(ts * 12) for _, ts in got] == list(range(6))
    info = probe_video(src)
    assert (info.width, info.height, info.rotation, info.has_audio) == (160, 96, 0, False)


def test_transcode_process_error_is_not_wrapped(tmp_path: Path) -> None:
    """A bug in the processing function keeps its own type (and traceback); no output."""
    src = make_video(tmp_path / "v.mp4", frames=6, audio=False)

    def bad(frame: np.ndarray) -> np.ndarray:
        raise ZeroDivisionError("bug")

    with pytest.raises(ZeroDivisionError):
        transcode(src, tmp_path / "o.mp4", bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_transcode_size_change_mid_stream(tmp_path: Path) -> None:
    """A stream whose frames change size (e.g. a resolution switch) is scaled to the first."""
    src = tmp_path / "sw.mkv"
    with av.open(str(src), "w") as out:
        vs = out.add_stream("libvpx-vp9", rate=10)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        for i in range(4):
            vf = av.VideoFrame.from_ndarray(synthetic_frame(64, 48), format="bgr24")
            vf.pts, vf.time_base = i, Fraction(1, 10)
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    calls: list[tuple[int, ...]] = []

    def shrink_later(f: np.ndarray) -> np.ndarray:
        calls.append(f.shape)
        return f if len(calls) < 3 else f[:20, :30].copy()

    assert transcode(src, tmp_path / "o.mp4", shrink_later) == 4
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert {(f.width, f.height) for f in c.decode(video=0)} == {(64, 48)}


def _dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_temporaries_name_their_owner(tmp_path: Path) -> None:
    """``.NAME.PID@HOST.XXXX.part.EXT``: what the next run reads to know whose it is."""
    with atomic_output(tmp_path / "out.mp4") as tmp:
        assert tmp.name.startswith(f".out.{owner_tag()}.") and tmp.name.endswith(".part.mp4")
        assert owner_tag() == f"{os.getpid()}@{socket.gethostname().split('.')[0]}"


def test_remove_leftovers_takes_only_what_a_gone_owner_left(tmp_path: Path) -> None:
    me, dead = owner_tag(), owner_tag().replace(str(os.getpid()), str(_dead_pid()))
    dead_file = tmp_path / f".out.{dead}.abc_12.part.mp4"
    dead_parts = tmp_path / f"{PARTS_PREFIX}{dead}.k9x"
    live_file = tmp_path / f".out.{me}.def34.part.mp4"  # this process: a concurrent run
    remote = tmp_path / f".out.{os.getpid()}@elsewhere.gh56.part.mp4"  # another machine's
    stale_remote = tmp_path / ".rec.1@elsewhere.ij78.part.mkv"
    foreign = [tmp_path / ".out.part.mp4", tmp_path / "out.mp4", tmp_path / ".x.12@h.part"]
    dead_parts.mkdir()
    (dead_parts / "part-000.mp4").write_bytes(b"x")
    for p in (dead_file, live_file, remote, stale_remote, *foreign):
        p.write_bytes(b"x")
    day_and_more = time.time() - STALE_AFTER - 60
    os.utime(stale_remote, (day_and_more, day_and_more))

    removed = remove_leftovers(tmp_path)

    assert sorted(removed) == sorted([dead_file, dead_parts, stale_remote])
    assert not dead_file.exists() and not dead_parts.exists() and not stale_remote.exists()
    assert live_file.exists() and remote.exists() and all(p.exists() for p in foreign)
    assert remove_leftovers(tmp_path / "missing") == []
