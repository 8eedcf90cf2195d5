"""The codec's share of a file job: decode + conversions + encode with no processing.

Usage: python benchmarks/codec_floor.py IN.mp4 [--quality fast|draft|good|best]

Runs :func:`blurcam.io.video.transcode` with a process function that returns
each frame as it is (same threads, queues and colour conversions as
``blurcam blur``, OpenCV single-threaded as in file jobs) and prints the
wall-clock speed against real time and the process CPU time per frame. On 2
cores, N x real time at F fps allows at most 2000 / (N x F) CPU-ms per frame
for everything: what the codec takes here is what blurcam cannot have.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2

from blurcam.io.video import QUALITY, transcode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("src", type=Path)
    ap.add_argument("--quality", default="fast", choices=list(QUALITY))
    ap.add_argument("--fps", type=float, default=30.0)
    a = ap.parse_args()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        c0, t0 = time.process_time(), time.perf_counter()
        n = transcode(a.src, Path(tmp) / "out.mp4", lambda f: f, quality=a.quality)
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    print(
        f"{a.quality} ({QUALITY[a.quality][0]} crf {QUALITY[a.quality][1]}): {n} frames, "
        f"{n / wall / a.fps:.2f}x real time, {cpu / n * 1000:.1f} CPU-ms per frame"
    )


if __name__ == "__main__":
    main()
