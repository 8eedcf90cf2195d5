"""blurcam.batch on a local Ray cluster (2 CPUs); skipped when ray is not installed."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blurcam.batch import Tick, discover, make_plan, run_batch
from blurcam.settings import Settings
from media import make_video, stream_summary

ray = pytest.importorskip("ray")


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local cluster for the session: init + shutdown cost ~5 s."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # else it needs a writable ~/.ray
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=200 * 1024 * 1024,
        log_to_driver=False,
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
    )
    try:
        yield ray
    finally:
        ray.shutdown()


def test_ray_batch_processes_folder_skips_rerun_and_reports_corrupt(
    ray_cluster: Any, tmp_path: Path
) -> None:
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    for k in range(3):
        make_video(root / f"v{k}.mp4", frames=8)
    make_video(root / "sub" / "w.mp4", frames=6)
    (root / "sub" / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"x" * 300)
    out = tmp_path / "out"

    ticks: list[Tick] = []
    rep = run_batch(
        make_plan(discover(root), out, Settings()), ray="auto", retry=1, on_tick=ticks.append
    )
    assert ticks[-1].frames_done == 3 * 8 + 6 and ticks[-1].files_done == 5
    assert rep.backend == "ray"
    status = {Path(f.input).name: f.status for f in rep.files}
    assert status == {
        "v0.mp4": "done",
        "v1.mp4": "done",
        "v2.mp4": "done",
        "corrupt.mp4": "failed",
        "w.mp4": "done",
    }
    bad = next(f for f in rep.files if f.status == "failed")
    assert "corrupt.mp4" in (bad.error or "") and bad.attempts == 1
    assert stream_summary(out / "sub" / "w.mp4")["frames"] == 6
    assert stream_summary(out / "v1.mp4")["audio"] == "aac"

    again = run_batch(make_plan(discover(root), out, Settings()), ray="auto")
    assert again.count("done") == 0 and again.count("skipped") == 4
    assert again.count("failed") == 1


def test_ray_split_and_stitch(ray_cluster: Any, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    make_video(tmp_path / "in" / "long.mp4", frames=36, fps=12, codec="mpeg4")
    out = tmp_path / "out"
    rep = run_batch(
        make_plan(discover(tmp_path / "in"), out, Settings()),
        ray="auto",
        split_min=1.0,
        work_dir=out / ".blurcam" / "parts",
    )
    f = rep.files[0]
    assert f.status == "done" and f.parts >= 2, f.error
    s = stream_summary(out / "long.mp4")
    assert s["frames"] == 36 and s["audio"] == "aac"


def test_cli_batch_on_ray(ray_cluster: Any, tmp_path: Path) -> None:
    from blurcam.cli.app import main

    (tmp_path / "in").mkdir()
    make_video(tmp_path / "in" / "a.mp4", frames=6)
    report = tmp_path / "r.json"
    args = ["batch", str(tmp_path / "in"), str(tmp_path / "out"), "--ray", "auto"]
    assert main([*args, "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["summary"]["backend"] == "ray" and data["summary"]["done"] == 1
    assert data["files"][0]["frames"] == 6
    assert main(args) == 0
    assert (
        json.loads((tmp_path / "out" / "blurcam-report.json").read_text())["summary"]["skipped"]
        == 1
    )


def test_ray_ctrl_c_mid_file_leaves_no_temporaries(ray_cluster: Any, tmp_path: Path) -> None:
    """Item 3 under Ray: Ctrl-C (or SIGTERM, the same path) cancels running tasks with a
    KeyboardInterrupt in them (not a kill), so their writers remove their temporaries."""
    root = tmp_path / "in"
    root.mkdir()
    for k in range(2):
        make_video(root / f"v{k}.mp4", frames=240, size=(320, 240), fps=24)
    out = tmp_path / "out"

    def stop_mid_file(t: Tick) -> None:
        if 0 < t.frames_done < t.frames_total:
            raise KeyboardInterrupt

    rep = run_batch(make_plan(discover(root), out, Settings()), ray="auto", on_tick=stop_mid_file)
    assert rep.interrupted and rep.count("interrupted") >= 1
    assert not list(out.rglob(".*.part*")), "a cancelled task left its temporary"


def test_ray_carries_a_workers_warnings_back(ray_cluster: Any, tmp_path: Path) -> None:
    """Item 6 under Ray: the worker's stderr is not shown, so the truncation warning
    travels back with the result, into the report."""
    root = tmp_path / "in"
    root.mkdir()
    full = make_video(root / "full.mkv", frames=30)
    (root / "half.mkv").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    full.unlink()
    ticks: list[Tick] = []
    rep = run_batch(
        make_plan(discover(root), tmp_path / "out", Settings()), ray="auto", on_tick=ticks.append
    )
    (f,) = rep.files
    assert f.status == "done" and any("truncated" in w for w in f.warnings), f.warnings
    assert ticks[-1].frames_total == ticks[-1].frames_done == f.frames < 30
