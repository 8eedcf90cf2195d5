"""Stopped, killed (issue 15, items 1-3): real ``python -m blurcam`` processes get SIGTERM,
SIGINT or SIGKILL in the middle of their work, as systemd, docker, Kubernetes, ``timeout``
and Ctrl-C send them.

Each test waits until the process is working (a temporary appears, or a stats line),
sends the signal, and checks the exit code, the files left behind and, by PID, that no
worker process outlives its driver. Every wait polls with a generous deadline; nothing
here asserts a duration.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from itertools import count
from pathlib import Path

import av
import pytest

from blurcam.cli.app import main
from media import make_video, stream_summary

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals and /proc")

DEADLINE = 180.0  # seconds: the machine is shared and may be slow; a hang still fails
SRC = Path(__file__).resolve().parents[2] / "src"
_n = count()


def _env() -> dict[str, str]:
    """The test's environment, with this checkout's package first on the path."""
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED="1", COLUMNS="200")


def _state(pid: int) -> str | None:
    """The /proc state letter of ``pid`` (None: no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


def _alive(pid: int) -> bool:
    return _state(pid) not in (None, "Z")  # a zombie has exited; only its entry is left


def _children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                kids.append(int(d.name))
    return kids


def _poll(cond: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + DEADLINE
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.01)


def _temporaries(folder: Path) -> list[str]:
    """What an interrupted run could leave: ``.NAME.*.part.EXT`` and ``.blurcam-parts-*``."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob(".*")
        if ".part" in p.name or p.name.startswith(".blurcam-parts-")
    )


class Blurcam:
    """``python -m blurcam ARGS`` in a subprocess, its stderr in a file."""

    def __init__(self, tmp: Path, *args: object, session: bool = False) -> None:
        self.stderr = tmp / f"stderr-{next(_n)}.txt"
        with self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "blurcam", *map(str, args)],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=_env(),
                start_new_session=session,
            )

    def err(self) -> str:
        return self.stderr.read_text(errors="replace")

    def wait_until(self, cond: Callable[[], bool], what: str) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"exited ({self.proc.returncode}) before {what}:\n{self.err()}"
                )
            return cond()

        _poll(ready, what)

    def workers(self) -> list[int]:
        """Its child processes now (pool workers and multiprocessing's resource tracker)."""
        return _children(self.proc.pid)

    def finish(self) -> tuple[int, str]:
        self.proc.wait(timeout=DEADLINE)
        return self.proc.returncode, self.err()


def _all_gone(pids: list[int]) -> None:
    _poll(lambda: not any(_alive(p) for p in pids), f"processes {pids} to end")


def _frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(c.streams.video[0]))


def _clean_exit(err: str) -> None:
    assert "Traceback" not in err and "leaked semaphore" not in err, err


# ------------------------------------------------------------------- item 1: cam
def _recording(tmp_path: Path) -> tuple[Blurcam, Path]:
    """``blurcam cam`` recording a looping clip, once its stats show frames written."""
    clip = make_video(tmp_path / "clip.mp4", frames=24, fps=24, size=(160, 96), audio=False)
    rec = tmp_path / "rec.mp4"
    cam = Blurcam(tmp_path, "cam", "--source", clip, "--loop", "--stats", "--sink", "file", rec)
    cam.wait_until(
        lambda: any(
            ln.startswith("in ") and "out   0.0" not in ln for ln in cam.err().splitlines()
        ),
        "frames recorded",
    )
    return cam, rec


def test_sigterm_finishes_and_keeps_a_recording(tmp_path: Path) -> None:
    """SIGTERM (systemd, docker) stops ``cam`` as Ctrl-C does: the recording is kept and plays."""
    cam, rec = _recording(tmp_path)
    cam.proc.send_signal(signal.SIGTERM)
    code, err = cam.finish()
    assert code == 0, err
    _clean_exit(err)
    assert f"wrote {rec}" in err
    assert _frames(rec) > 0
    assert _temporaries(tmp_path) == []


def test_second_signal_while_finishing_removes_the_recording(tmp_path: Path) -> None:
    """Two stop signals back to back: the second lands while the first finishes, aborts the
    recording, and the CLI does not claim to have written it."""
    cam, rec = _recording(tmp_path)
    cam.proc.send_signal(signal.SIGTERM)
    cam.proc.send_signal(signal.SIGINT)
    code, err = cam.finish()
    assert code in (130, 143), err  # 128 + whichever signal came second
    _clean_exit(err)
    assert "wrote" not in err
    assert not rec.exists()
    assert _temporaries(tmp_path) == []


# ------------------------------------------------------------------ item 2: blur
def test_sigterm_stops_blur_and_leaves_nothing(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", frames=480, size=(320, 240), fps=24)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old")
    blur = Blurcam(tmp_path, "blur", src, out, "--force", "--workers", "1")
    blur.wait_until(lambda: bool(list(tmp_path.glob(".out.*.part.mp4"))), "the temporary")
    blur.proc.send_signal(signal.SIGTERM)
    code, err = blur.finish()
    assert code == 143, err
    _clean_exit(err)
    assert "interrupted (SIGTERM)" in err and "wrote" not in err
    assert out.read_bytes() == b"old"
    assert _temporaries(tmp_path) == []


def _split_clip(tmp_path: Path) -> Path:
    """8 s with a keyframe every second (MPEG-4): cut into 2 parts by ``--split-min 1``."""
    return make_video(tmp_path / "in.mp4", frames=96, size=(320, 240), fps=12, codec="mpeg4")


def _part_being_written(folder: Path) -> bool:
    return any(".part" in p.name for p in folder.glob(".blurcam-parts-*/*"))


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stop_signal_ends_a_split_blur_and_its_workers(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    """The split path: the workers stop with the driver, their parts and the parts folder go."""
    src = _split_clip(tmp_path)
    out = tmp_path / "out.mp4"
    blur = Blurcam(tmp_path, "blur", src, out, "--workers", "2", "--split-min", "1")
    blur.wait_until(lambda: _part_being_written(tmp_path), "a worker writing its part")
    workers = blur.workers()
    assert workers
    blur.proc.send_signal(sig)
    got, err = blur.finish()
    assert got == code, err
    _clean_exit(err)
    _all_gone(workers)
    assert not out.exists()
    assert _temporaries(tmp_path) == []


def test_leftovers_of_a_killed_blur_are_removed_by_the_next_run(tmp_path: Path) -> None:
    """SIGKILL of the whole process group leaves the parts folder and the workers'
    temporaries; the next run writing there removes them, not a live run's or a stranger's."""
    src = _split_clip(tmp_path)
    blur = Blurcam(
        tmp_path, "blur", src, tmp_path / "out.mp4", "-w", "2", "--split-min", "1", session=True
    )
    blur.wait_until(lambda: _part_being_written(tmp_path), "a worker writing its part")
    workers = blur.workers()
    os.killpg(blur.proc.pid, signal.SIGKILL)
    assert blur.finish()[0] == -signal.SIGKILL
    _all_gone(workers)
    left = _temporaries(tmp_path)
    assert any(name.startswith(".blurcam-parts-") for name in left), left
    host = socket.gethostname().split(".")[0]
    live = tmp_path / f".other.{os.getpid()}@{host}.abc123.part.mp4"  # this process runs
    stranger = tmp_path / ".notes.part.mp4"  # not a name blurcam writes
    live.write_bytes(b"")
    stranger.write_bytes(b"")

    assert main(["blur", str(src), str(tmp_path / "again.mp4"), "--workers", "1"]) == 0
    assert _temporaries(tmp_path) == sorted([live.name, stranger.name])
    assert stream_summary(tmp_path / "again.mp4")["frames"] == 96


# ----------------------------------------------------------------- item 3: batch
def _archive(tmp_path: Path, files: int = 4) -> Path:
    root = tmp_path / "in"
    root.mkdir()
    for k in range(files):
        make_video(root / f"v{k}.mp4", frames=240, size=(320, 240), fps=24)
    return root


def _worker_writing(out: Path) -> bool:
    return any(".part" in p.name for p in out.glob(".v*"))


def test_sigterm_of_batch_stops_workers_and_writes_the_report(tmp_path: Path) -> None:
    root, out = _archive(tmp_path), tmp_path / "out"
    batch = Blurcam(tmp_path, "batch", root, out, "--workers", "2")
    batch.wait_until(lambda: _worker_writing(out), "a worker writing its output")
    workers = batch.workers()
    assert workers
    batch.proc.send_signal(signal.SIGTERM)
    code, err = batch.finish()
    assert code == 143, err
    _clean_exit(err)
    _all_gone(workers)
    report = json.loads((out / "blurcam-report.json").read_text())
    status = [f["status"] for f in report["files"]]
    assert report["summary"]["stopped_early"] and "interrupted" in status, status
    assert set(status) <= {"done", "interrupted"}
    assert _temporaries(out) == []
    # the next run does exactly what is missing
    assert main(["batch", str(root), str(out), "--workers", "2"]) == 0
    again = json.loads((out / "blurcam-report.json").read_text())["summary"]
    assert again["done"] == status.count("interrupted")
    assert again["skipped"] == status.count("done")


def test_sigkill_of_batch_takes_its_workers_along(tmp_path: Path) -> None:
    """A driver killed outright: its workers notice at once (Linux: PR_SET_PDEATHSIG; a
    watchdog polling the parent PID elsewhere), stop their file and exit instead of
    waiting on a pipe forever; the next run completes the batch."""
    root, out = _archive(tmp_path), tmp_path / "out"
    batch = Blurcam(tmp_path, "batch", root, out, "--workers", "2")
    batch.wait_until(lambda: _worker_writing(out), "a worker writing its output")
    workers = batch.workers()
    assert workers
    batch.proc.send_signal(signal.SIGKILL)
    assert batch.finish()[0] == -signal.SIGKILL
    _all_gone(workers)
    assert main(["batch", str(root), str(out), "--workers", "2"]) == 0
    assert _temporaries(out) == []
    assert all(stream_summary(out / f"v{k}.mp4")["frames"] == 240 for k in range(4))


# ----------------------------------------------------------------------- serve
def test_sigterm_stops_serve(tmp_path: Path) -> None:
    pytest.importorskip("aiortc")
    serve = Blurcam(tmp_path, "serve", "--port", "0")
    serve.wait_until(lambda: "serving on" in serve.err(), "the server to listen")
    serve.proc.send_signal(signal.SIGTERM)
    code, err = serve.finish()
    assert code == 0, err
    _clean_exit(err)


# A pool worker without PR_SET_PDEATHSIG (as on macOS): only its watchdog can notice
# that the driver is gone. Busy in a 10-minute task, it must still end within moments.
_WORKER = """
import sys, threading, time
import blurcam.pool as pool
pool._signal_on_parent_death = lambda signum: None
worker = pool._PoolWorker(None, int(sys.argv[1]), threading.Event())

def task():
    print("busy", flush=True)
    time.sleep(600)

worker.run(task, ())
"""
_DRIVER = """
import os, subprocess, sys
worker = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid())],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
worker.stdout.readline()
print(worker.pid, flush=True)
os._exit(0)
"""


def test_watchdog_ends_a_busy_worker_whose_driver_is_gone() -> None:
    driver = subprocess.run(
        [sys.executable, "-c", _DRIVER, _WORKER],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=DEADLINE,
    )
    worker = int(driver.stdout.split()[0])
    try:
        _all_gone([worker])
    finally:
        if _alive(worker):
            os.kill(worker, signal.SIGKILL)
