"""Live sinks: the virtual camera (and its absence), atomic recordings, the preview buffer."""

from __future__ import annotations

import glob
import importlib.util
import os
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from blurcam.errors import DeviceUnavailableError, SinkError
from blurcam.live.sinks import (
    MODPROBE_HINT,
    FileSink,
    PreviewSink,
    VirtualCamSink,
    explain_vcam_error,
)
from blurcam.testing import synthetic_frame

HAS_PYVIRTUALCAM = importlib.util.find_spec("pyvirtualcam") is not None


def _loopback_devices() -> list[str]:
    """/dev/video* whose driver is v4l2loopback (sysfs says so)."""
    out = []
    for dev in sorted(glob.glob("/dev/video*")):
        name = Path("/sys/class/video4linux") / Path(dev).name / "name"
        drv = Path("/sys/class/video4linux") / Path(dev).name / "device" / "driver"
        txt = name.read_text() if name.exists() else ""
        if (
            "loopback" in txt.lower()
            or "blurcam" in txt.lower()
            or (drv.exists() and "v4l2loopback" in os.path.realpath(drv))
        ):
            out.append(dev)
    return out


# ---------------------------------------------------------------- virtual camera
@pytest.mark.parametrize(
    "message, needle",
    [
        (
            "'v4l2loopback' backend: No v4l2 loopback device found at /dev/video[0-99]. "
            "Did you run 'modprobe v4l2loopback'?",
            MODPROBE_HINT,
        ),
        ("'v4l2loopback' backend: Device /dev/video9 does not exist.", MODPROBE_HINT),
        (
            "'v4l2loopback' backend: Device /dev/video10 could not be opened: "
            "Device or resource busy",
            "busy",
        ),
        ("'v4l2loopback' backend: /dev/video0 is not a video output device.", "not a v4l2loopback"),
        ("'obs' backend: something new", "cannot start the virtual camera: 'obs' backend"),
    ],
)
def test_vcam_errors_are_one_clear_line(message: str, needle: str) -> None:
    def fail(*args: object) -> None:
        raise RuntimeError(message)

    with pytest.raises(DeviceUnavailableError) as e:
        VirtualCamSink((64, 48), 30.0, device="/dev/video10", open_camera=fail)
    assert needle in str(e.value)
    assert "\n" not in str(e.value)
    assert e.value.exit_code == 6


def test_vcam_sends_frames_to_the_camera() -> None:
    class Cam:
        device = "/dev/video42"

        def __init__(self) -> None:
            self.sent: list[np.ndarray] = []
            self.closed = False

        def send(self, frame: np.ndarray) -> None:
            self.sent.append(frame.copy())

        def close(self) -> None:
            self.closed = True

    cam = Cam()
    with VirtualCamSink((64, 48), 30.0, open_camera=lambda *a: cam) as sink:
        sink.write(synthetic_frame(64, 48), 0.0)
    assert len(cam.sent) == 1 and cam.closed and sink.device == "/dev/video42"


@pytest.mark.skipif(not HAS_PYVIRTUALCAM, reason="pyvirtualcam not installed (blurcam[live])")
@pytest.mark.skipif(bool(_loopback_devices()), reason="this machine has a v4l2loopback device")
def test_real_pyvirtualcam_without_a_device_says_how_to_create_one() -> None:
    with pytest.raises(DeviceUnavailableError, match="modprobe v4l2loopback"):
        VirtualCamSink((64, 48), 30.0)


@pytest.mark.skipif(not HAS_PYVIRTUALCAM, reason="pyvirtualcam not installed (blurcam[live])")
@pytest.mark.skipif(not _loopback_devices(), reason="no v4l2loopback device on this machine")
def test_real_loopback_round_trip() -> None:  # pragma: no cover - needs the kernel module
    dev = _loopback_devices()[0]
    frame = synthetic_frame(320, 240)
    with VirtualCamSink((320, 240), 30.0, device=dev) as sink:
        cap = cv2.VideoCapture(dev)
        got = None
        for _ in range(30):
            sink.write(frame, 0.0)
            ok, img = cap.read()
            if ok:
                got = img
                break
        cap.release()
    assert got is not None and got.shape == frame.shape
    assert np.abs(got.astype(int) - frame).mean() < 8  # YUV round trip


# ------------------------------------------------------------------------ file
def _frames(path: Path) -> list[int]:
    with av.open(str(path)) as c:
        return [int(f.pts) for f in c.decode(c.streams.video[0])]


def test_file_sink_is_atomic_and_keeps_gaps(tmp_path: Path) -> None:
    out = tmp_path / "rec.mp4"
    sink = FileSink(out, (64, 48), 10.0)
    for i in (0, 1, 2, 5, 6):  # frames 3 and 4 were dropped
        sink.write(synthetic_frame(64, 48, cx=0.2 + 0.1 * i), 100.0 + i / 10)
        assert not out.exists(), "the file appears only when complete"
    sink.close()
    pts = _frames(out)
    assert len(pts) == 5
    with av.open(str(out)) as c:
        tb = c.streams.video[0].time_base
    secs = np.array(pts) * float(tb)
    assert np.allclose(secs - secs[0], [0, 0.1, 0.2, 0.5, 0.6], atol=0.01)
    assert not list(tmp_path.glob(".*part*"))


def test_file_sink_abort_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "rec.mp4"
    sink = FileSink(out, (64, 48), 10.0)
    sink.write(synthetic_frame(64, 48), 0.0)
    sink.abort()
    assert not out.exists() and not list(tmp_path.iterdir())


def test_file_sink_keeps_an_existing_file(tmp_path: Path) -> None:
    out = tmp_path / "rec.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(SinkError, match="exists"):
        FileSink(out, (64, 48), 10.0)
    assert out.read_bytes() == b"keep me"
    with pytest.raises(SinkError, match="record to"):
        FileSink(tmp_path / "rec.gif", (64, 48), 10.0)


def test_file_sink_with_odd_size_and_no_frames(tmp_path: Path) -> None:
    """An odd size is kept exactly (H.264 in yuv444p), as every VideoWriter keeps it."""
    out = tmp_path / "rec.mkv"
    with FileSink(out, (65, 49), 15.0) as sink:
        assert sink.size == (65, 49)
        sink.write(synthetic_frame(65, 49), 0.0)
    assert len(_frames(out)) == 1
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.width, cc.height, cc.pix_fmt) == (65, 49, "yuv444p")
    empty = tmp_path / "none.mp4"
    FileSink(empty, (64, 48), 15.0).close()
    assert not empty.exists() and not list(tmp_path.glob(".*part*"))


# --------------------------------------------------------------------- preview
def test_preview_keeps_the_newest_frame_as_jpeg() -> None:
    pv = PreviewSink(max_width=32)
    assert pv.latest(0, timeout=0.01) == (0, None)
    pv.write(synthetic_frame(64, 48), 0.0)
    f = synthetic_frame(64, 48, cx=0.7)
    pv.write(f, 0.1)
    seq, jpg = pv.jpeg(0, timeout=0.01)
    assert seq == 2 and jpg is not None and jpg[:2] == b"\xff\xd8"
    img = cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (24, 32, 3)
    assert pv.latest(2, timeout=0.01)[1] is None  # nothing newer yet
    pv.close()
    assert pv.closed


def test_explain_keeps_one_line() -> None:
    e = explain_vcam_error("line one\nline two", None)
    assert str(e) == "cannot start the virtual camera: line one"


def test_file_sink_behind_leaves_frames_out_instead_of_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from blurcam.live import sinks

    gate = threading.Event()  # the encoder thread waits on it before its first frame: stuck
    monkeypatch.setattr(sinks, "lower_thread_priority", lambda nice: gate.wait())
    out = tmp_path / "rec.mp4"
    sink = FileSink(out, (64, 48), 10.0, queue_size=2)
    for i in range(10):
        sink.write(synthetic_frame(64, 48), i / 10)  # returns at once every time
    assert sink.frames == 2 and sink.dropped == 8
    gate.set()
    sink.close()
    assert len(_frames(out)) == 2
