"""Time every effect through ``Stream`` (``Stream.times``) at 1080p, interleaved, as a table.

Usage (from the repository root; ``taskset -c 0,1`` emulates the 2-core target)::

    taskset -c 0,1 python docs/scripts/effect_timing.py            # fixed mask, no model
    taskset -c 0,1 python docs/scripts/effect_timing.py --model auto

Every configuration gets its own stream and they take turns frame by frame, so
background load hits them alike; the table gives the median and minimum
end-to-end ms per frame and each one's ratio to the plain blur. Without
``--model`` a fixed elliptical mask stands in for the segmenter: the frame
time is then smaller than in real use, so the ratios are pessimistic (the
model's time adds the same to every row). The frame is ``examples/astronaut.png``
scaled to 1920x1080. ``--background VIDEO`` adds a looping-video row;
``--depth-model`` a depth-model row. Face guards are off (they are the same
for every effect).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from blurcam import effects
from blurcam.pipeline import Stream
from blurcam.settings import EffectSettings as E
from blurcam.settings import GuardSettings, SegmentSettings, Settings

ROOT = Path(__file__).resolve().parents[2]


class FixedMask:
    """A segmenter that answers the same soft ellipse (times effects without a model)."""

    name = "fixed"
    input_size = (256, 144)

    def __init__(self) -> None:
        m = np.zeros((144, 256), np.float32)
        cv2.ellipse(m, (128, 100), (60, 80), 0, 0, 360, 1.0, -1)
        self.m = cv2.GaussianBlur(m, (0, 0), 2.0)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        return self.m.copy()

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="real segmenter (auto, selfie, ...); default: fixed mask")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--background", help="a video for a looping-video replace row")
    ap.add_argument("--depth-model", help="an ONNX depth model for a depth-model row")
    args = ap.parse_args()
    img = cv2.resize(cv2.imread(str(ROOT / "examples" / "astronaut.png")), (1920, 1080))
    configs = {
        "blur": E(),
        "bokeh": E(kind="bokeh"),
        "replace": E(kind="replace", light_wrap=0.0),
        "replace + light wrap": E(kind="replace"),
        "replace + wrap + harmonize": E(kind="replace", harmonize=0.5),
        "depth (mask)": E(kind="depth"),
        "blur + keep (tracked)": E(keep_point=(1500, 400)),
        "none": E(kind="none"),
    }
    if args.background:
        configs["replace (video)"] = E(kind="replace", background=args.background)
    if args.depth_model:
        configs["depth (model)"] = E(kind="depth", depth_model=args.depth_model)
    streams = {}
    for name, e in configs.items():
        seg = None if args.model else FixedMask()
        s = Settings(
            effect=e,
            guards=GuardSettings(face=False),
            segment=SegmentSettings(model=args.model or "auto"),
        )
        streams[name] = Stream(s, seg)
    total: dict[str, list[float]] = {k: [] for k in configs}
    effect: dict[str, list[float]] = {k: [] for k in configs}
    plain = "plain blur layer alone (not halo-free; effect stage only)"
    effect[plain] = []
    small = cv2.resize(img, (480, 270), interpolation=cv2.INTER_LINEAR)
    for r in range(args.frames + 10):
        for name, st in streams.items():
            st.process(img)
            if r >= 10:
                total[name].append(sum(st.times.ms.values()))
                effect[name].append(st.times.ms.get("effect", 0.0))
        t0 = time.perf_counter()
        effects.blur_background(img, small, 0.7, None)
        if r >= 10:
            effect[plain].append((time.perf_counter() - t0) * 1000.0)
    base = float(np.median(total["blur"]))
    print("| effect | frame ms (median) | frame ms (min) | effect stage ms | vs blur |")
    print("|---|---:|---:|---:|---:|")
    for name in configs:
        t = np.array(total[name])
        print(
            f"| {name} | {np.median(t):.1f} | {t.min():.1f} | "
            f"{np.median(effect[name]):.1f} | {np.median(t) / base:.2f} |"
        )
    print(f"| {plain} | - | - | {np.median(effect[plain]):.1f} | - |")


if __name__ == "__main__":
    main()
