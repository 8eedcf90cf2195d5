"""Live sources: files at their native rate, loops, folders, and a camera that comes and goes."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from blurcam.errors import DeviceUnavailableError, SourceError
from blurcam.live.sources import CameraSource, FileSource, open_source
from blurcam.testing import synthetic_frame
from media import make_video


def test_video_plays_at_native_rate_with_due_timestamps(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=12, fps=12, audio=False)
    src = FileSource(clip, speed=4.0)  # 4x so the test is quick; stamps scale with it
    frames = list(src)
    assert src.fps == pytest.approx(12.0)
    assert len(frames) + src.skipped == 12
    # stamps are the due times: whole media-frame steps apart (no decode jitter in them)
    steps = np.diff([f.ts for f in frames]) * 12 * 4
    assert np.allclose(steps, np.round(steps), atol=1e-6) and (np.round(steps) >= 1).all()
    assert [f.index for f in frames] == list(range(len(frames)))


def test_loop_and_resize(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=6, fps=30, audio=False)
    src = FileSource(clip, loop=True, width=64, height=48, speed=8.0)
    got = []
    for f in src:
        got.append(f)
        if len(got) == 15:
            src.stop()
    assert src.loops >= 2
    assert all(f.image.shape == (48, 64, 3) for f in got)
    ts = [f.ts for f in got]
    assert all(b > a for a, b in itertools.pairwise(ts)), "time goes on across loops"
    assert [f.index for f in got] == list(range(15))


def test_image_folder_at_given_fps(tmp_path: Path) -> None:
    for i in range(3):
        size = (80, 60) if i != 1 else (40, 30)  # a smaller one is resized to the first
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), synthetic_frame(*size))
    src = FileSource(tmp_path, fps=50)
    frames = list(src)
    assert len(frames) + src.skipped == 3
    assert all(f.image.shape == (60, 80, 3) for f in frames)


@pytest.mark.parametrize(
    "make, needle",
    [
        (lambda d: d / "missing.mp4", "not found"),
        (lambda d: (d / "t.mp4").write_text("not a video") and d / "t.mp4", "cannot read"),
        (lambda d: (d / "x.txt").write_text("hello") and d / "x.txt", "not a video"),
    ],
)
def test_bad_file_sources(tmp_path: Path, make: Any, needle: str) -> None:
    with pytest.raises(SourceError, match=needle):
        open_source(str(make(tmp_path)))


class FakeCapture:
    """A camera that works, is unplugged (read fails / empty frames), then comes back."""

    def __init__(self, script: list[str], size: tuple[int, int] = (64, 48)) -> None:
        self.script = script  # per read: "ok", "fail", "empty"
        self.size = size
        self.released = False

    def isOpened(self) -> bool:
        return True

    def read(self) -> tuple[bool, Any]:
        step = self.script.pop(0) if self.script else "ok"
        if step == "fail":
            return False, None
        if step == "empty":
            return True, np.empty((0, 0, 3), np.uint8)
        return True, synthetic_frame(*self.size)

    def set(self, prop: int, value: float) -> bool:
        return True

    def get(self, prop: int) -> float:
        return 30.0

    def release(self) -> None:
        self.released = True


class Unplugged(FakeCapture):
    def isOpened(self) -> bool:
        return False


def test_camera_not_there_is_a_device_error() -> None:
    with pytest.raises(DeviceUnavailableError, match="cannot open camera 3") as e:
        CameraSource(3, open_capture=lambda d: Unplugged([]))
    assert e.value.exit_code == 6


def test_camera_unplugged_retries_with_backoff_and_resumes() -> None:
    opens: list[int] = []
    statuses: list[str] = []
    # first device: 3 good frames, then it fails; the next two opens find nothing,
    # the third finds a camera again, at another resolution
    devices: list[FakeCapture] = [
        FakeCapture(["ok", "ok", "ok", "fail"]),
        Unplugged([]),
        FakeCapture(["empty"]),
        FakeCapture([], size=(128, 96)),
    ]

    def open_capture(dev: int | str) -> FakeCapture:
        opens.append(1)
        return devices.pop(0)

    src = CameraSource(0, open_capture=open_capture, backoff=0.001, max_backoff=0.004)
    got = []
    for f in src:
        got.append(f)
        statuses.append(src.status)
        if len(got) == 8:
            src.stop()
    assert len(opens) == 4  # three reconnect attempts after the first open
    assert src.reconnects == 1 and src.skipped >= 2
    assert src.status == "ok"
    assert all(f.image.shape == (48, 64, 3) for f in got), "size stays that of the stream"
    assert [f.index for f in got] == list(range(8))


def test_camera_gives_up_when_asked() -> None:
    devices: list[FakeCapture] = [FakeCapture(["ok", "fail"])]
    src = CameraSource(
        0,
        open_capture=lambda d: devices.pop(0) if devices else Unplugged([]),
        backoff=0.001,
        max_backoff=0.002,
        give_up_after=0.05,
    )
    with pytest.raises(DeviceUnavailableError, match="gave no frame"):
        list(src)
    assert src.status == "camera lost"


def test_camera_status_says_it_is_retrying() -> None:
    seen: list[str] = []
    src: CameraSource

    def open_capture(dev: int | str) -> FakeCapture:
        if not seen:  # the first open, before src exists
            seen.append("open")
            return FakeCapture(["ok", "ok", "fail"])
        seen.append(src.status)
        return Unplugged([]) if len(seen) < 4 else FakeCapture([])

    src = CameraSource(0, open_capture=open_capture, backoff=0.001, max_backoff=0.002)
    for f in src:
        if f.index == 3:
            break
    assert any(s.startswith("camera lost, retry") for s in seen[1:])
    assert src.status == "ok"
