"""Speed: blurcam's ms/frame per stage and end to end, beside a naive reference, in one run.

The *naive reference* is the common Python recipe (MediaPipe's selfie
segmentation sample): the same model, the probability resized to the frame,
a full-resolution ``cv2.GaussianBlur`` with a 55x55 kernel, and
``np.where(np.stack((mask,) * 3, -1) > 0.5, frame, blurred)``. Both run on the
same frames, in alternating blocks of frames, so background load on a shared
machine hits both alike and the ratio stays meaningful when the absolute
numbers do not.

Frames are real ones (the talking-head clip or DAVIS frames from a
``../shared/data``-like folder) upscaled to each size, else synthetic. Decode
and upscaling are outside the timed region. Stage names are read from
``Stream.times.ms``, so stages added to the pipeline show up by themselves.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from ..errors import SettingsError
from ..pipeline import Stream
from ..segment import Segmenter, open_segmenter
from ..segment.registry import resolve_model
from ..settings import EFFECTS, EffectSettings, Settings

__all__ = [
    "SIZES",
    "NaiveReference",
    "find_data",
    "parse_sizes",
    "planned_frames",
    "run_bench",
    "source_frames",
    "summarize",
]

log = logging.getLogger(__name__)

U8 = NDArray[np.uint8]

SIZES: dict[str, tuple[int, int]] = {
    "720p": (1280, 720),
    "1080p": (1920, 1080),
    "4k": (3840, 2160),
}
NAIVE_KERNEL = 55
DISTINCT = 12  # distinct source frames cycled (ping-pong) at each size
BLOCK = 20  # frames per alternating block (blurcam one by one, naive)
PIPE_BLOCK = 40  # frames per pipelined block, after every 40 one-by-one and 40 naive frames
PIPE_FILL = 3  # frames out before a pipelined block is timed (process_iter keeps 2 ahead)


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


def _clip_frames(path: Path, n: int, skip: int = 30) -> list[U8]:
    import av

    frames: list[U8] = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i >= skip:
                frames.append(f.to_ndarray(format="bgr24"))
            if len(frames) >= n:
                break
    return frames


def _synthetic(n: int, size: tuple[int, int] = (1280, 720)) -> list[U8]:
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
        cx = int(w * (0.45 + 0.1 * i / max(1, n - 1)))
        cv2.ellipse(f, (cx, int(h * 0.42)), (w // 10, h // 5), 0, 0, 360, (60, 110, 190), -1)
        cv2.ellipse(f, (cx, h), (w // 4, h // 3), 0, 180, 360, (90, 60, 50), -1)
        out.append(f)
    return out


def source_frames(data: Path | None, n: int = DISTINCT) -> tuple[list[U8], str]:
    """``n`` consecutive real frames and where they came from; synthetic when no data."""
    if data is not None:
        clip = data / "clips" / "portrait_segmentation_test.mp4"
        if clip.is_file():
            try:
                frames = _clip_frames(clip, n)
                if frames:
                    return frames, f"{clip} (frames 30-{29 + len(frames)})"
            except Exception as e:  # fall back to other sources
                log.warning("cannot decode %s (%s); trying DAVIS frames", clip, e)
        for seq in sorted(data.glob("davis/*/frames")):
            paths = sorted(seq.glob("*.jpg"))[:n]
            frames = [
                f.astype(np.uint8, copy=False)
                for p in paths
                if (f := cv2.imread(str(p))) is not None
            ]
            if frames:
                return frames, f"{seq} ({len(frames)} frames)"
    return _synthetic(n), "synthetic"


def _scaled(frames: list[U8], size: tuple[int, int]) -> list[U8]:
    out: list[U8] = []
    for f in frames:
        interp = cv2.INTER_CUBIC if size[0] > f.shape[1] else cv2.INTER_AREA
        out.append(np.ascontiguousarray(cv2.resize(f, size, interpolation=interp), np.uint8))
    return out


def _order(k: int, n: int) -> int:
    """Ping-pong index over ``n`` frames, so the cycle has no jump back to the start."""
    if n <= 1:
        return 0
    period = 2 * (n - 1)
    j = k % period
    return j if j < n else period - j


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
        return {"median_ms": float("nan"), "p95_ms": float("nan"), "mean_ms": float("nan")}
    a = np.asarray(ms, dtype=np.float64)
    return {
        "median_ms": float(np.median(a)),
        "p95_ms": float(np.percentile(a, 95)),
        "mean_ms": float(a.mean()),
        "min_ms": float(a.min()),
    }


class _Recorder:
    """End-to-end and per-stage times of one pipeline; stages read from each frame's dict."""

    def __init__(self) -> None:
        self.total: list[float] = []
        self.cpu: list[float] = []
        self.stages: dict[str, list[float]] = {}

    def add(self, total_ms: float, cpu_ms: float, stages: dict[str, float]) -> None:
        n = len(self.total)
        self.cpu.append(cpu_ms)
        for k, v in stages.items():
            self.stages.setdefault(k, [0.0] * n).append(float(v))
        self.total.append(total_ms)
        for times in self.stages.values():  # a stage skipped this frame counts as 0
            if len(times) < len(self.total):
                times.append(0.0)

    def result(self) -> dict[str, Any]:
        stages = {
            k: {
                "median_ms": float(np.median(v)),
                "mean_ms": float(np.mean(v)),
                "p95_ms": float(np.percentile(v, 95)),
            }
            for k, v in self.stages.items()
        }
        res = summarize(self.total)
        if self.total:
            res["other_mean_ms"] = res["mean_ms"] - sum(s["mean_ms"] for s in stages.values())
            cpu = summarize(self.cpu)
            res["cpu_median_ms"], res["cpu_mean_ms"] = cpu["median_ms"], cpu["mean_ms"]
        return {**res, "frames": len(self.total), "stages": stages}


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall ms, process CPU ms over all threads) of one call.

    CPU time is the steadier number on a loaded machine: it does not count
    the time this process waited for a core, only the work it did.
    """
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3, (time.process_time() - c0) * 1e3


def _time_stream(stream: Stream, frame: U8) -> tuple[float, float, dict[str, float]]:
    wall, cpu = _timed(lambda: stream.process(frame))
    return wall, cpu, dict(stream.times.ms)


def _warmup(frames: int) -> int:
    return min(10, max(1, frames // 10))


def planned_frames(frames: int, n_sizes: int, effects: bool) -> int:
    """How many frames :func:`run_bench` will process (for a progress bar)."""
    per = frames + _warmup(frames)
    return n_sizes * 3 * per + (len(EFFECTS) * per if effects else 0)


def _time_pipelined(stream: Stream, frames: list[U8]) -> tuple[float, float]:
    """(wall, CPU) ms per frame of ``frames`` through :meth:`Stream.process_iter`, steady state.

    Timed from the frame that comes out once the pipeline is full to the
    last one: the fill (the first frames' mask stage alone) and the drain
    are a cost of the block, not of a frame, and would otherwise make short
    blocks look slower than a long video runs.
    """
    marks = [(time.perf_counter(), time.process_time())]
    for _ in stream.process_iter(frames):
        marks.append((time.perf_counter(), time.process_time()))
    # a block too short to fill the pipeline is timed whole
    first = PIPE_FILL if len(marks) > PIPE_FILL + 2 else 0
    (t0, c0), (t1, c1) = marks[first], marks[-1]
    n = len(marks) - 1 - first
    return (t1 - t0) * 1e3 / n, (c1 - c0) * 1e3 / n


def _bench_size(
    frames_src: list[U8],
    size: tuple[int, int],
    n: int,
    settings: Settings,
    tick: Callable[[int], None],
) -> dict[str, Any]:
    frames = _scaled(frames_src, size)
    warm = _warmup(n)
    model = resolve_model(settings.segment.model, size)
    seg = open_segmenter(
        model, frame_size=size, threads=settings.segment.threads, device=settings.segment.device
    )
    # one interpreter for both: the model is stateless, and two would run two
    # thread pools that spin against each other on 2 cores and slow both
    stream = Stream(settings, seg)
    naive = NaiveReference(seg)
    ours, ref = _Recorder(), _Recorder()
    piped: list[float] = []
    piped_cpu: list[float] = []
    runs = 0
    try:
        for k in range(warm):
            f = frames[_order(k, len(frames))]
            stream.process(f)
            naive.process(f)
            tick(2)
        for _ in stream.process_iter([frames[_order(k, len(frames))] for k in range(warm)]):
            tick(1)
        k = warm
        done = 0
        while done < n:
            chunk = min(PIPE_BLOCK, n - done)
            for start in range(0, chunk, BLOCK):
                block = min(BLOCK, chunk - start)
                for j in range(block):
                    ours.add(*_time_stream(stream, frames[_order(k + start + j, len(frames))]))
                    runs += stream.last_inferred
                    tick(1)
                for j in range(block):
                    f = frames[_order(k + start + j, len(frames))]
                    ref.add(*_timed(partial(naive.process, f)), naive.ms)
                    tick(1)
            # the same stream goes on with the next frames, several in flight
            wall, cpu = _time_pipelined(
                stream, [frames[_order(k + chunk + j, len(frames))] for j in range(chunk)]
            )
            piped += [wall] * chunk
            piped_cpu += [cpu] * chunk
            tick(chunk)
            k += 2 * chunk
            done += chunk
    finally:
        stream.close()
        seg.close()
    a, b = ours.result(), ref.result()
    p = summarize(piped)
    p["cpu_mean_ms"] = float(np.mean(piped_cpu))
    return {
        "model": model,
        "blurcam": a,
        "pipelined": p,
        "naive": b,
        "model_runs": runs / n,
        "speedup_median": b["median_ms"] / a["median_ms"] if a["median_ms"] > 0 else None,
        "speedup_pipelined": b["median_ms"] / p["median_ms"] if p["median_ms"] > 0 else None,
        "speedup_p95": b["p95_ms"] / a["p95_ms"] if a["p95_ms"] > 0 else None,
        "speedup_cpu_median": b["cpu_median_ms"] / a["cpu_median_ms"]
        if a["cpu_median_ms"] > 0
        else None,
    }


def _bench_effects(
    frames_src: list[U8],
    label: str,
    size: tuple[int, int],
    n: int,
    settings: Settings,
    tick: Callable[[int], None],
) -> list[dict[str, Any]]:
    """Every effect kind on the same frames, round-robin in blocks so load hits all alike.

    A kind that raises (not built yet, needs a background image...) gets an
    ``error`` row instead of times.
    """
    frames = _scaled(frames_src, size)
    warm = _warmup(n)
    rows: dict[str, dict[str, Any]] = {k: {"effect": k, "size": label} for k in EFFECTS}
    live: dict[str, tuple[Stream, _Recorder]] = {}

    def fail(kind: str, e: Exception, left: int) -> None:
        log.warning("effect %s skipped: %s", kind, e)
        rows[kind]["error"] = f"{type(e).__name__}: {e}"
        tick(left)
        if kind in live:
            live.pop(kind)[0].close()

    for kind in EFFECTS:
        stream: Stream | None = None
        try:
            s = replace(settings, effect=replace(settings.effect, kind=kind))
            stream = Stream(s)
            live[kind] = (stream, _Recorder())
            for k in range(warm):
                stream.process(frames[_order(k, len(frames))])
                tick(1)
        except Exception as e:  # an effect that cannot run is reported
            if stream is not None and kind not in live:
                stream.close()
            fail(kind, e, warm + n)
    k, done = warm, 0
    while done < n and live:
        block = min(BLOCK, n - done)
        for kind in list(live):
            stream, rec = live[kind]
            try:
                for j in range(block):
                    rec.add(*_time_stream(stream, frames[_order(k + j, len(frames))]))
                    tick(1)
            except Exception as e:
                fail(kind, e, n - done - block)
        k += block
        done += block
    for kind, (stream, rec) in live.items():
        rows[kind].update(rec.result())
        stream.close()
    out = list(rows.values())
    blur = rows["blur"] if "median_ms" in rows.get("blur", {}) else None
    for r in out:
        if blur is not None and "median_ms" in r:
            r["vs_blur"] = r["median_ms"] / blur["median_ms"]
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
        "opencv_threads": cv2.getNumThreads(),
        "numpy": np.__version__,
    }


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run_bench(
    *,
    frames: int = 200,
    sizes: list[tuple[str, tuple[int, int]]] | None = None,
    effects: bool = False,
    effects_size: str | None = None,
    settings: Settings | None = None,
    data: Path | None = None,
    synthetic: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Time blurcam and the naive reference at every size; optionally every effect kind.

    Returns a JSON-ready dict: ``sizes`` rows (``blurcam`` and ``naive`` each
    with median/p95/mean and per-stage times, and ``speedup_median`` =
    naive / blurcam), ``effects`` rows, the machine and the load average
    before and after (other processes on the machine skew absolute times).
    Effects run at ``effects_size`` (default 1080p when it is among
    ``sizes``, else the first size).
    """
    if frames < 1:
        raise SettingsError(f"frames must be >= 1, got {frames}")
    sizes = sizes or list(SIZES.items())
    settings = settings or Settings()
    if not isinstance(settings.effect, EffectSettings):  # pragma: no cover - defensive
        raise SettingsError("settings.effect must be EffectSettings")
    tick = progress or (lambda _n: None)
    src_data = None if synthetic else find_data(data)
    src, source = source_frames(src_data)
    load0 = _loadavg()
    t0 = time.perf_counter()
    rows = []
    for label, size in sizes:
        log.info("bench %s %dx%d", label, *size)
        row = _bench_size(src, size, frames, settings, tick)
        rows.append({"size": label, "width": size[0], "height": size[1], **row})
    eff_rows: list[dict[str, Any]] = []
    if effects:
        labels = dict(sizes)
        label = effects_size or ("1080p" if "1080p" in labels else sizes[0][0])
        esize = labels.get(label) or SIZES.get(label)
        if esize is None:
            esize = parse_sizes(label)[0][1]
        eff_rows = _bench_effects(src, label, esize, frames, settings, tick)
    return {
        "frames": frames,
        "warmup": _warmup(frames),
        "block": BLOCK,
        "source": source,
        "settings": {
            "model": settings.segment.model,
            "threads": settings.segment.threads,
            "effect": settings.effect.kind,
            "strength": settings.effect.strength,
        },
        "naive": f"same model, cv2.GaussianBlur {NAIVE_KERNEL}x{NAIVE_KERNEL} at full "
        "resolution, np.where composite with the raw mask > 0.5",
        "machine": _machine(),
        "loadavg_before": load0,
        "loadavg_after": _loadavg(),
        "seconds": round(time.perf_counter() - t0, 1),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "sizes": rows,
        "effects": eff_rows,
    }
