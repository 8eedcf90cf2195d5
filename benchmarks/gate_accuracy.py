"""What the still-image gate costs in accuracy on a real talking head.

Usage: python benchmarks/gate_accuracy.py [CLIP] [--frames N] [--moved 0.005,0.01,0.015]

Runs the default pipeline on the clip's frames (upscaled to 720p) once with
the gate off (the model on every frame: the reference) and once per
``still_moved`` threshold, and prints the share of frames the model ran on,
the IoU of each frame's alpha (at 0.5) with the reference (mean and worst
frame), the mean absolute alpha difference in % of full scale, and how much
the blurred background changes from frame to frame (mean and worst frame, in
grey levels, where both frames are pure background): on frames the gate
carries, the background layer is reused too, and remaking it must not jump.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np

from blurcam.pipeline import Stream
from blurcam.settings import Settings

CLIP = Path(__file__).resolve().parents[2] / "shared/data/clips/portrait_segmentation_test.mp4"


def alphas(
    frames: list[np.ndarray], moved: float, reuse: int
) -> tuple[list[np.ndarray], float, list[float]]:
    s = Settings()
    s = replace(s, mask=replace(s.mask, still_moved=moved, still_reuse=reuse))
    st = Stream(s)
    out, runs, change = [], 0, []
    prev = None
    for f in frames:
        img = st.process(f).astype(np.int16)
        assert st.last_alpha is not None
        if prev is not None:
            bg = (st.last_alpha == 0) & (out[-1] == 0)
            change.append(float(np.abs(img - prev)[bg].mean()) if bg.any() else 0.0)
        prev = img
        out.append(st.last_alpha.copy())
        runs += st.last_inferred
    st.close()
    return out, runs / len(frames), change


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("clip", type=Path, nargs="?", default=CLIP)
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--moved", default="0.005,0.01,0.015")
    a = ap.parse_args()
    frames = []
    with av.open(str(a.clip)) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i >= a.frames:
                break
            frames.append(cv2.resize(fr.to_ndarray(format="bgr24"), (1280, 720)))
    ref, _, ref_change = alphas(frames, 0.01, 0)
    print(
        f"{len(frames)} frames of {a.clip.name}; reference: the model on every frame, background "
        f"change {np.mean(ref_change):.3f} (worst {max(ref_change):.3f}) grey levels per frame"
    )
    for moved in (float(m) for m in a.moved.split(",")):
        got, share, change = alphas(frames, moved, 2)
        ious, diffs = [], []
        for g, r in zip(got, ref, strict=True):
            gb, rb = g > 127, r > 127
            union = int((gb | rb).sum())
            ious.append(int((gb & rb).sum()) / union if union else 1.0)
            diffs.append(float(np.abs(g.astype(np.int16) - r).mean()) / 255 * 100)
        print(
            f"still_moved {moved}: model on {share:.0%} of frames, IoU vs every frame "
            f"{np.mean(ious):.4f} (worst {min(ious):.3f}), "
            f"mean |alpha diff| {np.mean(diffs):.3f}%, "
            f"background change {np.mean(change):.3f} (worst {max(change):.3f})"
        )


if __name__ == "__main__":
    main()
