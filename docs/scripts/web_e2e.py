"""Figures and screenshot of docs/WEB.md, from the real-Chromium end-to-end test.

First ``BlurTrack`` alone (no browser, 8 s per layout), then
``tests/test_web_e2e.py``'s page check ``--runs`` times per layout (a drawn
person with the bundled model, the synthetic disc with no model; with
``../shared``, also a real portrait), prints a Markdown table of medians
(min-max) and writes the drawn person's screenshot, shrunk, to
``docs/img/web.jpg``.

    python docs/scripts/web_e2e.py --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

import test_web_e2e as e2e  # noqa: E402
from conftest import SHARED, FakeSegmenter  # noqa: E402

ROWS = [
    ("server work per frame (ms)", lambda f: f["server"]["process_ms"]),
    ("server latency, frame in -> frame out (ms)", lambda f: f["server"]["latency_ms"]),
    ("server output fps", lambda f: f["server"]["fps"]),
    ("model runs on every Nth frame (adaptive)", lambda f: f["server"]["model_every"]),
    (
        "frames dropped as stale (%)",
        lambda f: 100 * f["server"]["dropped"] / f["server"]["frames_in"],
    ),
    ("page: decoded fps", lambda f: f["fps_in_page"]),
    ("page: round trip, blur on (frames @30)", lambda f: f["lag_frames_on_median"]),
    ("page: round trip, blur off (frames @30)", lambda f: f["lag_frames_off_median"]),
    ("page: jitter buffer (ms)", lambda f: f["jitter_buffer_ms"]),
    ("page: network rtt (ms)", lambda f: f["rtt_ms"]),
    ("page open -> first output frame (s)", lambda f: f["first_frame_s"]),
]


def cell(values: list[float]) -> str:
    v = [x for x in values if x is not None]
    if not v:
        return "-"
    return f"{statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f})"


def track_bench(layout: Any, seconds: float, factory: Any) -> dict[str, float]:
    """BlurTrack alone, no browser: a 30 fps 640x480 source, a consumer that
    pulls like aiortc's sender (encode ~8 ms simulated); latency percentiles."""
    import asyncio
    import fractions

    import av
    import numpy as np
    from aiortc.mediastreams import MediaStreamTrack

    from blurcam.web import BlurTrack

    class Camera(MediaStreamTrack):
        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self.i = 0
            self.t0 = 0.0

        async def recv(self) -> av.VideoFrame:
            loop = asyncio.get_running_loop()
            if not self.t0:
                self.t0 = loop.time()
            self.i += 1
            await asyncio.sleep(max(0.0, self.t0 + self.i / 30 - loop.time()))
            f = av.VideoFrame.from_ndarray(layout.frame(self.i % 60), format="bgr24")
            f.pts, f.time_base = self.i * 3000, fractions.Fraction(1, 90000)
            return f

    async def run() -> dict[str, float]:
        kw = {} if factory is None else {"segmenter_factory": factory}
        t = BlurTrack(Camera(), **kw)
        lat: list[float] = []
        loop = asyncio.get_running_loop()
        for _ in range(10):  # warm up (model load)
            await t.recv()
        t.stats.latency_ms = 0.0
        n0, d0, i0 = t.stats.frames_out, t.stats.dropped, t.stats.frames_in
        start = loop.time()
        while loop.time() - start < seconds:
            f = await t.recv()
            lat.append(1000 * (loop.time() - t._source.t0 - f.pts / 90000))
            await asyncio.sleep(0.008)  # the encoder's share
        elapsed = loop.time() - start
        st = t.stats
        t.stop()
        await t.wait_closed()
        return {
            "fps": (st.frames_out - n0) / elapsed,
            "dropped_pct": 100 * (st.dropped - d0) / max(1, st.frames_in - i0),
            "process_ms": st.process_ms,
            "p50": float(np.percentile(lat, 50)),
            "p95": float(np.percentile(lat, 95)),
            "model_every": float(st.model_every),
        }

    return asyncio.run(run())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-image", action="store_true", help="do not rewrite docs/img/web.jpg")
    args = ap.parse_args()

    disc = e2e.disc_layout()
    keep = disc.person | disc.code_mask()
    layouts: list[tuple[str, str, Any, Any]] = [
        ("drawn person, bundled model", "web-e2e", e2e.cartoon_layout(), None),
        (
            "disc, no model (fake)",
            "web-e2e-disc",
            disc,
            lambda s, size: FakeSegmenter(mask=keep),
        ),
    ]
    portraits = SHARED / "data" / "portraits"
    if portraits.is_dir():
        layouts.append(
            (
                "real portrait, bundled model",
                "web-e2e-portrait",
                e2e.portrait_layout(
                    portraits / "images" / "00002.jpg", portraits / "masks" / "00002.png"
                ),
                None,
            )
        )
    results: dict[str, list[dict[str, Any]]] = {}
    load = [os.getloadavg()[0]]
    print(
        "| BlurTrack alone, 640x480 @30 fps, 8 s | fps out | dropped % | work ms | "
        "frame in -> out p50 ms | p95 ms | model every |\n|---|---|---|---|---|---|---|"
    )
    for name, _, layout, factory in layouts:
        b = track_bench(layout, 8.0, factory)
        print(
            f"| {name} | {b['fps']:.1f} | {b['dropped_pct']:.0f} | {b['process_ms']:.1f} | "
            f"{b['p50']:.1f} | {b['p95']:.1f} | {b['model_every']:.0f} |"
        )
    print()
    with tempfile.TemporaryDirectory() as tmp:
        for name, tag, layout, factory in layouts:
            for i in range(args.runs):
                load.append(os.getloadavg()[0])
                results.setdefault(name, []).append(e2e.check_page(tag, layout, factory, Path(tmp)))
                print(f"{name}: run {i + 1}/{args.runs} done", file=sys.stderr)
    if not args.no_image:
        shot = cv2.imread(str(e2e.ARTIFACTS / "web-e2e.png"))
        shot = shot[: int(shot.shape[0] * 0.92)]
        small = cv2.resize(shot, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
        out = ROOT / "docs" / "img" / "web.jpg"
        cv2.imwrite(str(out), small, [cv2.IMWRITE_JPEG_QUALITY, 80])
        print(f"wrote {out.relative_to(ROOT)}", file=sys.stderr)
    names = list(results)
    print(
        f"| 640x480 @30 fps, {args.runs} runs each, median (min-max) | " + " | ".join(names) + " |"
    )
    print("|---" * (len(names) + 1) + "|")
    for label, get in ROWS:
        print(
            f"| {label} | " + " | ".join(cell([get(f) for f in results[n]]) for n in names) + " |"
        )
    print(f"\n1-min load average during the runs: {min(load):.1f}-{max(load):.1f} (2 cores)")


if __name__ == "__main__":
    main()
