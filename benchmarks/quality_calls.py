"""Synthetic video calls: a portrait swaying slowly through an exposure swing, exact truth.

Usage: python benchmarks/quality_calls.py [--portraits 00002,00008,...] [--frames 90]

Each dev portrait is pasted (exact mask) at 95% height on the inpainted DAVIS
background at 1280x720, moved along a slow sway (6% of the width either side,
90-frame period: a person on a call leaning and settling) while its
brightness ramps 1 -> 0.3 -> 1.7 -> 1 (auto-exposure). Prints mean mIoU,
boundary F and dtSSD (x100) per configuration: the raw model (no temporal
stage, no refinement, no guard, model on every frame), the defaults without
the temporal stage, the defaults without the face guard, and blurcam.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from blurcam.evaluate import metrics, synthetic
from blurcam.pipeline import Stream
from blurcam.settings import GuardSettings, Settings

SHARED = Path(__file__).resolve().parents[2] / "shared"
TEN = "00002,00008,00012,00016,00037,00059,00062,00065,00075,00079"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--portraits", default=TEN)
    ap.add_argument("--frames", type=int, default=90)
    args = ap.parse_args()
    bg = synthetic.load_background(SHARED)
    gains = synthetic.exposure_gains(args.frames)
    path = synthetic.MotionPath(amplitude=0.06, period=90, bob=0.01, scale=0.95)
    on = Settings()
    configs = {
        "raw": replace(
            on,
            guards=GuardSettings(face=False),
            mask=replace(on.mask, smoothing=0.0, refine=False, still_reuse=0),
        ),
        "no temporal stage": replace(on, mask=replace(on.mask, smoothing=0.0)),
        "no face guard": replace(on, guards=GuardSettings(face=False)),
        "blurcam": on,
    }
    scores: dict[str, list[tuple[float, float, float]]] = {k: [] for k in configs}
    for stem in args.portraits.split(","):
        try:
            img, msk = synthetic.load_portrait(SHARED, stem)
        except FileNotFoundError:
            continue
        moving = list(synthetic.moving_person(img, msk, bg, args.frames, path))
        lit = zip(moving, gains, strict=True)
        frames = [cv2.convertScaleAbs(f, alpha=float(g)) for (f, _), g in lit]
        truth = [m for _, m in moving]
        for name, settings in configs.items():
            with Stream(settings) as st:
                alphas = []
                for f in frames:
                    st.process(f)
                    alphas.append(st.last_alpha.copy())
            pairs = list(zip(alphas, truth, strict=True))
            scores[name].append(
                (
                    float(np.mean([metrics.iou(a, g) for a, g in pairs])),
                    float(np.mean([metrics.boundary_f(a, g) for a, g in pairs])),
                    float(
                        np.mean(
                            [
                                metrics.dtssd(alphas[i - 1], alphas[i], truth[i - 1], truth[i])
                                for i in range(1, len(alphas))
                            ]
                        )
                    ),
                )
            )
        print(stem, " ".join(f"{k}: {v[-1][0]:.4f}/{v[-1][1]:.4f}" for k, v in scores.items()))
    print(f"{'configuration':20s} {'mIoU':>7s} {'BF':>7s} {'dtSSD':>7s}")
    for name, v in scores.items():
        m = np.mean(v, axis=0)
        print(f"{name:20s} {m[0]:7.4f} {m[1]:7.4f} {m[2]:7.2f}")


if __name__ == "__main__":
    main()
