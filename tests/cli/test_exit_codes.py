"""Exit codes and one-line messages of user mistakes (issue 15, items 5 and 7).

docs/RELIABILITY.md has the table: 2 a bad option, 3 a model problem, 4 an
unreadable input, 5 an unwritable output; never a traceback for a user mistake.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from blurcam.cli.app import main
from blurcam.testing import synthetic_frame


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    p = tmp_path / "in.png"
    cv2.imwrite(str(p), synthetic_frame(64, 48))
    return p


def one_line(capfd: pytest.CaptureFixture[str], *needles: str) -> None:
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], lines[0]


def test_unknown_quality_is_a_bad_option_in_blur_and_batch(
    photo: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["blur", str(photo), str(tmp_path / "o.png"), "--quality", "ultra"]) == 2
    one_line(capfd, "--quality must be one of")
    assert main(["batch", str(photo.parent), str(tmp_path / "out"), "-q", "ultra"]) == 2
    one_line(capfd, "--quality must be one of")


def test_model_naming_a_folder_says_so_once_up_front(
    photo: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "models.onnx"
    folder.mkdir()
    assert main(["blur", str(photo), str(tmp_path / "o.png"), "-m", str(folder)]) == 3
    one_line(capfd, "is a folder, not a model file")
    # a batch checks the model and the background once, before any file runs
    out = tmp_path / "out"
    assert main(["batch", str(photo.parent), str(out), "-m", str(tmp_path / "x.tflite")]) == 3
    one_line(capfd, "model file not found")
    assert main(["batch", str(photo.parent), str(out), "-e", "replace", "-b", "nope.png"]) == 4
    one_line(capfd, "background not found")
    assert not out.exists() or not any(out.rglob("*.png"))


def test_batch_into_its_own_input_folder_is_refused(
    photo: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    folder = photo.parent
    before = sorted(p.name for p in folder.iterdir())
    assert main(["batch", str(folder), str(folder)]) == 2
    one_line(capfd, "the output folder is the input folder")
    assert sorted(p.name for p in folder.iterdir()) == before  # no report written there


def test_eval_given_a_file_says_it_is_a_file(
    photo: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(photo)]) == 4
    one_line(capfd, "is a file")


def test_gpu_without_one_falls_back_quietly_and_litert_does_not_talk(
    photo: Path, tmp_path: Path
) -> None:
    """No "Exception ignored ... Delegate" traceback for a missing GPU, and no
    "INFO: Created TensorFlow Lite XNNPACK delegate" line in the middle of the bars
    (the C++ runtime writes it to file descriptor 2: a real subprocess shows it)."""
    out = tmp_path / "o.png"
    r = subprocess.run(
        [sys.executable, "-m", "blurcam", "blur", str(photo), str(out), "--device", "gpu"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "Exception ignored" not in r.stderr and "Traceback" not in r.stderr
    assert "XNNPACK" not in r.stderr and "INFO:" not in r.stderr
    assert "running on CPU" in r.stderr and out.is_file()


def test_video_above_the_pixel_limit_is_one_line_exit_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Item 4 for video: the same limit and message as for images, before any decoding."""
    from media import make_video

    src = make_video(tmp_path / "in.mp4", frames=3, size=(160, 96))
    monkeypatch.setenv("BLURCAM_MAX_PIXELS", "10000")
    assert main(["blur", str(src), str(tmp_path / "o.mp4")]) == 4
    one_line(capfd, "160x96", "set BLURCAM_MAX_PIXELS to allow more")
    assert not list(tmp_path.glob("*o.*"))


def test_ray_without_a_cluster_is_exit_6_and_creates_nothing(
    photo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Item 7: ``--ray auto`` with no cluster to join fails before anything is created, as a
    missing device does (exit 6), in one line. Ray is stubbed to answer as it does with no
    cluster: a real ``auto`` would join whatever cluster runs on this shared machine."""
    ray = pytest.importorskip("ray")

    def no_cluster(*a: object, **k: object) -> None:
        raise ConnectionError("Could not find any running Ray instance. Please specify ...")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_cluster)
    out = tmp_path / "out"
    assert main(["batch", str(photo.parent), str(out), "--ray", "auto"]) == 6
    one_line(capfd, "cannot connect to the Ray cluster at 'auto'", "Could not find any")
    assert not out.exists()
