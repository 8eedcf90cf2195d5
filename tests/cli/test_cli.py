from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from blurcam.cli.app import main
from blurcam.testing import synthetic_frame
from media import make_video, stream_summary


def run(*args: str) -> int:
    return main([str(a) for a in args])


def test_blur_video_keeps_audio_and_frames(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", frames=15)
    dst = tmp_path / "out.mp4"
    assert run("blur", src, dst, "--strength", "0.9") == 0
    a, b = stream_summary(src), stream_summary(dst)
    assert b["frames"] == a["frames"] == 15
    assert b["size"] == a["size"] and b["fps"] == a["fps"]
    assert b["audio"] == "aac" and b["audio_packets"] == a["audio_packets"]
    assert not list(tmp_path.glob(".*part*")), "temporary file left behind"


def test_blur_image(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), synthetic_frame())
    dst = tmp_path / "out.jpg"
    assert run("blur", src, dst) == 0
    assert cv2.imread(str(dst)).shape == (240, 320, 3)


def test_refuses_overwrite_then_force(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), synthetic_frame())
    dst = tmp_path / "out.png"
    dst.write_bytes(b"keep me")
    assert run("blur", src, dst) == 5
    assert dst.read_bytes() == b"keep me"
    assert run("blur", src, dst, "--force") == 0
    assert cv2.imread(str(dst)) is not None


def test_never_writes_over_input(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), synthetic_frame())
    before = src.read_bytes()
    assert run("blur", src, src, "--force") == 5
    assert src.read_bytes() == before


@pytest.mark.parametrize(
    "make, code, needle",
    [
        (lambda d: d / "missing.mp4", 4, "not found"),
        (lambda d: (d / "empty.mp4").write_bytes(b"") or d / "empty.mp4", 4, "empty"),
        (
            lambda d: (d / "text.mp4").write_text("hello " * 100) and d / "text.mp4",
            4,
            "cannot read",
        ),
    ],
)
def test_bad_inputs_one_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], make, code, needle
) -> None:  # type: ignore[no-untyped-def]
    src = make(tmp_path)
    dst = tmp_path / "out.mp4"
    assert run("blur", src, dst) == code
    err = capfd.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not dst.exists()


def test_unwritable_output(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), synthetic_frame())
    assert run("blur", src, tmp_path / "nope" / "out.png") == 5
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user that can write anywhere")
        assert run("blur", src, ro / "out.png") == 5
    finally:
        ro.chmod(0o700)
    err = capfd.readouterr().err
    assert "does not exist" in err and "Traceback" not in err


def test_mask_folder_video_image(tmp_path: Path) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"f{i:02d}.jpg"), synthetic_frame(cx=0.3 + 0.1 * i))
    assert run("mask", folder, tmp_path / "m1") == 0
    names = sorted(p.name for p in (tmp_path / "m1").iterdir())
    assert names == ["f00.png", "f01.png", "f02.png"]
    m = cv2.imread(str(tmp_path / "m1" / "f00.png"), cv2.IMREAD_UNCHANGED)
    assert m.ndim == 2 and m.dtype == np.uint8

    vid = make_video(tmp_path / "v.mp4", frames=5, audio=False)
    assert run("mask", vid, tmp_path / "m2") == 0
    assert sorted(p.name for p in (tmp_path / "m2").iterdir()) == [f"{i:06d}.png" for i in range(5)]

    img = tmp_path / "one.png"
    cv2.imwrite(str(img), synthetic_frame())
    assert run("mask", img, tmp_path / "m3") == 0
    assert (tmp_path / "m3" / "one.png").exists()


def test_bad_option_is_usage_error(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), synthetic_frame())
    assert run("blur", src, tmp_path / "o.png", "--strength", "3") == 2
    assert run("blur", src, tmp_path / "o.png", "--model", "bogus") == 3
