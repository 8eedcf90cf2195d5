"""Soak test: stream many small synthetic frames through one Stream and watch memory and time.

A tool that sits in front of every video call must not grow or slow down over
hours. This streams ``--frames`` synthetic frames (a disc moving over a
textured background, sizes and settings fixed) through one
:class:`blurcam.pipeline.Stream`, samples the resident set size (RSS) every
``--sample`` frames, and reports:

- the RSS slope after warm-up (least squares, MiB per 10k frames; ~0 is flat),
- per-window median and p99 frame time (wall clock), and the ratio of the
  last window's median to the first's (~1 is steady),
- the same for process CPU time per frame (all threads), which other load on
  a shared machine disturbs far less than wall time.

Usage::

    python benchmarks/soak.py --frames 100000                 # real model (long)
    python benchmarks/soak.py --frames 2000 --fake --json -   # quick, model-free

It exits 1 when ``--max-slope`` (MiB per 10k frames) is given and exceeded;
timing is reported, never asserted (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from blurcam.frame import U8
from blurcam.pipeline import Stream
from blurcam.settings import EffectSettings, SegmentSettings, Settings
from blurcam.testing import FakeSegmenter, synthetic_frame


def rss_mib() -> float:
    """Current resident set size in MiB (Linux /proc; peak RSS elsewhere as a fallback)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):  # pragma: no cover - non-Linux
        import resource

        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return r / 2**20 if sys.platform == "darwin" else r / 1024


def make_frames(w: int, h: int, n: int = 64) -> list[U8]:
    """``n`` frames of a disc moving across stripes + gradient (cycled during the run)."""
    return [
        synthetic_frame(w, h, cx=0.3 + 0.4 * (0.5 + 0.5 * np.sin(2 * np.pi * i / n)))
        for i in range(n)
    ]


@dataclass
class SoakResult:
    frames: int
    size: tuple[int, int]
    model: str
    effect: str
    seconds: float
    rss_start_mib: float  # before the first frame (model not loaded yet)
    rss_warm_mib: float  # at the end of warm-up
    rss_end_mib: float
    rss_max_mib: float
    rss_slope_mib_per_10k: float  # after warm-up
    ms_median: float
    ms_p99: float
    window_median_ms: list[float] = field(default_factory=list)
    window_p99_ms: list[float] = field(default_factory=list)
    last_over_first_median: float = 1.0
    time_slope_pct_per_10k: float = 0.0  # median frame time trend, % of the mean
    cpu_ms_median: float = 0.0
    cpu_window_median_ms: list[float] = field(default_factory=list)
    cpu_last_over_first_median: float = 1.0


def _slope(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    if len(x) < 2 or float(np.ptp(x)) == 0.0:
        return 0.0
    return float(np.polyfit(x, y, 1)[0])


def soak(
    frames: int,
    *,
    size: tuple[int, int] = (160, 96),
    model: str = "auto",
    fake: bool = False,
    effect: str = "blur",
    sample: int = 500,
    windows: int = 10,
    warmup: float = 0.1,
    log: Any = None,
) -> SoakResult:
    """Run the soak and return its figures (see the module docstring)."""
    w, h = size
    settings = Settings(
        segment=SegmentSettings(model=model, threads=2), effect=EffectSettings(kind=effect)
    )
    stream = Stream(settings, FakeSegmenter() if fake else None)
    cycle = make_frames(w, h)
    # np.full touches every page now: np.empty/np.zeros pages would become
    # resident one by one as frames are timed, a harness "leak" of 16 bytes
    # per frame that shows up in the RSS slope.
    times = np.full(frames, np.nan)
    cpu = np.full(frames, np.nan)
    rss_at: list[tuple[int, float]] = []
    gc.collect()
    rss0 = rss_mib()
    t_start = time.perf_counter()
    try:
        for i in range(frames):
            t0, c0 = time.perf_counter(), time.process_time()
            stream.process(cycle[i % len(cycle)])
            times[i] = time.perf_counter() - t0
            cpu[i] = time.process_time() - c0
            if i % sample == 0 or i == frames - 1:
                rss_at.append((i, rss_mib()))
                if log is not None and i % (sample * 20) == 0:
                    print(
                        f"frame {i:>8d}  rss {rss_at[-1][1]:7.1f} MiB  "
                        f"{times[max(0, i - sample) : i + 1].mean() * 1000:6.2f} ms/frame",
                        file=log,
                        flush=True,
                    )
    finally:
        stream.close()
    seconds = time.perf_counter() - t_start
    idx = np.array([i for i, _ in rss_at], np.float64)
    rss = np.array([r for _, r in rss_at], np.float64)
    keep = idx >= warmup * frames
    if not keep.any():
        keep[-1] = True
    rss_warm = float(rss[keep][0])
    slope = _slope(idx[keep], rss[keep]) * 10_000
    ms = times * 1000.0
    n_win = max(1, min(windows, frames // max(1, sample)))
    chunks = np.array_split(ms, n_win)
    med = [float(np.median(c)) for c in chunks]
    p99 = [float(np.percentile(c, 99)) for c in chunks]
    cpu_med = [float(np.median(c)) for c in np.array_split(cpu * 1000.0, n_win)]
    centres = np.array([(k + 0.5) * frames / n_win for k in range(n_win)])
    t_slope = _slope(centres, np.array(med)) * 10_000 / max(1e-9, float(np.mean(med))) * 100
    return SoakResult(
        frames=frames,
        size=size,
        model="disc (fake)" if fake else model,
        effect=effect,
        seconds=round(seconds, 1),
        rss_start_mib=round(rss0, 1),
        rss_warm_mib=round(rss_warm, 1),
        rss_end_mib=round(float(rss[-1]), 1),
        rss_max_mib=round(float(rss.max()), 1),
        rss_slope_mib_per_10k=round(slope, 3),
        ms_median=round(float(np.median(ms)), 3),
        ms_p99=round(float(np.percentile(ms, 99)), 3),
        window_median_ms=[round(v, 3) for v in med],
        window_p99_ms=[round(v, 3) for v in p99],
        last_over_first_median=round(med[-1] / med[0], 3) if med[0] > 0 else 1.0,
        time_slope_pct_per_10k=round(t_slope, 2),
        cpu_ms_median=round(float(np.median(cpu)) * 1000, 3),
        cpu_window_median_ms=[round(v, 3) for v in cpu_med],
        cpu_last_over_first_median=round(cpu_med[-1] / cpu_med[0], 3) if cpu_med[0] > 0 else 1.0,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--size", default="160x96", help="WxH of the synthetic frames")
    ap.add_argument("--model", default="auto", help="model name or path (ignored with --fake)")
    ap.add_argument("--fake", action="store_true", help="model-free segmenter (fast)")
    ap.add_argument("--effect", default="blur")
    ap.add_argument("--sample", type=int, default=500, help="RSS sample period in frames")
    ap.add_argument("--json", metavar="FILE", help="write the result as JSON ('-' = stdout)")
    ap.add_argument("--max-slope", type=float, help="fail above this MiB per 10k frames")
    a = ap.parse_args(argv)
    w, h = (int(v) for v in a.size.lower().split("x"))
    r = soak(
        a.frames,
        size=(w, h),
        model=a.model,
        fake=a.fake,
        effect=a.effect,
        sample=a.sample,
        log=sys.stderr,
    )
    d = asdict(r)
    if a.json == "-":
        print(json.dumps(d, indent=2))
    elif a.json:
        Path(a.json).write_text(json.dumps(d, indent=2) + "\n")
    print(
        f"{r.frames} frames {w}x{h} model={r.model} in {r.seconds:.0f} s: "
        f"RSS {r.rss_start_mib:.1f} -> {r.rss_warm_mib:.1f} (warm) -> {r.rss_end_mib:.1f} MiB "
        f"(max {r.rss_max_mib:.1f}), "
        f"slope {r.rss_slope_mib_per_10k:+.3f} MiB/10k frames; "
        f"frame median {r.ms_median:.2f} ms, p99 {r.ms_p99:.2f} ms, "
        f"last/first window median {r.last_over_first_median:.2f}, "
        f"trend {r.time_slope_pct_per_10k:+.2f} %/10k frames; "
        f"CPU median {r.cpu_ms_median:.2f} ms, last/first {r.cpu_last_over_first_median:.2f}",
        file=sys.stderr,
    )
    if a.max_slope is not None and r.rss_slope_mib_per_10k > a.max_slope:
        print(f"RSS slope above {a.max_slope} MiB/10k frames", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
