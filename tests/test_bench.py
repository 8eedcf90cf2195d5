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


def test_summarize_and_ping_pong_order() -> None:
    s = bench.summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["median_ms"] == 3.0 and s["min_ms"] == 1.0 and s["p95_ms"] > 4.0
    assert [bench._order(k, 3) for k in range(6)] == [0, 1, 2, 1, 0, 1]


def test_synthetic_source_frames() -> None:
    frames, where = bench.source_frames(None, n=3)
    assert where == "synthetic" and len(frames) == 3
    assert frames[0].shape[2] == 3 and not np.array_equal(frames[0], frames[2])


def check_structure(res: dict, sizes: list[str], frames: int) -> None:
    assert [r["size"] for r in res["sizes"]] == sizes
    for r in res["sizes"]:
        for who in ("blurcam", "naive"):
            row = r[who]
            assert row["frames"] == frames
            assert row["median_ms"] > 0 and row["p95_ms"] >= row["median_ms"]
            assert row["stages"] and all("mean_ms" in v for v in row["stages"].values())
        assert r["speedup_median"] > 0 and r["speedup_cpu_median"] > 0
        assert r["pipelined"]["median_ms"] > 0 and r["speedup_pipelined"] > 0
        assert 0 < r["model_runs"] <= 1
        assert r["blurcam"]["cpu_median_ms"] >= 0
        assert set(r["naive"]["stages"]) == {"segment", "resize", "blur", "composite"}
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


def test_bench_cli_table_and_bad_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--frames", "2", "--sizes", "128x72", "--synthetic"]) == 0
    out = capsys.readouterr().out
    assert "blurcam bench" in out and "naive" in out and "segment" in out
    assert main(["bench", "--sizes", "huge"]) == 2
    assert "bad size" in capsys.readouterr().err


@pytest.mark.shared
def test_bench_uses_real_frames_when_present(shared_dir: Path) -> None:
    frames, where = bench.source_frames(shared_dir / "data", n=2)
    assert where != "synthetic" and len(frames) == 2


def test_effect_that_raises_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench, "EFFECTS", ("blur", "no-such-effect", "none"))
    res = bench.run_bench(frames=2, sizes=[("96x64", (96, 64))], effects=True, synthetic=True)
    rows = {r["effect"]: r for r in res["effects"]}
    assert list(rows) == ["blur", "no-such-effect", "none"]
    assert "SettingsError" in rows["no-such-effect"]["error"]
    assert rows["blur"]["frames"] == 2 and rows["none"]["frames"] == 2
    assert rows["none"]["vs_blur"] > 0
