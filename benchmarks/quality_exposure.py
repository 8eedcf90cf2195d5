"""Exposure-ramp face test: face pixels lost to the background as brightness swings 0.3x..1.7x.

Usage: python benchmarks/quality_exposure.py [--portraits 00002,00008,...] [--frames 60]

Each dev portrait is pasted (exact mask) on a DAVIS background at 1280x720 and
its brightness ramped 1 -> 0.3 -> 1.7 -> 1 (simulated auto-exposure). Face
pixels = the inner 80% of the face box detected on the unmodified frame,
intersected with the true person mask ("box": its corners hold hair, ears
and collar too), and the ellipse inscribed in that box ("face": the face
itself). Lost = alpha < 128 there. Configs:
raw (model only, no temporal smoothing, no face guard), noguard (the
defaults without the face guard) and blurcam (defaults).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from blurcam import guards
from blurcam.evaluate import synthetic
from blurcam.face import FaceDetector
from blurcam.pipeline import Stream
from blurcam.settings import GuardSettings, Settings

SHARED = Path(__file__).resolve().parents[2] / "shared"


def face_pixels(frame: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The face's pixels on ``frame``: (inner 80% of the detected box, the ellipse in it),
    each within the true mask; None when no face is detected."""
    h, w = truth.shape
    rect = guards.face_search_rect(cv2.resize(truth, (256, 144)).astype(np.float32) / 255.0, (w, h))
    x0, y0, x1, y1 = rect
    with FaceDetector() as d:
        faces = guards.faces_to_frame(d(frame[y0:y1, x0:x1]), rect, (w, h))
    if not faces:
        return None
    f = faces[0]
    (cx, cy), (bw, bh) = f.center, f.size
    m = np.zeros((h, w), bool)
    m[
        int((cy - 0.4 * bh) * h) : int((cy + 0.4 * bh) * h),
        int((cx - 0.4 * bw) * w) : int((cx + 0.4 * bw) * w),
    ] = True
    yy, xx = np.mgrid[:h, :w]
    ell = ((yy / h - cy) / (0.4 * bh)) ** 2 + ((xx / w - cx) / (0.4 * bw)) ** 2 <= 1.0
    return m & (truth > 127), ell & (truth > 127)


def run(
    settings: Settings, frames: list[np.ndarray], face: tuple[np.ndarray, np.ndarray]
) -> tuple[float, int, float, int]:
    """Worst share of face pixels lost and the frames losing any: box, then ellipse."""
    st = Stream(settings)
    box, ell = [], []
    for f in frames:
        st.process(f)
        box.append(float((st.last_alpha[face[0]] < 128).mean()))
        ell.append(float((st.last_alpha[face[1]] < 128).mean()))
    st.close()
    return max(box), sum(x > 0 for x in box), max(ell), sum(x > 0 for x in ell)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--portraits", default="00002,00008,00012,00016,00037,00059,00062,00065,00075,00079"
    )
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()
    bg = synthetic.load_background(SHARED)
    gains = synthetic.exposure_gains(args.frames)
    on = Settings()
    off = replace(on, guards=GuardSettings(face=False))
    raw = replace(off, mask=replace(on.mask, smoothing=0.0))
    for stem in args.portraits.split(","):
        try:
            img, msk = synthetic.load_portrait(SHARED, stem)
        except FileNotFoundError:
            continue
        frame, truth = synthetic.paste(img, msk, bg, 0, 0, 0.95)
        face = face_pixels(frame, truth)
        if face is None:
            print(stem, "no face detected on the reference frame")
            continue
        frames = list(synthetic.exposure_ramp(frame, gains))
        configs = (("raw", raw), ("noguard", off), ("blurcam", on))
        res = {n: run(s, frames, face) for n, s in configs}
        line = " ".join(
            f"{n}: box max_lost={v[0]:.4f} frames_losing={v[1]}"
            f" face max_lost={v[2]:.4f} frames_losing={v[3]}"
            for n, v in res.items()
        )
        print(stem, line, flush=True)


if __name__ == "__main__":
    main()
