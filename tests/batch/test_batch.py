"""blurcam.batch on a local process pool: discovery, resumable plans, failures, split+stitch."""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import os
import shutil
import signal
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from blurcam.batch import (
    discover,
    is_complete,
    make_plan,
    read_manifest,
    run_batch,
    scan_folder,
)
from blurcam.batch.run import Tick
from blurcam.cli.app import main
from blurcam.errors import SettingsError, SourceError
from blurcam.jobs import blur_file
from blurcam.settings import Settings, build_settings
from blurcam.split import Segment, plan_segments
from blurcam.testing import synthetic_frame
from media import make_video, stream_summary


def _archive(root: Path, corrupt: bool = True) -> Path:
    """A small nested archive: 2 videos with audio, an image, and (optionally) a corrupt file."""
    (root / "talks" / "day1").mkdir(parents=True)
    make_video(root / "talks" / "a.mp4", frames=10)
    make_video(root / "talks" / "day1" / "b.mp4", frames=8)
    cv2.imwrite(str(root / "talks" / "day1" / "c.png"), synthetic_frame(96, 64))
    (root / "notes.txt").write_text("not media")
    (root / ".hidden.mp4").write_bytes(b"ignored")
    if corrupt:
        (root / "talks" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"junk" * 64)
    return root


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(c.streams.video[0])]


def _pts(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return sorted(float(p.pts * p.time_base) for p in c.demux(v) if p.pts is not None)


def _disc_x(frame: np.ndarray) -> float:
    """Mean column of the disc-coloured pixels of a synthetic frame."""
    m = np.abs(frame.astype(int) - (40, 90, 200)).sum(axis=2) < 60
    return float(np.nonzero(m)[1].mean())


def _statuses(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {Path(f.input).name: f.status for f in report.files}


# --------------------------------------------------------------- discovery
def test_scan_is_recursive_sorted_and_skips_hidden_and_output(tmp_path: Path) -> None:
    root = _archive(tmp_path / "in")
    (root / "out").mkdir()
    make_video(root / "out" / "old.mp4", frames=2)
    items = scan_folder(root, exclude=root / "out")
    rels = [str(i.rel) for i in items]
    assert rels == ["talks/a.mp4", "talks/broken.mp4", "talks/day1/b.mp4", "talks/day1/c.png"]
    assert [i.kind for i in items] == ["video", "video", "video", "image"]


def test_csv_manifest_with_per_file_options(tmp_path: Path) -> None:
    root = _archive(tmp_path / "in", corrupt=False)
    m = root / "list.csv"
    m.write_text(
        "path,strength,effect,output\n"
        "talks/a.mp4,0.2,,renamed/a.mkv\n"
        f"{root / 'talks/day1/c.png'},,none,\n"
    )
    items = read_manifest(m)
    assert [str(i.rel) for i in items] == ["renamed/a.mkv", "talks/day1/c.png"]
    assert items[0].options == {"strength": "0.2"}  # typed when planned
    assert items[1].options == {"effect": "none"}
    assert items[0].src == root / "talks" / "a.mp4"
    jobs = make_plan(items, tmp_path / "out", build_settings(strength=0.9))
    assert jobs[0].settings.effect.strength == 0.2 and jobs[1].settings.effect.strength == 0.9
    assert jobs[1].settings.effect.kind == "none"
    m.write_text("path,effect,background\ntalks/a.mp4,replace,talks/day1/c.png\n")
    job = make_plan(read_manifest(m), tmp_path / "out", Settings())[0]
    assert job.settings.effect.background == str(root / "talks" / "day1" / "c.png")


def test_json_manifest_and_bad_rows(tmp_path: Path) -> None:
    root = _archive(tmp_path / "in", corrupt=False)
    m = root / "list.json"
    m.write_text(
        json.dumps({"files": ["talks/a.mp4", {"path": "talks/day1/b.mp4", "model": "selfie"}]})
    )
    items = discover(m)
    assert [i.options for i in items] == [{}, {"model": "selfie"}]
    m.write_text(json.dumps([{"path": "talks/a.mp4", "strenght": 0.3}]))
    with pytest.raises(SettingsError, match="strenght"):
        discover(m)
    m.write_text(json.dumps([{"path": "talks/a.mp4", "output": "../escape.mp4"}]))
    with pytest.raises(SettingsError, match="relative"):
        discover(m)
    with pytest.raises(SourceError):
        discover(tmp_path / "missing")


def test_plan_paths_are_absolute_for_remote_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _archive(tmp_path / "in", corrupt=False)
    monkeypatch.chdir(tmp_path)
    jobs = make_plan(discover(Path("in")), Path("out"), build_settings(background="bg.png"))
    assert all(j.src.is_absolute() and j.dst.is_absolute() for j in jobs)
    assert jobs[0].dst == tmp_path / "out" / "talks" / "a.mp4"
    assert jobs[0].settings.effect.background == str(tmp_path / "bg.png")


def test_plan_rejects_two_inputs_to_one_output(tmp_path: Path) -> None:
    root = _archive(tmp_path / "in", corrupt=False)
    m = root / "list.csv"
    m.write_text("path,output\ntalks/a.mp4,x.mp4\ntalks/day1/b.mp4,x.mp4\n")
    with pytest.raises(SettingsError, match="both"):
        make_plan(read_manifest(m), tmp_path / "out", Settings())
    m.write_text("path,strength\ntalks/a.mp4,7\n")
    with pytest.raises(SettingsError, match="strength"):
        make_plan(read_manifest(m), tmp_path / "out", Settings())


# ------------------------------------------------------------ local runs
def test_local_batch_mirrors_reports_failure_and_is_idempotent(tmp_path: Path) -> None:
    root = _archive(tmp_path / "in")
    out = tmp_path / "out"
    ticks: list[Tick] = []
    jobs = make_plan(discover(root, exclude=out), out, Settings())
    rep = run_batch(jobs, workers=2, retry=1, on_tick=ticks.append)
    st = _statuses(rep)
    assert st == {"a.mp4": "done", "broken.mp4": "failed", "b.mp4": "done", "c.png": "done"}
    # a bad input is permanent: not retried
    bad = next(f for f in rep.files if f.status == "failed")
    assert bad.attempts == 1 and "broken.mp4" in (bad.error or "")
    assert rep.summary()["failures"] == [{"input": bad.input, "error": bad.error}]
    # layout mirrored, audio and frames kept
    assert stream_summary(out / "talks" / "a.mp4")["frames"] == 10
    assert stream_summary(out / "talks" / "day1" / "b.mp4")["audio"] == "aac"
    assert cv2.imread(str(out / "talks" / "day1" / "c.png")).shape == (64, 96, 3)
    assert not (out / "talks" / "broken.mp4").exists()
    assert not list(out.rglob(".*.part*")), "temporary left behind"
    done = {Path(f.input).name: f for f in rep.files if f.status == "done"}
    assert done["a.mp4"].frames == 10 and done["a.mp4"].duration > 0
    assert ticks[-1].files_done == 4 and ticks[-1].failed == 1
    assert ticks[-1].frames_done == 10 + 8 + 1

    # second run: the failed file is tried again, the others are complete
    jobs2 = make_plan(discover(root, exclude=out), out, Settings())
    assert [j.done for j in jobs2] == [True, False, True, True]
    # without the broken file the same batch processes nothing and rewrites nothing
    (root / "talks" / "broken.mp4").unlink()
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    rep2 = run_batch(make_plan(discover(root, exclude=out), out, Settings()), workers=2)
    assert _statuses(rep2) == {"a.mp4": "skipped", "b.mp4": "skipped", "c.png": "skipped"}
    assert rep2.count("done") == 0
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes, "a complete output was rewritten"


def test_changes_make_outputs_incomplete(tmp_path: Path) -> None:
    root = _archive(tmp_path / "in", corrupt=False)
    out = tmp_path / "out"
    rep = run_batch(make_plan(discover(root), out, Settings()), workers=1)
    assert rep.count("done") == 3
    jobs = make_plan(discover(root), out, Settings())
    assert all(j.done for j in jobs)
    # any other setting that changes the frames -> all redone (mask, guard, effect, quality);
    # threads do not change them
    base = Settings()
    for changed in (
        build_settings(strength=0.2),
        build_settings(face_guard=False),
        build_settings(people="main"),
        build_settings(keep_box="1,1,5,5"),
        build_settings(bokeh_shape="hex"),
        replace(base, mask=replace(base.mask, smoothing=0.5)),
        replace(base, guards=replace(base.guards, face_interval=3)),
    ):
        assert not any(j.done for j in make_plan(discover(root), out, changed)), changed
    assert not any(j.done for j in make_plan(discover(root), out, base, "best"))
    assert all(j.done for j in make_plan(discover(root), out, build_settings(threads=3)))
    # touched input, deleted output, broken sidecar -> that one
    a, b, c = jobs
    os.utime(a.src, ns=(a.mtime_ns + 10**9, a.mtime_ns + 10**9))
    b.dst.unlink()
    c.sidecar.write_text("{not json")
    assert [j.done for j in make_plan(discover(root), out, Settings())] == [False, False, False]
    assert not is_complete(c)


def test_batch_takes_every_option_blur_has() -> None:
    """One option list: whatever `blurcam blur` can set, a batch can too."""
    from typer.main import get_command

    from blurcam.cli.app import app

    group = get_command(app)
    commands = group.commands  # type: ignore[attr-defined]
    blur = {p.name for p in commands["blur"].params}
    batch = {p.name for p in commands["batch"].params}
    assert blur - batch == {"output", "force"}  # batch skips complete outputs instead


def test_batch_cli_reruns_a_file_when_a_guard_changes(tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    cv2.imwrite(str(root / "a.png"), synthetic_frame(96, 64))
    out = tmp_path / "out"
    assert main(["batch", str(root), str(out)]) == 0
    first = (out / "a.png").stat().st_mtime_ns
    assert main(["batch", str(root), str(out)]) == 0
    assert (out / "a.png").stat().st_mtime_ns == first  # complete: skipped
    assert main(["batch", str(root), str(out), "--no-face-guard", "--people", "main"]) == 0
    assert (out / "a.png").stat().st_mtime_ns != first


def test_interrupt_loses_only_files_in_flight_and_resumes(tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    for k in range(3):
        make_video(root / f"v{k}.mp4", frames=10)
    out = tmp_path / "out"

    def stop_after_first(t: Tick) -> None:
        if t.result is not None:
            raise KeyboardInterrupt

    rep = run_batch(make_plan(discover(root), out, Settings()), workers=2, on_tick=stop_after_first)
    assert rep.interrupted
    # the other worker may finish its file while being stopped: then it is done too
    done, stopped = rep.count("done"), rep.count("interrupted")
    assert done >= 1 and stopped >= 1 and done + stopped == 3
    assert rep.summary()["interrupted"] == stopped and rep.summary()["stopped_early"]
    assert not list(out.glob(".*.part*")), "an interrupted worker left its temporary"
    # whatever exists now is complete (recorded) or absent; a rerun does exactly the rest
    jobs = make_plan(discover(root), out, Settings())
    complete = sum(j.done for j in jobs)
    reported_done = {Path(f.input).name for f in rep.files if f.status == "done"}
    assert reported_done <= {j.src.name for j in jobs if j.done}
    for j in jobs:
        assert j.done or not j.sidecar.exists()
    rep2 = run_batch(jobs, workers=1)
    assert rep2.count("done") == 3 - complete and rep2.count("skipped") == complete
    assert all(stream_summary(out / f"v{k}.mp4")["frames"] == 10 for k in range(3))


@pytest.mark.slow
def test_killed_worker_loses_only_its_files_and_they_are_retried(tmp_path: Path) -> None:
    root = tmp_path / "in"
    root.mkdir()
    for k in range(3):
        make_video(root / f"v{k}.mp4", frames=30)
    out = tmp_path / "out"
    killed: list[int] = []

    def kill_a_worker(t: Tick) -> None:
        if not killed and t.frames_done > 0:  # a worker is mid-file
            for p in mp.active_children():
                if p.pid and p.is_alive():
                    os.kill(p.pid, signal.SIGKILL)
                    killed.append(p.pid)
                    break

    rep = run_batch(
        make_plan(discover(root), out, Settings()), workers=2, retry=1, on_tick=kill_a_worker
    )
    assert killed
    assert [f.status for f in rep.files] == ["done"] * 3, [f.error for f in rep.files]
    assert max(f.attempts for f in rep.files) == 2
    assert all(stream_summary(out / f"v{k}.mp4")["frames"] == 30 for k in range(3))


def test_a_worker_stopped_alone_costs_one_attempt(tmp_path: Path) -> None:
    """SIGTERM to one worker (not its driver) interrupts its file, which is retried: the
    driver must not take the worker's interrupt for its own Ctrl-C."""
    root = tmp_path / "in"
    root.mkdir()
    for k in range(2):
        make_video(root / f"v{k}.mp4", frames=120, size=(320, 240))
    out = tmp_path / "out"
    stopped: list[int] = []

    def stop_a_worker(t: Tick) -> None:
        if not stopped and t.frames_done > 0:  # a worker is mid-file
            for p in mp.active_children():
                if p.pid and p.is_alive() and p.name.startswith("SpawnProcess"):
                    os.kill(p.pid, signal.SIGTERM)
                    stopped.append(p.pid)
                    break

    rep = run_batch(
        make_plan(discover(root), out, Settings()), workers=2, retry=1, on_tick=stop_a_worker
    )
    assert stopped and not rep.interrupted
    assert [f.status for f in rep.files] == ["done", "done"], [f.error for f in rep.files]
    assert max(f.attempts for f in rep.files) == 2
    assert not list(out.glob(".*.part*"))


def _truncated(root: Path) -> Path:
    """A Matroska file cut in half: the first frames decode, the header announces 30."""
    full = make_video(root / "full.mkv", frames=30)
    half = root / "half.mkv"
    half.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    full.unlink()
    return half


def test_truncated_input_is_done_with_a_warning_and_the_frame_total_ends_true(
    tmp_path: Path,
) -> None:
    """Item 6: the worker's warning comes back in the result and the report, and the
    frames total (30 from the header) ends at what was processed."""
    root = tmp_path / "in"
    root.mkdir()
    _truncated(root)
    make_video(root / "whole.mp4", frames=10)
    ticks: list[Tick] = []
    rep = run_batch(make_plan(discover(root), tmp_path / "out", Settings()), on_tick=ticks.append)
    half, whole = rep.files
    assert half.status == "done" and 0 < half.frames < 30
    assert len(half.warnings) == 1 and "truncated" in half.warnings[0], half.warnings
    assert whole.warnings == []
    assert ticks[0].frames_total == 40
    assert ticks[-1].frames_total == ticks[-1].frames_done == half.frames + 10
    summary = rep.summary()
    assert summary["warnings"] == [{"input": half.input, "warnings": half.warnings}]


def test_cli_batch_prints_warnings_and_reports_them(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "in"
    root.mkdir()
    _truncated(root)
    out = tmp_path / "out"
    assert main(["batch", str(root), str(out), "--workers", "1"]) == 0
    err = capfd.readouterr().err
    assert "warning" in err and "truncated" in err, err
    data = json.loads((out / "blurcam-report.json").read_text())
    assert "truncated" in data["files"][0]["warnings"][0]


def test_transient_failure_is_retried_then_reported(tmp_path: Path) -> None:
    root = _archive(tmp_path / "in", corrupt=False)
    out = tmp_path / "out"
    jobs = make_plan(discover(root), out, Settings())
    # the output folder of b.mp4 turns into a file after planning: every attempt fails
    shutil.rmtree(out / "talks" / "day1")
    (out / "talks" / "day1").write_text("in the way")
    rep = run_batch(jobs, workers=1, retry=2)
    b = next(f for f in rep.files if f.input.endswith("b.mp4"))
    assert b.status == "failed" and b.attempts == 3
    assert "does not exist" in (b.error or "") or "day1" in (b.error or "")
    assert _statuses(rep)["a.mp4"] == "done"


# ----------------------------------------------------------- split + stitch
def test_plan_segments_cut_on_keyframes(tmp_path: Path) -> None:
    src = make_video(tmp_path / "k.mp4", frames=48, fps=12, codec="mpeg4")  # keyframe every 12
    segs = plan_segments(src, 4)
    assert len(segs) == 4
    assert segs[0].start is None and segs[-1].end is None
    for a, b in itertools.pairwise(segs):
        assert a.end == b.start
    assert plan_segments(src, 1) == [Segment(0, None, None)]


def test_split_and_stitch_matches_single_process(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    make_video(tmp_path / "in" / "long.mp4", frames=24, fps=12, codec="mpeg4")  # keyframe/s
    (tmp_path / "one").mkdir()
    one = tmp_path / "one" / "long.mp4"
    # quality best: less encoding noise in the comparison below
    single = blur_file(tmp_path / "in" / "long.mp4", one, Settings(), quality="best")
    split = run_batch(
        make_plan(discover(tmp_path / "in"), tmp_path / "two", Settings(), "best"),
        workers=2,
        split_min=1.0,
        work_dir=tmp_path / "two" / ".blurcam" / "parts",
    )
    assert single == 24
    assert split.files[0].parts == 2 and split.files[0].status == "done", split.files[0].error
    a = stream_summary(one)
    b = stream_summary(tmp_path / "two" / "long.mp4")
    assert b["frames"] == a["frames"] == 24 == split.files[0].frames
    assert b["audio"] == a["audio"] == "aac"
    assert b["audio_packets"] == a["audio_packets"]
    assert b["size"] == a["size"] and b["fps"] == a["fps"]
    assert _pts(tmp_path / "two" / "long.mp4") == _pts(one)  # same timestamps, exactly
    # same pictures in the same order: the disc (kept sharp) is where the single run has it
    xa = [_disc_x(f) for f in _frames(one)]
    xb = [_disc_x(f) for f in _frames(tmp_path / "two" / "long.mp4")]
    step = (xa[-1] - xa[0]) / (len(xa) - 1)  # it moves ~2 px a frame
    assert step > 1.5
    err = [abs(p - q) for p, q in zip(xa, xb, strict=True)]
    assert sum(err) / len(err) < 0.3 * step and max(err) < step, err  # a frame off would show
    assert not list((tmp_path / "two" / ".blurcam" / "parts").iterdir()), "parts left behind"
    # the stitched file is complete: a rerun skips it
    assert make_plan(discover(tmp_path / "in"), tmp_path / "two", Settings(), "best")[0].done
    assert not make_plan(discover(tmp_path / "in"), tmp_path / "two", Settings())[0].done


def test_blur_file_with_workers_splits_a_long_video(tmp_path: Path) -> None:
    from blurcam import split as parallel

    src = make_video(tmp_path / "long.mp4", frames=36, fps=12, codec="mpeg4")  # keyframe/s
    assert parallel.parallel_parts(3.0, 2, tmp_path / "o.mp4") == 1  # < 2 x 30 s: whole
    assert parallel.parallel_parts(3.0, 2, tmp_path / "o.mp4", 1.0) == 2
    assert parallel.parallel_parts(3.0, 8, tmp_path / "o.mp4", 1.0) == 3
    assert parallel.parallel_parts(3.0, 2, tmp_path / "o.avi", 1.0) == 1  # cannot be stitched
    one = tmp_path / "one.mp4"
    two = tmp_path / "two.mp4"
    seen: list[int] = []
    assert blur_file(src, one, Settings(), quality="best") == 36
    s = Settings()
    n = blur_file(src, two, s, quality="best", workers=2, split_min=1.0, progress=seen.append)
    assert n == 36 and seen[-1] == 36
    a, b = stream_summary(one), stream_summary(two)
    assert b["frames"] == a["frames"] == 36 and b["audio_packets"] == a["audio_packets"]
    assert _pts(two) == _pts(one)
    xa = [_disc_x(f) for f in _frames(one)]
    xb = [_disc_x(f) for f in _frames(two)]
    step = (xa[-1] - xa[0]) / (len(xa) - 1)
    err = [abs(p - q) for p, q in zip(xa, xb, strict=True)]
    assert max(err) < step, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mp4", "one.mp4", "two.mp4"]


def test_split_path_equals_whole_file_for_a_rotated_odd_sized_video(tmp_path: Path) -> None:
    """A phone clip (display matrix rotate=90, odd size) split into parts equals one process.

    Regression: the parts were written sideways and cropped to even sizes
    (a 64 s 480x270 rotate=90 clip came out 480x270, the person on its side).
    Settings without history (no smoothing, hold, still reuse or face
    tracks), so that the restart at the cut cannot differ; the parts are
    encoded separately without B-frames, so pixels agree to encoding noise.
    """
    from dataclasses import replace

    from blurcam.settings import Settings

    src = make_video(
        tmp_path / "phone.mp4", frames=36, size=(161, 91), fps=12, codec="mpeg4", rotation=90
    )
    assert len(plan_segments(src, 2)) == 2  # keyframe/s: the clip does cut in two
    base = Settings()
    settings = replace(
        base,
        mask=replace(base.mask, smoothing=0, still_reuse=0),
        guards=replace(base.guards, face=False),
    )
    one, two = tmp_path / "one.mp4", tmp_path / "two.mp4"
    assert blur_file(src, one, settings, quality="best") == 36
    assert blur_file(src, two, settings, quality="best", workers=2, split_min=1.0) == 36
    with av.open(str(src)) as c:
        stored = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    a, b = _frames(one), _frames(two)
    assert len(a) == len(b) == 36
    assert {f.shape for f in a} == {f.shape for f in b} == {(161, 91, 3)}  # upright, odd, exact
    assert _pts(two) == _pts(one)
    for path in (one, two):
        with av.open(str(path)) as c:
            assert next(iter(c.decode(video=0))).rotation == 0  # upright pixels, no matrix
    for x, y, raw in zip(a, b, stored, strict=True):
        x16, y16 = x.astype(np.int16), y.astype(np.int16)
        assert np.abs(x16 - y16).mean() < 4  # encoding noise only
        right = np.abs(y16 - np.rot90(raw, 1)).mean()  # 90 degrees counter-clockwise
        wrong = np.abs(y16 - np.rot90(raw, 3)).mean()
        assert right < wrong / 2, (right, wrong)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.mp4", "phone.mp4", "two.mp4"]


# ------------------------------------------------------------------- CLI
def test_cli_batch_report_and_exit_codes(tmp_path: Path) -> None:
    root = _archive(tmp_path / "in")
    out = tmp_path / "out"
    report = tmp_path / "r.json"
    args = ["--report", str(report), "--retry", "0", "--workers", "1"]
    assert main(["batch", str(root), str(out), *args]) == 1
    data = json.loads(report.read_text())
    assert data["summary"]["done"] == 3 and data["summary"]["failed"] == 1
    assert {f["status"] for f in data["files"]} == {"done", "failed"}
    assert all({"frames", "seconds", "fps", "x_realtime"} <= set(f) for f in data["files"])
    (root / "talks" / "broken.mp4").unlink()
    assert main(["batch", str(root), str(out), "--workers", "2"]) == 0
    data = json.loads((out / "blurcam-report.json").read_text())
    assert data["summary"]["skipped"] == 3 and data["summary"]["done"] == 0
    assert main(["batch", str(root), str(out), "--strength", "3"]) == 2


def test_blur_file_keeps_tracking_jobs_in_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tracked keep region or the main person would restart at every cut: no split."""
    from dataclasses import replace

    from blurcam import jobs

    src = make_video(tmp_path / "long.mp4", frames=36, fps=12, codec="mpeg4")
    calls: list[int] = []
    real = jobs.blur_parallel

    def spy(*a: object, **kw: object) -> object:
        calls.append(1)
        return real(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(jobs, "blur_parallel", spy)
    base = Settings()
    main = replace(base, guards=replace(base.guards, people="main"))
    assert blur_file(src, tmp_path / "main.mp4", main, workers=2, split_min=1.0) == 36
    assert calls == []
    assert blur_file(src, tmp_path / "all.mp4", base, workers=2, split_min=1.0) == 36
    assert calls == [1]
