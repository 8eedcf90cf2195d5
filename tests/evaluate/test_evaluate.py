"""Metrics on hand-made masks, dataset discovery, the runner and ``blurcam eval``."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blurcam.cli.app import main
from blurcam.errors import SourceError
from blurcam.evaluate import compare, datasets, metrics, runner
from blurcam.testing import disc_mask, synthetic_frame


def rect(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 255
    return m


# ------------------------------------------------------------------ metrics
def test_iou_of_two_known_rectangles() -> None:
    a = rect(100, 100, 10, 50, 10, 50)  # 40x40 = 1600
    b = rect(100, 100, 30, 70, 30, 70)  # 40x40, overlap 20x20 = 400
    assert metrics.iou(a, b) == pytest.approx(400 / (1600 + 1600 - 400))
    assert metrics.iou(a, a) == 1.0
    assert metrics.iou(a, rect(100, 100, 60, 90, 60, 90)) == 0.0
    assert metrics.iou(np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8)) == 1.0


def test_iou_accepts_float_and_bool_masks() -> None:
    a = rect(50, 50, 0, 25, 0, 50)
    assert metrics.iou(a.astype(np.float32) / 255.0, a > 0) == 1.0
    soft = a.astype(np.float32) / 255.0 * 0.4  # all below one half -> empty
    assert metrics.iou(soft, a) == 0.0


def test_boundary_f_identical_shifted_and_tolerance() -> None:
    gt = rect(200, 200, 50, 150, 50, 150)
    assert metrics.boundary_f(gt, gt) == 1.0
    tol = metrics.boundary_tolerance(gt.shape)
    assert tol == 2  # ceil(0.005 * 282.8)
    near = np.roll(gt, tol, axis=1)  # within tolerance: every boundary pixel matches
    far = np.roll(gt, 10, axis=1)
    assert metrics.boundary_f(near, gt) == pytest.approx(1.0)
    f_far = metrics.boundary_f(far, gt)
    assert 0.0 < f_far < 0.8
    assert metrics.boundary_f(far, gt, tolerance=10) == pytest.approx(1.0)


def test_boundary_f_empty_cases_and_frame_edge() -> None:
    empty = np.zeros((40, 40), np.uint8)
    full = np.full((40, 40), 255, np.uint8)
    assert metrics.boundary_f(empty, empty) == 1.0
    assert metrics.boundary_f(full, full) == 1.0  # the image border is not a boundary
    assert metrics.boundary_f(rect(40, 40, 10, 30, 10, 30), empty) == 0.0


def test_dtssd_zero_for_perfect_positive_for_flicker() -> None:
    g0 = disc_mask(cx=0.4)
    g1 = disc_mask(cx=0.45)
    assert metrics.dtssd(g0, g1, g0, g1) == 0.0
    # a prediction that is always off by the same amount does not flicker either
    off = metrics.as_unit(g0) * 0.8
    off1 = metrics.as_unit(g1) * 0.8 + 0.0
    assert metrics.dtssd(off, off1, g0, g1) > 0.0  # scaled change != true change
    assert metrics.dtssd(np.roll(g0, 3, 1), np.roll(g1, 3, 1), g0, g1) > 0.0
    # truth stands still, prediction blinks: flicker = 100 * sqrt(share of blinking pixels)
    still = rect(100, 100, 20, 80, 20, 80)
    blink = still.copy()
    blink[20:30, 20:80] = 0  # 600 of 10000 pixels switch off
    assert metrics.dtssd(still, blink, still, still) == pytest.approx(100 * np.sqrt(0.06))


def test_temporal_change_ignores_true_motion() -> None:
    g0, g1 = rect(50, 50, 10, 40, 10, 30), rect(50, 50, 10, 40, 15, 35)
    assert metrics.temporal_change(g0, g1, g0, g1) == 0.0
    assert metrics.temporal_change(g0, g1) > 0.0  # without truth every pixel counts
    p1 = g1.copy()
    p1[0:5, 0:5] = 255  # a blink where the truth is still background
    assert metrics.temporal_change(g0, p1, g0, g1) > 0.0


def test_far_false_positives_counts_only_person_far_from_the_truth() -> None:
    gt = rect(200, 300, 50, 150, 100, 200)  # diagonal 360.6 px: 2% = 7.2 px
    assert metrics.far_false_positives(gt, gt) == 0.0
    near = np.roll(gt, 6, axis=1)  # an edge 6 px off is not far
    assert metrics.far_false_positives(near, gt) == 0.0
    blob = gt.copy()
    blob[10:20, 250:280] = 255  # 300 px of "person" on the wall, 50 px from the truth
    assert metrics.far_false_positives(blob, gt) == pytest.approx(300 / (200 * 300))
    assert metrics.far_false_positives(np.roll(gt, 10, axis=1), gt) > 0.0
    empty = np.zeros_like(gt)
    assert metrics.far_false_positives(empty, gt) == 0.0
    assert metrics.far_false_positives(gt, empty) == pytest.approx(100 * 100 / (200 * 300))


@settings(max_examples=30, deadline=None)
@given(
    st.integers(8, 60),
    st.integers(8, 60),
    st.integers(0, 2**31 - 1),
)
def test_metrics_are_bounded_and_symmetric(h: int, w: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = (rng.random((h, w)) > 0.5).astype(np.uint8) * 255
    b = (rng.random((h, w)) > 0.5).astype(np.uint8) * 255
    i, f = metrics.iou(a, b), metrics.boundary_f(a, b)
    assert 0.0 <= i <= 1.0 and 0.0 <= f <= 1.0
    assert i == metrics.iou(b, a)
    assert f == pytest.approx(metrics.boundary_f(b, a))
    assert metrics.dtssd(a, b, a, b) == 0.0


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.iou(np.zeros((4, 4)), np.zeros((4, 5)))


# ------------------------------------------------------------------ datasets
def write_dataset(
    root: Path, *, photos: int = 2, seqs: int = 2, frames: int = 3, ext: str = ".jpg"
) -> Path:
    """images/+masks/ set and <seq>/frames/+<seq>/masks/ sets, like ../shared/data."""
    img_dir, msk_dir = root / "portraits" / "images", root / "portraits" / "masks"
    img_dir.mkdir(parents=True)
    msk_dir.mkdir(parents=True)
    for i in range(photos):
        cx = 0.4 + 0.1 * i
        cv2.imwrite(str(img_dir / f"{i:05d}{ext}"), synthetic_frame(160, 120, cx=cx))
        cv2.imwrite(str(msk_dir / f"{i:05d}.png"), disc_mask(160, 120, cx=cx))
    for s in range(seqs):
        fd, md = root / "video" / f"seq{s}" / "frames", root / "video" / f"seq{s}" / "masks"
        fd.mkdir(parents=True)
        md.mkdir(parents=True)
        for k in range(frames):
            cx = 0.35 + 0.05 * k
            cv2.imwrite(str(fd / f"{k:05d}{ext}"), synthetic_frame(160, 90, cx=cx))
            cv2.imwrite(str(md / f"{k:05d}.png"), disc_mask(160, 90, cx=cx))
    return root


def test_discover_finds_image_and_video_sets(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data", photos=3, seqs=2, frames=4)
    (root / "video" / "seq0" / "frames" / "00009.jpg").write_bytes(
        (root / "video" / "seq0" / "frames" / "00000.jpg").read_bytes()
    )  # a frame without a mask stays in the sequence, unscored
    (root / "portraits" / "masks" / "99999.png").write_bytes(b"orphan")  # ignored
    sets = datasets.discover(root)
    assert [(d.name, d.kind) for d in sets] == [("portraits", "images"), ("video", "video")]
    portraits, video = sets
    assert portraits.frames == 3 and len(portraits.sequences) == 3
    assert [s.name for s in video.sequences] == ["seq0", "seq1"]
    assert len(video.sequences[0].items) == 5 and video.sequences[0].scored == 4
    assert video.sequences[0].items[-1].mask is None
    assert video.limited(2).frames == 4 and portraits.limited(1).frames == 1


def test_discover_on_one_sequence_and_errors(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "d", photos=1, seqs=1, frames=2)
    [one] = datasets.discover(root / "video" / "seq0")
    assert one.kind == "video" and one.frames == 2
    with pytest.raises(SourceError, match="not found"):
        datasets.discover(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no evaluation set"):
        datasets.discover(tmp_path / "empty")


# ------------------------------------------------------------------ runner
def test_runner_scores_a_perfect_and_a_flickering_predictor(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data", photos=2, seqs=1, frames=4, ext=".png")
    sets = datasets.discover(root)

    def perfect() -> runner.Predictor:
        def predict(frame: np.ndarray) -> np.ndarray:
            return (np.abs(frame.astype(np.int16) - (40, 90, 200)).sum(axis=2) < 60) * 255

        return predict

    built = []

    def blinking() -> runner.Predictor:
        state = {"n": 0}
        built.append(state)

        def predict(frame: np.ndarray) -> np.ndarray:
            state["n"] += 1
            m = perfect()(frame).astype(np.uint8)
            return m if state["n"] % 2 else np.zeros_like(m)

        return predict

    good = runner.evaluate(sets, perfect)
    assert good.overall()["miou"] == 1.0 and good.overall()["boundary_f"] == 1.0
    assert good.datasets[1].flicker == 0.0
    bad = runner.evaluate(sets, blinking)
    assert len(built) == 3  # one predictor per photo and per sequence
    assert bad.datasets[1].flicker > 20.0
    assert bad.datasets[1].miou < good.datasets[1].miou
    d = bad.to_dict()
    assert d["datasets"][1]["sequences"][0]["scored"] == 4
    assert "worst" in d["datasets"][0]


def _report(name: str, per_seq: dict[str, tuple[float, float, float, float]]) -> runner.EvalReport:
    """A report of one video set whose sequences score (IoU, BF, dtSSD, far FP share)."""
    seqs = []
    for seq, (i, b, d, f) in per_seq.items():
        r = runner.SequenceResult(seq, 2, [i, i], [b, b], [f, f], [d], [0.5])
        seqs.append(r)
    return runner.EvalReport(name, "auto", [], [runner.DatasetResult("davis", "video", seqs)])


def test_compare_fails_a_row_only_where_the_pipeline_is_worse() -> None:
    raw = _report("raw", {"a": (0.70, 0.60, 15.0, 0.01), "b": (0.50, 0.50, 20.0, 0.02)})
    same = compare.compare(raw, raw)
    assert [r.name for r in same] == ["davis", "davis/a", "davis/b"]
    assert compare.failures(same) == []
    # 0.002 below raw is within the slack; BF a hair below is not
    ok = _report("pipeline", {"a": (0.698, 0.60, 14.0, 0.01), "b": (0.6, 0.6, 10.0, 0.0)})
    assert compare.failures(compare.compare(ok, raw)) == []
    bad = _report("pipeline", {"a": (0.70, 0.5999, 15.1, 0.011), "b": (0.495, 0.6, 10.0, 0.0)})
    rows = {r.name: r for r in compare.compare(bad, raw)}
    assert [f.split()[0] for f in rows["davis/a"].failures] == ["BF", "dtSSD", "far"]
    assert [f.split()[0] for f in rows["davis/b"].failures] == ["mIoU"]
    assert rows["davis/a"].pipeline["far_fp_pct"] == pytest.approx(1.1)
    assert len(compare.failures(list(rows.values()))) == 2  # the set's mean is not worse


# ------------------------------------------------------------------ CLI
def test_eval_cli_with_the_bundled_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_dataset(tmp_path / "data", photos=2, seqs=1, frames=3)
    assert main(["eval", str(root), "--json", "--limit", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["predictor"] == "pipeline"
    assert [d["name"] for d in out["datasets"]] == ["portraits", "video"]
    assert out["overall"]["frames"] == 4
    video = out["datasets"][1]
    for key in ("miou", "boundary_f", "flicker_dtssd"):
        assert 0.0 <= video[key] <= 100.0
    assert main(["eval", str(root), "--raw", "--model", "selfie"]) == 0
    text = capsys.readouterr().out
    assert "mIoU" in text and "overall" in text and "seq0" in text


def test_eval_cli_compare_raw_prints_both_and_judges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_dataset(tmp_path / "data", photos=2, seqs=1, frames=3)
    rc = main(["eval", str(root), "--compare", "raw", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["pipeline"]["predictor"] == "pipeline" and out["raw"]["predictor"] == "raw"
    names = [r["name"] for r in out["comparison"]]
    assert names == ["portraits", "video", "video/seq0"]
    assert rc == (1 if out["worse_than_raw"] else 0)
    assert "far_fp_pct" in out["comparison"][0]["raw"]
    rc = main(["eval", str(root), "--compare", "raw"])
    text = capsys.readouterr().out
    assert "seq0" in text and "far FP" in text and "blurcam" in text
    assert main(["eval", str(root), "--compare", "rvm"]) != 0
    assert main(["eval", str(root), "--compare", "raw", "--raw"]) != 0


def test_eval_cli_bad_folder_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(tmp_path / "nope")]) == 4
    err = capsys.readouterr().err
    assert "not found" in err and "Traceback" not in err


@pytest.mark.shared
def test_eval_on_shared_data_smoke(shared_dir: Path) -> None:
    sets = [d.limited(2) for d in datasets.discover(shared_dir / "data")]
    assert {d.name for d in sets} >= {"portraits", "davis"}
    preds = runner.RawPredictors()
    try:
        rep = runner.evaluate(sets, preds)
    finally:
        preds.close()
    assert rep.overall()["miou"] > 0.5


@pytest.mark.shared
def test_pipeline_is_nowhere_worse_than_the_raw_model(
    shared_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The acceptance rule, on every set and every sequence of ../shared/data: mIoU at most
    0.003 below the raw model, boundary F not below, far false positives and dtSSD not above
    (``blurcam eval --compare raw``, the whole run: about 25 s)."""
    rc = main(["eval", str(shared_dir / "data"), "--compare", "raw", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["worse_than_raw"] == [], out["worse_than_raw"]
    assert rc == 0
    names = {r["name"] for r in out["comparison"]}
    assert {"portraits", "humanseg", "davis", "davis/lucia"} <= names
