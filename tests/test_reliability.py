"""Bad inputs and failing outputs through the CLI: one line, a documented exit code, no damage.

Every case here is a row of docs/RELIABILITY.md. Exit codes come from the
tree in ``blurcam.errors``: 4 = input cannot be read (SourceError), 5 = output
cannot be written (SinkError).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

import blurcam.io.video_writer as writer_mod
from blurcam.cli.app import main
from blurcam.io.video import probe_video
from blurcam.pipeline import Stream
from blurcam.testing import synthetic_frame
from media import encode_frames, make_video, stream_summary

SOURCE, SINK = 4, 5


def run(*args: object) -> int:
    return main([str(a) for a in args])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(folder: Path) -> list[str]:
    """Temporary files an interrupted write could leave behind."""
    return [p.name for p in folder.rglob("*") if ".part" in p.name]


def one_error_line(capfd: pytest.CaptureFixture[str], needle: str) -> None:
    err = capfd.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    assert needle in lines[0], err
    assert "Traceback" not in err


def video_pts(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [float(f.pts * s.time_base) for f in c.decode(s)]


def first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return next(iter(c.decode(video=0))).to_ndarray(format="bgr24")


# ---------------------------------------------------------------- bad inputs


def _audio_only(d: Path) -> Path:
    p = d / "audio.mp4"
    with av.open(str(p), "w") as out:
        s = out.add_stream("aac", rate=44100)
        s.layout = "mono"
        for i in range(8):
            af = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            af.sample_rate, af.pts = 44100, i * 1024
            for pk in s.encode(af):
                out.mux(pk)
        for pk in s.encode(None):
            out.mux(pk)
    return p


def _unknown_codec(d: Path) -> Path:
    """An AVI whose video FourCC no decoder knows (stands for any unsupported codec)."""
    src = make_video(d / "v.avi", frames=4, codec="mpeg4", audio=False)
    p = d / "unknown.avi"
    p.write_bytes(src.read_bytes().replace(b"FMP4", b"QQQQ"))
    src.unlink()
    return p


def _mp4_cut_in_half(d: Path) -> Path:
    """mp4 with its index (moov) at the end: half the file has no index, nothing decodes."""
    src = make_video(d / "v.mp4", frames=20)
    p = d / "half.mp4"
    data = src.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    src.unlink()
    return p


BAD_INPUTS: list[tuple[str, Callable[[Path], Path], int, str]] = [
    ("missing", lambda d: d / "missing.mp4", SOURCE, "not found"),
    ("empty", lambda d: (d / "empty.mp4").write_bytes(b"") or d / "empty.mp4", SOURCE, "empty"),
    (
        "text_named_mp4",
        lambda d: (d / "text.mp4").write_text("hello " * 200) and d / "text.mp4",
        SOURCE,
        "cannot read",
    ),
    ("audio_only", _audio_only, SOURCE, "no video stream"),
    ("unsupported_codec", _unknown_codec, SOURCE, "unsupported video codec"),
    ("mp4_cut_in_half", _mp4_cut_in_half, SOURCE, "truncated"),
    (
        "corrupt_image",
        lambda d: (d / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64) and d / "bad.png",
        SOURCE,
        "cannot decode",
    ),
    ("folder_for_blur", lambda d: (d / "dir").mkdir() or d / "dir", SOURCE, "folder"),
]


@pytest.mark.parametrize(
    "make, code, needle", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input_blur(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], make: Any, code: int, needle: str
) -> None:
    src = make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    dst = tmp_path / ("out.png" if src.suffix == ".png" else "out.mp4")
    assert run("blur", src, dst) == code
    one_error_line(capfd, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "something was written"


@pytest.mark.parametrize(
    "make, code, needle",
    [c[1:] for c in BAD_INPUTS if c[0] != "folder_for_blur"],
    ids=[c[0] for c in BAD_INPUTS if c[0] != "folder_for_blur"],
)
def test_bad_input_mask(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], make: Any, code: int, needle: str
) -> None:
    src = make(tmp_path)
    assert run("mask", src, tmp_path / "masks") == code
    one_error_line(capfd, needle)
    assert not (tmp_path / "masks").exists(), "mask folder made for a failed job"


def test_bad_input_probe_and_count(tmp_path: Path) -> None:
    """The library entry points raise SourceError for the same inputs (no other exception)."""
    from blurcam.errors import SourceError

    for _name, make, _code, _needle in BAD_INPUTS[:6]:
        with pytest.raises(SourceError):
            probe_video(make(tmp_path))


def test_truncated_video_keeps_what_decodes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A Matroska file cut in half: the first frames are blurred, a warning says so, exit 0."""
    full = make_video(tmp_path / "full.mkv", frames=30)
    half = tmp_path / "half.mkv"
    data = full.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    before = digest(half)
    dst = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING, logger="blurcam"):
        assert run("blur", half, dst) == 0
    n = stream_summary(dst)["frames"]
    assert 0 < n < 30  # type: ignore[operator]
    assert any("truncated" in r.getMessage() for r in caplog.records)
    assert digest(half) == before
    assert not leftovers(tmp_path)
    # masks of the same file: as many as decode
    assert run("mask", half, tmp_path / "m") == 0
    assert len(list((tmp_path / "m").iterdir())) == n


def test_corrupt_middle_is_skipped(tmp_path: Path) -> None:
    """Garbage over the middle of a file: bad packets are skipped, the rest is written."""
    src = make_video(tmp_path / "v.mkv", frames=30, audio=False)
    data = bytearray(src.read_bytes())
    a, b = len(data) * 2 // 5, len(data) * 3 // 5
    data[a:b] = np.random.default_rng(0).integers(0, 256, b - a, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(bytes(data))
    assert run("blur", bad, tmp_path / "o.mp4") == 0
    assert 0 < stream_summary(tmp_path / "o.mp4")["frames"] <= 30  # type: ignore[operator]


# ------------------------------------------------------------- odd sizes


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (4095, 17)], ids=["1x1", "3x5", "4095x17"])
def test_odd_and_tiny_images(tmp_path: Path, size: tuple[int, int]) -> None:
    w, h = size
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8))
    assert run("blur", src, tmp_path / "out.png") == 0
    assert cv2.imread(str(tmp_path / "out.png")).shape == (h, w, 3)
    assert run("mask", src, tmp_path / "m") == 0
    assert cv2.imread(str(tmp_path / "m" / "in.png"), cv2.IMREAD_UNCHANGED).shape == (h, w)


@pytest.mark.parametrize(
    "size, ext",
    [((1, 1), ".mp4"), ((3, 5), ".mp4"), ((4095, 17), ".mp4"), ((3, 5), ".webm"), ((3, 5), ".avi")],
    ids=["1x1-mp4", "3x5-mp4", "4095x17-mp4", "3x5-webm", "3x5-avi"],
)
def test_odd_and_tiny_videos_keep_their_size(
    tmp_path: Path, size: tuple[int, int], ext: str
) -> None:
    """Odd sizes are kept exactly: H.264 switches to yuv444p, VP9/MPEG-4 take odd yuv420p."""
    w, h = size
    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(4)]
    src = encode_frames(tmp_path / "in.mkv", frames, pix_fmt="yuv444p")
    dst = tmp_path / f"out{ext}"
    assert run("blur", src, dst) == 0
    s = stream_summary(dst)
    assert s["size"] == (w, h) and s["frames"] == 4


# ------------------------------------------------- colour formats of images


@pytest.mark.parametrize(
    "name, array",
    [
        ("gray.png", np.tile(np.arange(64, dtype=np.uint8), (48, 1))),
        ("rgba.png", np.dstack([synthetic_frame(64, 48), np.full((48, 64), 128, np.uint8)])),
        ("rgb16.png", synthetic_frame(64, 48).astype(np.uint16) * 257),
        ("gray16.tif", np.tile(np.arange(64, dtype=np.uint16) * 1000, (48, 1))),
    ],
    ids=["gray", "rgba", "16bit", "gray16"],
)
def test_image_colour_formats(tmp_path: Path, name: str, array: np.ndarray) -> None:
    src = tmp_path / name
    assert cv2.imwrite(str(src), array)
    dst = tmp_path / "out.png"
    assert run("blur", src, dst) == 0
    out = cv2.imread(str(dst), cv2.IMREAD_UNCHANGED)
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8


def _exif_jpeg(path: Path, image: np.ndarray, orientation: int) -> Path:
    """A JPEG with an EXIF orientation tag (what phones write instead of turning pixels)."""
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    tiff = (
        b"MM\x00\x2a\x00\x00\x00\x08"  # big-endian TIFF header, IFD at 8
        + b"\x00\x01"  # one entry
        + b"\x01\x12\x00\x03\x00\x00\x00\x01"  # tag 0x0112 Orientation, SHORT, count 1
        + orientation.to_bytes(2, "big")
        + b"\x00\x00"
        + b"\x00\x00\x00\x00"  # no next IFD
    )
    app1 = b"Exif\x00\x00" + tiff
    seg = b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1
    data = buf.tobytes()
    path.write_bytes(data[:2] + seg + data[2:])
    return path


def test_exif_rotated_photo_is_upright(tmp_path: Path) -> None:
    img = synthetic_frame(64, 32)  # landscape pixels
    src = _exif_jpeg(tmp_path / "phone.jpg", img, orientation=6)  # "rotate 90 CW to view"
    assert run("blur", src, tmp_path / "out.png") == 0
    assert cv2.imread(str(tmp_path / "out.png")).shape == (64, 32, 3)


# ---------------------------------------------------------- rotation, VFR


def _half_bright(w: int, h: int) -> np.ndarray:
    """Stored pixels: left half white, right half black."""
    f = np.zeros((h, w, 3), np.uint8)
    f[:, : w // 2] = 255
    return f


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotated_phone_video_is_upright(tmp_path: Path, rotation: int) -> None:
    """The display matrix is honoured: output pixels are upright and carry no matrix."""
    w, h = 64, 32
    src = encode_frames(tmp_path / "in.mp4", [_half_bright(w, h)] * 4, rotation=rotation)
    assert probe_video(src).rotation == rotation % 360
    assert (probe_video(src).width, probe_video(src).height) == (
        (h, w) if rotation % 180 else (w, h)
    )
    dst = tmp_path / "out.mp4"
    assert run("blur", src, dst, "--strength", "0") == 0
    out = first_frame(dst).mean(axis=2)
    with av.open(str(dst)) as c:
        assert next(iter(c.decode(video=0))).rotation == 0
    if rotation == 90:  # counter-clockwise: the left half goes to the bottom
        assert out.shape == (w, h) and out[w // 2 :].mean() > out[: w // 2].mean() + 100
    elif rotation == -90:  # clockwise: the left half goes to the top
        assert out.shape == (w, h) and out[: w // 2].mean() > out[w // 2 :].mean() + 100
    else:  # upside down: the left half goes to the right
        assert out.shape == (h, w) and out[:, w // 2 :].mean() > out[:, : w // 2].mean() + 100
    # masks follow the same orientation
    assert run("mask", src, tmp_path / "m") == 0
    m = cv2.imread(str(tmp_path / "m" / "000000.png"), cv2.IMREAD_UNCHANGED)
    assert m.shape == out.shape


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".webm"])
def test_variable_frame_rate_timestamps_kept(tmp_path: Path, ext: str) -> None:
    tb = Fraction(1, 1000)
    pts = [0, 40, 50, 200, 230, 500, 510, 900]  # irregular gaps, in ms
    frames = [synthetic_frame(64, 48, cx=0.3 + 0.05 * i) for i in range(len(pts))]
    src = encode_frames(tmp_path / "vfr.mkv", frames, pts, time_base=tb)
    dst = tmp_path / f"out{ext}"
    assert run("blur", src, dst) == 0
    assert video_pts(dst) == pytest.approx([p / 1000 for p in pts], abs=0.002)


def test_webm_output_reencodes_aac_audio(tmp_path: Path) -> None:
    """WebM cannot hold AAC: the audio is re-encoded (Opus), not dropped or fatal."""
    src = make_video(tmp_path / "in.mp4", frames=12)
    assert run("blur", src, tmp_path / "out.webm") == 0
    s = stream_summary(tmp_path / "out.webm")
    assert s["frames"] == 12 and s["audio"] == "opus"


# ------------------------------------------------------------ mixed folder


def test_mask_folder_with_mixed_sizes(tmp_path: Path) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    sizes = [(320, 240), (160, 96), (97, 55), (320, 240), (1, 1)]
    for i, (w, h) in enumerate(sizes):
        cv2.imwrite(str(folder / f"f{i}.png"), synthetic_frame(w, h) if w > 1 else np.zeros((1, 1)))
    assert run("mask", folder, tmp_path / "m") == 0
    for i, (w, h) in enumerate(sizes):
        m = cv2.imread(str(tmp_path / "m" / f"f{i}.png"), cv2.IMREAD_UNCHANGED)
        assert m.shape == (h, w)


def test_mask_folder_with_a_corrupt_image_leaves_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"f{i}.png"), synthetic_frame(64, 48))
    (folder / "f3.png").write_bytes(b"not a png")
    assert run("mask", folder, tmp_path / "m") == SOURCE
    one_error_line(capfd, "f3.png")
    assert not (tmp_path / "m").exists()


# ----------------------------------------------------------------- outputs


def _image(tmp_path: Path) -> Path:
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), synthetic_frame(64, 48))
    return src


def test_output_in_missing_folder(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    src = make_video(tmp_path / "in.mp4", frames=3)
    assert run("blur", src, tmp_path / "nope" / "out.mp4") == SINK
    one_error_line(capfd, "does not exist")
    assert not (tmp_path / "nope").exists()


def _read_only_dir(tmp_path: Path) -> Path:
    """A folder this process cannot write: chmod for users, a read-only tmpfs for root."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro, os.W_OK):
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("cannot make a read-only folder here")
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], capture_output=True
        )
        if r.returncode != 0:
            pytest.skip(f"cannot mount a read-only tmpfs: {r.stderr.decode().strip()}")
    return ro


@pytest.mark.parametrize("kind", ["image", "video"])
def test_output_in_read_only_folder(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], kind: str
) -> None:
    src = _image(tmp_path) if kind == "image" else make_video(tmp_path / "in.mp4", frames=3)
    ro = _read_only_dir(tmp_path)
    try:
        assert run("blur", src, ro / f"out{src.suffix}") == SINK
        one_error_line(capfd, "not writable")
        assert run("mask", src, ro / "m") == SINK
        one_error_line(capfd, "cannot create the output folder")
        assert list(ro.iterdir()) == []
    finally:
        if os.path.ismount(ro):
            subprocess.run(["umount", str(ro)], check=False)
        ro.chmod(0o700)


class _FullDisk:
    """Wraps an output container so that muxing fails with ENOSPC after ``after`` packets."""

    def __init__(self, inner: Any, after: int) -> None:
        self._inner, self._left = inner, after

    def mux(self, packet: Any) -> None:
        self._left -= 1
        if self._left < 0:
            raise av.error.OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._inner.mux(packet)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.mark.parametrize("after", [0, 5])
def test_disk_full_during_write(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    after: int,
) -> None:
    """ENOSPC while muxing: exit 5, partial file removed, input and old output untouched."""
    src = make_video(tmp_path / "in.mp4", frames=20)
    before = digest(src)
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"previous output")
    real_open = av.open

    def fake_open(path: str, mode: str = "r", **kw: Any) -> Any:
        c = real_open(path, mode, **kw)
        return _FullDisk(c, after) if mode == "w" else c

    monkeypatch.setattr(writer_mod.av, "open", fake_open)
    assert run("blur", src, dst, "--force") == SINK
    one_error_line(capfd, "No space left on device")
    assert digest(src) == before
    assert dst.read_bytes() == b"previous output"
    assert not leftovers(tmp_path)


_FSIZE_CHILD = """
import sys
from blurcam.cli.app import main
sys.exit(main(sys.argv[1:]))
"""


def _limit_file_size() -> None:  # runs in the child before exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="needs RLIMIT_FSIZE")
@pytest.mark.parametrize("kind", ["image", "video"])
def test_file_size_limit_real_write_failure(tmp_path: Path, kind: str) -> None:
    """A real failing write(2) (EFBIG under RLIMIT_FSIZE, as a full disk would): exit 5, clean."""
    if kind == "image":
        src = tmp_path / "in.png"
        big = np.random.default_rng(3).integers(0, 256, (200, 200, 3), dtype=np.uint8)
        cv2.imwrite(str(src), big)  # ~120 kB of noise: more than the limit
    else:
        src = make_video(tmp_path / "in.mp4", frames=40, size=(320, 240))
    before = digest(src)
    dst = tmp_path / f"out{src.suffix}"
    r = subprocess.run(
        [sys.executable, "-c", _FSIZE_CHILD, "blur", str(src), str(dst), "-q", "best"],
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size,
        timeout=300,
    )
    assert r.returncode == SINK, r.stderr
    assert "error:" in r.stderr and "Traceback" not in r.stderr
    assert not dst.exists()
    assert digest(src) == before
    assert not leftovers(tmp_path)


def test_ctrl_c_leaves_no_partial_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """KeyboardInterrupt mid-video: exit 130, no temporary, no output, old output kept."""
    src = make_video(tmp_path / "in.mp4", frames=30)
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"old")
    real = Stream.render  # the per-frame stage of both process and process_iter
    calls = {"n": 0}

    def interrupt(self: Stream, *a: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(self, *a)

    monkeypatch.setattr(Stream, "render", interrupt)
    assert run("blur", src, dst, "--force") == 130
    assert calls["n"] == 5
    assert dst.read_bytes() == b"old"
    assert not leftovers(tmp_path)
    import threading

    assert not [t for t in threading.enumerate() if t.name.startswith("blurcam-")]


def test_existing_output_refused_before_any_work(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    src = make_video(tmp_path / "in.mp4", frames=3)
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"keep")
    assert run("blur", src, dst) == SINK
    one_error_line(capfd, "--force")
    assert dst.read_bytes() == b"keep"
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "000001.png").write_bytes(b"keep")
    assert run("mask", _image(tmp_path), tmp_path / "m") == 0  # different name: fine
    img_mask = tmp_path / "m" / "in.png"
    assert run("mask", _image(tmp_path), tmp_path / "m") == SINK  # same name: refused
    assert img_mask.exists() and (tmp_path / "m" / "000001.png").read_bytes() == b"keep"


def test_output_mode_is_not_private(tmp_path: Path) -> None:
    """Atomic temporaries are 0600; the finished output gets the usual umask mode."""
    src = _image(tmp_path)
    assert run("blur", src, tmp_path / "out.png") == 0
    old = os.umask(0o022)
    os.umask(old)
    assert (tmp_path / "out.png").stat().st_mode & 0o777 == 0o666 & ~old


def test_output_symlinked_to_input_is_refused(tmp_path: Path) -> None:
    src = _image(tmp_path)
    before = digest(src)
    link = tmp_path / "out.png"
    link.symlink_to(src)
    assert run("blur", src, link, "--force") == SINK
    assert digest(src) == before and link.is_symlink()


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_device_file_as_input_is_refused(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An endless device (or a FIFO) is not read at all: no hang, one line."""
    assert run("blur", "/dev/zero", tmp_path / "out.mp4") == SOURCE
    one_error_line(capfd, "not a file")


def test_ctrl_c_during_mask_job_removes_its_masks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / f"f{i}.png"), synthetic_frame(64, 48))
    out = tmp_path / "m"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    real = Stream.process
    calls = {"n": 0}

    def interrupt(self: Stream, frame: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, frame, **kw)

    monkeypatch.setattr(Stream, "process", interrupt)
    assert run("mask", folder, out) == 130
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
