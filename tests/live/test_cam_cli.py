"""``blurcam cam`` end to end on a synthetic clip: file sink, errors, and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
from test_sinks import HAS_PYVIRTUALCAM, _loopback_devices

from blurcam.cli.app import main
from media import make_video


def run(*args: object) -> int:
    return main([str(a) for a in args])


def _count(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(c.streams.video[0]))


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_video(tmp_path / "clip.mp4", frames=24, fps=24, size=(160, 96), audio=False)


def test_cam_records_a_clip_and_reports(
    tmp_path: Path, clip: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out, rep = tmp_path / "out.mp4", tmp_path / "r.json"
    code = run("cam", "--source", clip, "--sink", "file", out, "--stats", "--stats-json", rep)
    err = capfd.readouterr().err
    assert code == 0, err
    r = json.loads(rep.read_text())
    assert r["frames_in"] + r["source_skipped"] == 24
    assert r["frames_in"] == r["frames_out"] + r["dropped"]
    assert _count(out) == r["frames_out"] - r["sink_dropped"]["file"] > 0
    assert "latency" in err and "quality" in err
    assert not list(tmp_path.glob(".*part*"))


def test_cam_option_errors(tmp_path: Path, clip: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert run("cam", "--source", clip, "--sink", "file") == 2
    assert run("cam", "--source", clip, "--sink", "tv") == 2
    assert run("cam", "--source", tmp_path / "nope.mp4", "--sink", "null") == 4
    err = capfd.readouterr().err
    assert "needs a PATH" in err and "Traceback" not in err


def test_missing_camera_is_exit_6(capfd: pytest.CaptureFixture[str]) -> None:
    assert run("cam", "--source", "/dev/video63", "--sink", "null") == 6
    err = capfd.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "cannot open camera" in lines[0], err  # no OpenCV warnings


@pytest.mark.skipif(bool(_loopback_devices()), reason="this machine has a v4l2loopback device")
def test_no_virtual_camera_is_exit_6_and_writes_nothing(
    tmp_path: Path, clip: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.mp4"
    code = run("cam", "--source", clip, "--sink", "vcam", "--sink", "file", out)
    err = capfd.readouterr().err
    assert code == 6
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    hint = "modprobe v4l2loopback" if HAS_PYVIRTUALCAM else "pip install"
    assert hint in err
    assert not out.exists() and not list(tmp_path.glob(".*part*"))


def _start(tmp_path: Path, clip: Path, out: Path) -> subprocess.Popen[bytes]:
    """Start a looping recording and return once its first stats line shows frames out."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200")
    cmd = [sys.executable, "-m", "blurcam", "cam", "--source", str(clip), "--loop", "--stats"]
    cmd += ["--sink", "file", str(out)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
    assert proc.stderr is not None
    seen = []
    for raw in proc.stderr:
        line = raw.decode(errors="replace")
        seen.append(line)
        if line.startswith("in ") and " out " in line and "out   0.0" not in line:
            return proc
    proc.kill()
    raise AssertionError("recording never started: " + "".join(seen)[-2000:])


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_finishes_the_recording(tmp_path: Path, clip: Path) -> None:
    out = tmp_path / "out.mp4"
    proc = _start(tmp_path, clip, out)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert _count(out) > 0, "the recording is complete and decodable"
    assert not list(tmp_path.glob(".*part*"))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_second_ctrl_c_leaves_no_half_file(tmp_path: Path, clip: Path) -> None:
    out = tmp_path / "out.mp4"
    proc = _start(tmp_path, clip, out)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode in (0, 130, -signal.SIGINT)  # -2: it had already finished
    assert not list(tmp_path.glob(".*part*")), "temporary file left behind"
    if out.exists():  # the first Ctrl-C may have finished it already
        assert _count(out) > 0
