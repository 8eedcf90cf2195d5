"""What DAVIS's two temporal metrics give for predictors built from the ground truth itself.

Usage: python benchmarks/flicker_oracles.py [../shared/data/davis]

dtSSD and "temporal change" (docs/EVAL.md) for: the truth; the truth at the
landscape model's resolution (256x144, area) brought back bilinearly, soft,
thresholded and through blurcam's alpha ramp; the truth shifted 2 px; and a
frozen mask (the first frame's truth, for ever). It shows what each metric
rewards: a frozen mask, the worst possible lag, scores a dtSSD as good as a
real model's, because dtSSD counts every pixel whose truth changed and the
prediction did not; temporal change counts only pixels whose truth did not
change, which is flicker, and needs the lag test beside it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from blurcam.evaluate import metrics

VARIANTS = ("truth", "model-res soft", "model-res 0.5", "model-res ramp", "shift 2 px", "frozen")


def predict(variant: str, gt: np.ndarray, first: np.ndarray) -> np.ndarray:
    h, w = gt.shape
    if variant == "truth":
        return gt
    if variant.startswith("model-res"):
        low = cv2.resize(gt, (256, 144), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        p = cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR)
        if variant.endswith("0.5"):
            return (p >= 0.5).astype(np.float32)
        if variant.endswith("ramp"):
            return np.clip((p - 0.35) / 0.4, 0.0, 1.0)
        return p
    if variant == "shift 2 px":
        return np.roll(gt, 2, axis=1)
    return first


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/davis")
    seqs = sorted(p.parent for p in root.glob("*/masks"))
    print(f"{'predictor':16s} {'dtSSD':>6s} {'change':>7s}  per sequence (dtSSD / change)")
    for variant in VARIANTS:
        per = {}
        for seq in seqs:
            masks = sorted((seq / "masks").glob("*.png"))
            first = cv2.imread(str(masks[0]), cv2.IMREAD_GRAYSCALE)
            prev = None
            d, c = [], []
            for m in masks:
                gt = cv2.imread(str(m), cv2.IMREAD_GRAYSCALE)
                p = predict(variant, gt, first)
                if prev is not None:
                    d.append(metrics.dtssd(prev[0], p, prev[1], gt))
                    c.append(metrics.temporal_change(prev[0], p, prev[1], gt))
                prev = (p, gt)
            per[seq.name] = (float(np.mean(d)), float(np.mean(c)))
        dt = np.mean([v[0] for v in per.values()])
        ch = np.mean([v[1] for v in per.values()])
        rest = ", ".join(f"{k} {v[0]:.1f}/{v[1]:.2f}" for k, v in per.items())
        print(f"{variant:16s} {dt:6.2f} {ch:7.3f}  {rest}")


if __name__ == "__main__":
    main()
