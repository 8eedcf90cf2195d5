"""Speed where it is hard: blurcam beside the naive recipe, in one run, on moving video.

Rows, per size (720p, 1080p, 4K by default):

* **moving, model on every frame** (the headline): consecutive frames of a
  moving clip, with the still gate off so the model runs on every frame, as
  it does when people talk, nod and gesture. ``one by one`` is
  :meth:`Stream.process` per frame (the latency a caller feels);
  ``pipelined`` is :meth:`Stream.process_iter` (what a file job gets).
* **still clip, still gate on** (an extra row, labelled): one frame repeated,
  with the defaults, so the model runs only when the gate lets it.

The *naive reference* is the common Python recipe (MediaPipe's selfie
segmentation sample): the same model with the same threads, the
probability resized to the frame, a full-resolution ``cv2.GaussianBlur``
with a 55x55 kernel and ``np.where(np.stack((mask,) * 3, -1) > 0.5, frame,
blurred)``. It runs on the same frames, in blocks alternating with blurcam's,
so background load hits both alike and the ratio holds when the absolute
numbers drift.

The clip is ``--clip`` (a video, or a folder of frames), else the
talking-head clip of ``../shared/data``, else the bundled sample clip (a pan
and zoom over the astronaut photo). Its frames are decoded once, in order,
and scaled to each size block by block outside the timed region; a clip
shorter than the run is played forward and back, so consecutive frames stay
consecutive. Stage names are read from ``Stream.times.ms``.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import SettingsError, SourceError
from ..frame import U8
from ..io.image import list_images, read_image
from ..io.video import iter_frames
from ..pipeline import Stream
from ..segment import Segmenter, open_for
from ..settings import EFFECTS, Settings, build_settings

__all__ = [
    "SIZES",
    "NaiveReference",
    "clip_frames",
    "default_clip",
    "find_data",
    "parse_sizes",
    "planned_frames",
    "run_bench",
    "summarize",
]

log = logging.getLogger(__name__)

SIZES: dict[str, tuple[int, int]] = {
    "720p": (1280, 720),
    "1080p": (1920, 1080),
    "4k": (3840, 2160),
}
NAIVE_KERNEL = 55
BLOCK = 40  # frames per block: blurcam one by one, naive, pipelined take turns per block
WARMUP = 5  # frames through each before timing (model and buffers warm)
PIPE_FILL = 3  # frames out before a pipelined block is timed (process_iter keeps 2 ahead)
SAMPLE_CLIP = Path(__file__).resolve().parents[3] / "examples" / "astronaut_clip.mp4"


def parse_sizes(text: str) -> list[tuple[str, tuple[int, int]]]:
    """``"720p,1080p,4k"`` or ``"320x180"`` entries -> [(label, (w, h))]."""
    out: list[tuple[str, tuple[int, int]]] = []
    for raw in text.split(","):
        tok = raw.strip().lower()
        if not tok:
            continue
        if tok in SIZES:
            out.append((tok, SIZES[tok]))
            continue
        w, sep, h = tok.partition("x")
        if not sep or not w.isdigit() or not h.isdigit() or int(w) < 16 or int(h) < 16:
            names = ", ".join(SIZES)
            raise SettingsError(f"bad size {raw!r}: use {names} or WIDTHxHEIGHT (>= 16x16)")
        out.append((tok, (int(w), int(h))))
    if not out:
        raise SettingsError("no size given")
    return out


def find_data(explicit: Path | None = None) -> Path | None:
    """The evaluation data folder: ``explicit``, ``$BLURCAM_DATA``, or ``../shared/data``."""
    cands = [explicit] if explicit is not None else []
    if os.environ.get("BLURCAM_DATA"):
        cands.append(Path(os.environ["BLURCAM_DATA"]))
    cands += [
        Path.cwd().parent / "shared" / "data",
        Path(__file__).resolve().parents[3].parent / "shared" / "data",  # editable checkout
    ]
    for c in cands:
        if c is not None and c.is_dir():
            return c
    return None


def default_clip(data: Path | None) -> Path | None:
    """The talking-head clip of the data folder, else the bundled sample clip (or None)."""
    if data is not None:
        clip = data / "clips" / "portrait_segmentation_test.mp4"
        if clip.is_file():
            return clip
    return SAMPLE_CLIP if SAMPLE_CLIP.is_file() else None


def _synthetic(n: int, size: tuple[int, int] = (640, 360)) -> list[U8]:
    """A textured background with a head-and-shoulders blob moving sideways."""
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    base = np.empty((h, w, 3), np.uint8)
    base[..., 0] = x * 0.6 + y * 0.4
    base[..., 1] = ((np.arange(w)[None, :] // 24 + np.arange(h)[:, None] // 24) % 2) * 160 + 40
    base[..., 2] = 255 - x
    out = []
    for i in range(n):
        f = base.copy()
        cx = int(w * (0.3 + 0.4 * i / max(1, n - 1)))
        cv2.ellipse(f, (cx, int(h * 0.42)), (w // 10, h // 5), 0, 0, 360, (60, 110, 190), -1)
        cv2.ellipse(f, (cx, h), (w // 4, h // 3), 0, 180, 360, (90, 60, 50), -1)
        out.append(f)
    return out


def clip_frames(clip: Path | None, n: int) -> tuple[list[U8], str]:
    """Up to ``n`` consecutive frames of ``clip`` (a video or a folder of images) and a label.

    ``None`` gives a synthetic moving scene.

    Raises:
        SourceError: the clip cannot be read or holds no frame.
    """
    if clip is None:
        return _synthetic(n), "synthetic moving scene"
    frames: list[U8] = []
    if clip.is_dir():
        for p in list_images(clip)[:n]:
            frames.append(read_image(p))
    else:
        for f, _ts in iter_frames(clip):
            frames.append(f)
            if len(frames) >= n:
                break
    if not frames:
        raise SourceError(f"{clip}: no frame to time")
    h, w = frames[0].shape[:2]
    return frames, f"{clip} ({len(frames)} consecutive frames, {w}x{h})"


def _consecutive(frames: list[U8], n: int) -> Iterator[U8]:
    """``n`` frames, forward then back as often as needed: every step is to a neighbour."""
    if len(frames) == 1:
        for _ in range(n):
            yield frames[0]
        return
    period = 2 * (len(frames) - 1)
    for k in range(n):
        j = k % period
        yield frames[j if j < len(frames) else period - j]


def _scaled(frames: list[U8], size: tuple[int, int]) -> list[U8]:
    out: list[U8] = []
    for f in frames:
        interp = cv2.INTER_CUBIC if size[0] > f.shape[1] else cv2.INTER_AREA
        out.append(np.ascontiguousarray(cv2.resize(f, size, interpolation=interp), np.uint8))
    return out


class NaiveReference:
    """The common recipe, for comparison only (what blurcam is measured against)."""

    def __init__(self, segmenter: Segmenter, kernel: int = NAIVE_KERNEL) -> None:
        self.segmenter = segmenter
        self.kernel = kernel
        self.ms: dict[str, float] = {}

    def process(self, frame: U8) -> U8:
        h, w = frame.shape[:2]
        t0 = time.perf_counter()
        prob = self.segmenter(frame)
        t1 = time.perf_counter()
        m = cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)
        t2 = time.perf_counter()
        blurred = cv2.GaussianBlur(frame, (self.kernel, self.kernel), 0)
        t3 = time.perf_counter()
        cond = np.stack((m,) * 3, axis=-1) > 0.5
        out: U8 = np.where(cond, frame, blurred)
        t4 = time.perf_counter()
        self.ms = {
            "segment": (t1 - t0) * 1e3,
            "resize": (t2 - t1) * 1e3,
            "blur": (t3 - t2) * 1e3,
            "composite": (t4 - t3) * 1e3,
        }
        return out


def summarize(ms: list[float]) -> dict[str, float]:
    """Median, p95, mean and min of a list of milliseconds."""
    if not ms:
        nan = float("nan")
        return {"median_ms": nan, "p95_ms": nan, "mean_ms": nan, "min_ms": nan}
    a = np.asarray(ms, dtype=np.float64)
    return {
        "median_ms": float(np.median(a)),
        "p95_ms": float(np.percentile(a, 95)),
        "mean_ms": float(a.mean()),
        "min_ms": float(a.min()),
    }


class _Recorder:
    """End-to-end and per-stage times of frames; a stage missing on a frame counts as 0."""

    def __init__(self) -> None:
        self.total: list[float] = []
        self.cpu: list[float] = []
        self.stages: dict[str, list[float]] = {}

    def add(self, total_ms: float, cpu_ms: float, stages: dict[str, float]) -> None:
        n = len(self.total)
        for k, v in stages.items():
            self.stages.setdefault(k, [0.0] * n).append(float(v))
        self.total.append(total_ms)
        self.cpu.append(cpu_ms)
        for times in self.stages.values():
            if len(times) < len(self.total):
                times.append(0.0)

    def result(self) -> dict[str, Any]:
        res: dict[str, Any] = summarize(self.total)
        res["cpu_mean_ms"] = float(np.mean(self.cpu)) if self.cpu else float("nan")
        res["frames"] = len(self.total)
        res["stages"] = {
            k: {"mean_ms": float(np.mean(v)), "median_ms": float(np.median(v))}
            for k, v in self.stages.items()
        }
        return res


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall ms, process CPU ms over all threads) of one call."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3


def _pipelined(stream: Stream, frames: list[U8]) -> tuple[float, float, int]:
    """(wall ms, CPU ms, frames) of ``frames`` through :meth:`Stream.process_iter`, timed
    in steady state: from the frame that comes out once the pipeline is full to the last."""
    marks = [(time.perf_counter(), time.process_time())]
    for _ in stream.process_iter(frames):
        marks.append((time.perf_counter(), time.process_time()))
    first = PIPE_FILL if len(marks) > PIPE_FILL + 2 else 0
    (t0, c0), (t1, c1) = marks[first], marks[-1]
    return (t1 - t0) * 1e3, (c1 - c0) * 1e3, len(marks) - 1 - first


def planned_frames(frames: int, n_sizes: int, effects: bool) -> int:
    """How many frames :func:`run_bench` processes (for a progress bar)."""
    per_size = 3 * (frames + WARMUP) + 3 * (min(frames, BLOCK) + WARMUP)
    return n_sizes * per_size + (len(EFFECTS) * (frames + WARMUP) if effects else 0)


def _row(
    frames: list[U8],
    size: tuple[int, int],
    n: int,
    settings: Settings,
    seg: Segmenter,
    tick: Callable[[int], None],
) -> dict[str, Any]:
    """One workload at one size: blurcam one by one, pipelined, and naive, block by block."""
    one = Stream(settings, seg)
    piped = Stream(settings, seg)
    naive = NaiveReference(seg)
    ours, ref = _Recorder(), _Recorder()
    p_wall = p_cpu = 0.0
    p_frames = runs = 0
    src = _consecutive(frames, n + WARMUP)
    try:
        warm = _scaled([next(src) for _ in range(WARMUP)], size)
        for f in warm:
            one.process(f)
            naive.process(f)
        for _ in piped.process_iter(warm):
            pass
        tick(3 * WARMUP)
        done = 0
        while done < n:
            block = _scaled([next(src) for _ in range(min(BLOCK, n - done))], size)
            for f in block:
                ours.add(*_timed(partial(one.process, f)), dict(one.times.ms))
                runs += one.last_inferred
            for f in block:
                ref.add(*_timed(partial(naive.process, f)), naive.ms)
            wall, cpu, k = _pipelined(piped, block)
            p_wall, p_cpu, p_frames = p_wall + wall, p_cpu + cpu, p_frames + k
            done += len(block)
            tick(3 * len(block))
    finally:
        one.close()
        piped.close()
    a, b = ours.result(), ref.result()
    p = {"ms": p_wall / max(1, p_frames), "cpu_ms": p_cpu / max(1, p_frames), "frames": p_frames}
    return {
        "one_by_one": a,
        "pipelined": p,
        "naive": b,
        "model_runs": runs / max(1, n),
        "x_one_by_one": b["median_ms"] / a["median_ms"],
        "x_pipelined": b["median_ms"] / p["ms"],
    }


def _effects(
    frames: list[U8],
    label: str,
    size: tuple[int, int],
    n: int,
    settings: Settings,
    tick: Callable[[int], None],
) -> list[dict[str, Any]]:
    """Every effect kind one by one on the same moving frames, taking turns block by block.

    A kind that raises (needs a file it has not got...) gets an ``error`` row.
    """
    rows: dict[str, dict[str, Any]] = {k: {"effect": k, "size": label} for k in EFFECTS}
    live: dict[str, tuple[Stream, _Recorder]] = {}
    src = list(_consecutive(frames, n + WARMUP))
    for kind in EFFECTS:
        try:
            stream = Stream(build_settings(settings, effect=kind))
        except Exception as e:  # an effect that cannot run is reported
            rows[kind]["error"] = f"{type(e).__name__}: {e}"
            tick(n + WARMUP)
            continue
        live[kind] = (stream, _Recorder())
    done = 0
    while done < n + WARMUP and live:
        block = _scaled(src[done : done + BLOCK], size)
        for kind in list(live):
            stream, rec = live[kind]
            try:
                for j, f in enumerate(block):
                    wall, cpu = _timed(partial(stream.process, f))
                    if done + j >= WARMUP:
                        rec.add(wall, cpu, {})
            except Exception as e:
                log.warning("effect %s skipped: %s", kind, e)
                rows[kind]["error"] = f"{type(e).__name__}: {e}"
                live.pop(kind)[0].close()
                tick(n + WARMUP - done)
                continue
            tick(len(block))
        done += len(block)
    for kind, (stream, rec) in live.items():
        r = rec.result()
        rows[kind].update({k: r[k] for k in ("median_ms", "p95_ms", "mean_ms", "frames")})
        stream.close()
    out = list(rows.values())
    blur = rows["blur"].get("median_ms")
    for r in out:
        if blur and "median_ms" in r:
            r["vs_blur"] = r["median_ms"] / blur
    return out


def _machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "numpy": np.__version__,
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run_bench(
    *,
    frames: int = 120,
    sizes: list[tuple[str, tuple[int, int]]] | None = None,
    effects: bool = False,
    settings: Settings | None = None,
    clip: Path | None = None,
    data: Path | None = None,
    synthetic: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Time blurcam and the naive reference on a moving clip (and a still one) at every size.

    Returns a JSON-ready dict: ``rows``, one per size and workload
    (``moving``: model on every frame; ``still``: still gate on), each with
    ``one_by_one`` (median/p95/mean and per-stage means), ``pipelined`` (ms
    per frame in steady state), ``naive`` and the ratios ``x_one_by_one`` /
    ``x_pipelined`` (naive median / blurcam); ``effects`` rows (every effect,
    model on every frame, at 1080p when it is among ``sizes``); the machine
    and the load average before and after.

    Raises:
        SettingsError: ``frames`` < 1 or a bad size.
        SourceError: the clip cannot be read.
    """
    if frames < 1:
        raise SettingsError(f"frames must be >= 1, got {frames}")
    sizes = sizes or list(SIZES.items())
    settings = settings or Settings()
    tick = progress or (lambda _n: None)
    source = None if synthetic else (clip or default_clip(find_data(data)))
    moving, where = clip_frames(source, frames)
    every = replace(settings, mask=replace(settings.mask, still_reuse=0))
    load0 = _loadavg()
    t0 = time.perf_counter()
    rows = []
    for label, size in sizes:
        log.info("bench %s %dx%d", label, *size)
        seg = open_for(settings.segment, size)
        try:
            for workload, frs, s, n in (
                ("moving", moving, every, frames),
                ("still", moving[:1], settings, min(frames, BLOCK)),
            ):
                row = _row(frs, size, n, s, seg, tick)
                rows.append(
                    {"size": label, "width": size[0], "height": size[1], "workload": workload}
                    | {"model": seg.name}
                    | row
                )
        finally:
            seg.close()
    eff_rows: list[dict[str, Any]] = []
    if effects:
        labels = dict(sizes)
        label = "1080p" if "1080p" in labels else sizes[0][0]
        eff_rows = _effects(moving, label, labels[label], frames, every, tick)
    return {
        "frames": frames,
        "source": where,
        "workloads": {
            "moving": "consecutive frames of the clip, the model on every frame (still gate off)",
            "still": "the clip's first frame repeated, defaults (the still gate skips the model)",
        },
        "settings": {"model": settings.segment.model, "threads": settings.segment.threads},
        "naive": f"same model and threads, cv2.GaussianBlur {NAIVE_KERNEL}x{NAIVE_KERNEL} at full "
        "resolution, np.where composite with the raw mask > 0.5",
        "machine": _machine(),
        "loadavg_before": load0,
        "loadavg_after": _loadavg(),
        "seconds": round(time.perf_counter() - t0, 1),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": rows,
        "effects": eff_rows,
    }
