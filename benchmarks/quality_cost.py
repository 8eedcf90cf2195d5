"""Cost of the mask/guard stages at 720p (working 480x270, landscape model 256x144).

Usage: python benchmarks/quality_cost.py [--repeat 200]

Times each stage function on a real clip frame pair: medians of wall time and
of thread CPU time (the latter is what concurrent load on a shared machine
disturbs least). The face detector runs every ``face_interval`` frames, so
its amortised cost is its time divided by that interval.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from blurcam import guards, mask
from blurcam.face import FaceDetector, track_faces
from blurcam.segment import open_segmenter
from blurcam.settings import GuardSettings, MaskSettings

CLIP = Path(__file__).resolve().parents[2] / "shared/data/clips/portrait_segmentation_test.mp4"


def timeit(fn, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(median wall ms, median CPU ms of this thread)."""
    ts, cs = [], []
    for _ in range(repeat):
        c = time.thread_time()
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1000)
        cs.append((time.thread_time() - c) * 1000)
    return float(np.median(ts)), float(np.median(cs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    cap = cv2.VideoCapture(str(CLIP))
    frames = []
    for _ in range(2):
        _, f = cap.read()
        frames.append(cv2.resize(f, (1280, 720)))
    small = [cv2.resize(f, (480, 270), interpolation=cv2.INTER_LINEAR) for f in frames]
    ms, gs = MaskSettings(), GuardSettings()
    seg = open_segmenter("landscape", frame_size=(480, 270))
    prob0, prob1 = seg(small[0]), seg(small[1])
    size = (prob1.shape[1], prob1.shape[0])
    g0 = mask.motion_guide(small[0], size)

    def temporal() -> None:
        g1 = mask.motion_guide(small[1], size)
        mm = mask.motion_map(g1, g0, ms)
        mask.smooth_temporal(prob1, prob0, ms, mm)

    def refine() -> None:
        mask.to_alpha(mask.refine_guided(prob1, small[1], ms), ms)

    alpha = mask.to_alpha(mask.refine_guided(prob1, small[1], ms), ms)
    det = FaceDetector()
    rect = guards.face_search_rect(prob1, (480, 270))
    x0, y0, x1, y1 = rect
    faces = guards.faces_to_frame(det(small[1][y0:y1, x0:x1]), rect, (480, 270))
    faces = track_faces([], faces, g0)
    faces = guards.protect_faces(alpha.copy(), faces)

    def track_protect() -> None:
        f = track_faces(faces, None, g0)
        guards.protect_faces(alpha.copy(), f)

    def detect() -> None:
        det(small[1][y0:y1, x0:x1])

    def main_person() -> None:
        guards.keep_main(prob1, None)

    rows = [
        ("temporal (motion map + smoothing, 256x144)", timeit(temporal, args.repeat), 1),
        ("refine (fast guided filter + alpha, 480x270)", timeit(refine, args.repeat), 1),
        ("face track + protect (every frame)", timeit(track_protect, args.repeat), 1),
        (
            "face detect (every face_interval frames)",
            timeit(detect, args.repeat // 4),
            gs.face_interval,
        ),
        ("people=main (connected components)", timeit(main_person, args.repeat), 1),
    ]
    print(f"faces found: {len(faces)}")
    total_wall = total_cpu = 0.0
    for name, (wall, cpu), every in rows:
        print(
            f"{name:48s} wall {wall:7.3f} ms  cpu {cpu:6.3f} ms  amortised cpu {cpu / every:6.3f}"
        )
        if "people" not in name:
            total_wall += wall / every
            total_cpu += cpu / every
    print(f"{'default total (amortised)':48s} wall {total_wall:7.3f} ms  cpu {total_cpu:6.3f} ms")


if __name__ == "__main__":
    main()
