"""``blurcam bench``: structure of the results (never their speed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from blurcam.cli.app import main
from blurcam.errors import SettingsError
from blurcam.evaluate import bench
from blurcam.testing import FakeSegmenter, synthetic_frame


def test_parse_sizes() -> None:
    assert bench.parse_sizes("720p, 1080p,4K") == [
        ("720p", (1280, 720)),
        ("1080p", (1920, 1080)),
        ("4k", (3840, 2160)),
    ]
    assert bench.parse_sizes("160x90") == [("160x90", (160, 90))]
    for bad in ("", "8k", "10x10", "axb"):
        with pytest.raises(SettingsError):
            bench.parse_sizes(bad)


def test_naive_reference_keeps_person_and_blurs_background() -> None:
    f = synthetic_frame(160, 120)
    ref = bench.NaiveReference(FakeSegmenter())
    out = ref.process(f)
    assert out.shape == f.shape and out.dtype == np.uint8
    assert np.array_equal(out[60, 80], f[60, 80])  # disc centre = person, untouched
    assert not np.array_equal(out[:, :10], f[:, :10])  # striped background blurred
    assert set(ref.ms) == {"segment", "resize", "blur", "composite"}


def test_summarize_and_consecutive_order() -> None:
    s = bench.summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["median_ms"] == 3.0 and s["min_ms"] == 1.0 and s["p95_ms"] > 4.0
    frames = [np.full((2, 2, 3), k, np.uint8) for k in range(3)]
    order = [int(f[0, 0, 0]) for f in bench._consecutive(frames, 7)]
    assert order == [0, 1, 2, 1, 0, 1, 2]  # every step to a neighbour: no jump back


def test_clip_frames_from_a_video_a_folder_or_synthetic(tmp_path: Path) -> None:
    import cv2

    frames, where = bench.clip_frames(None, 3)
    assert where == "synthetic moving scene" and len(frames) == 3
    assert not np.array_equal(frames[0], frames[2])
    for k in range(4):
        cv2.imwrite(str(tmp_path / f"{k:03d}.png"), synthetic_frame(64, 48, cx=0.3 + 0.1 * k))
    frames, where = bench.clip_frames(tmp_path, 3)
    assert len(frames) == 3 and "3 consecutive frames, 64x48" in where
    assert bench.default_clip(None) == bench.SAMPLE_CLIP
    frames, _ = bench.clip_frames(bench.SAMPLE_CLIP, 5)
    assert len(frames) == 5 and frames[0].shape == (360, 640, 3)


def check_structure(res: dict, sizes: list[str], frames: int) -> None:
    rows = res["rows"]
    assert [(r["size"], r["workload"]) for r in rows] == [
        (s, w) for s in sizes for w in ("moving", "still")
    ]
    for r in rows:
        for who in ("one_by_one", "naive"):
            row = r[who]
            assert row["median_ms"] > 0 and row["p95_ms"] >= row["median_ms"]
        assert r["one_by_one"]["stages"] and r["pipelined"]["ms"] > 0
        assert r["x_one_by_one"] > 0 and r["x_pipelined"] > 0
        assert set(r["naive"]["stages"]) == {"segment", "resize", "blur", "composite"}
    moving = [r for r in rows if r["workload"] == "moving"]
    assert all(r["model_runs"] == 1.0 for r in moving)  # the headline: model on every frame
    assert all(r["one_by_one"]["frames"] == frames for r in moving)
    assert res["machine"]["cpus"] >= 1


def test_bench_cli_json_structure(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "--json", "--frames", "3", "--sizes", "160x90,192x108", "--synthetic"]
    assert main([*args, "--effects"]) == 0
    res = json.loads(capsys.readouterr().out)
    check_structure(res, ["160x90", "192x108"], 3)
    kinds = [e["effect"] for e in res["effects"]]
    from blurcam.settings import EFFECTS

    assert kinds == list(EFFECTS)
    blur = next(e for e in res["effects"] if e["effect"] == "blur")
    assert blur["vs_blur"] == pytest.approx(1.0) and blur["size"] == "160x90"
    for e in res["effects"]:
        assert "error" in e or e["frames"] == 3


def test_bench_cli_table_clip_and_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = bench.SAMPLE_CLIP
    assert main(["bench", "--frames", "2", "--sizes", "128x72", "--clip", str(clip)]) == 0
    out = capsys.readouterr().out
    assert "blurcam bench" in out and "naive" in out and "segment" in out
    assert "astronaut_clip.mp4" in out and "still," in out
    assert main(["bench", "--sizes", "huge"]) == 2
    assert "bad size" in capsys.readouterr().err
    assert main(["bench", "--clip", str(tmp_path / "nope.mp4")]) != 0
    assert "clip not found" in capsys.readouterr().err


@pytest.mark.shared
def test_bench_default_clip_is_the_talking_head_when_present(shared_dir: Path) -> None:
    clip = bench.default_clip(shared_dir / "data")
    assert clip is not None and clip.name == "portrait_segmentation_test.mp4"


def test_effect_that_raises_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "EFFECTS", ("blur", "no-such-effect", "none"))
    res = bench.run_bench(frames=2, sizes=[("96x64", (96, 64))], effects=True, synthetic=True)
    rows = {r["effect"]: r for r in res["effects"]}
    assert list(rows) == ["blur", "no-such-effect", "none"]
    assert "SettingsError" in rows["no-such-effect"]["error"]
    assert rows["blur"]["frames"] == 2 and rows["none"]["frames"] == 2
    assert rows["none"]["vs_blur"] > 0
