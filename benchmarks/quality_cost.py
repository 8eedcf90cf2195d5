"""Cost of the mask/guard stages at 720p (working 480x270, landscape model 256x144).

OpenCV runs single-threaded here (the pipeline's stages share two cores with
the model).

Usage: python benchmarks/quality_cost.py [--repeat 200]

Times each stage function on a real clip frame pair: medians of wall time and
of thread CPU time (the latter is what concurrent load on a shared machine
disturbs least). The face detector runs every ``face_interval`` frames, so
its amortised cost is its time divided by that interval.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from blurcam import guards, mask
from blurcam.face import FaceDetector, track_faces
from blurcam.segment import open_segmenter
from blurcam.settings import GuardSettings, MaskSettings

SHARED = Path(__file__).resolve().parents[2] / "shared/data"
CLIP = SHARED / "clips/portrait_segmentation_test.mp4"
# a full-body person (thin: the refinement's fit decides per pixel, refine_fit)
FULL_BODY = SHARED / "davis/hike/frames/00040.jpg"


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
    cv2.setNumThreads(1)
    cap = cv2.VideoCapture(str(CLIP))
    frames = []
    for _ in range(2):
        _, f = cap.read()
        frames.append(cv2.resize(f, (1280, 720)))
    small = [cv2.resize(f, (480, 270), interpolation=cv2.INTER_LINEAR) for f in frames]
    grey = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in small]
    ms, gs = MaskSettings(), GuardSettings()
    seg = open_segmenter("landscape", frame_size=(1280, 720))
    prob0, prob1 = seg(frames[0]).copy(), seg(frames[1]).copy()
    size = (prob1.shape[1], prob1.shape[0])
    g0 = mask.motion_guide(grey[0], size)
    flow = cv2.DISOpticalFlow.create(cv2.DISOpticalFlow_PRESET_ULTRAFAST)

    def model_input_full() -> None:
        cv2.resize(frames[1], size, interpolation=cv2.INTER_LINEAR)

    def model_input_small() -> None:
        cv2.resize(small[1], size, interpolation=cv2.INTER_LINEAR)

    def temporal() -> None:
        g1 = mask.motion_guide(grey[1], size)
        prev, reliable = mask.align_previous(prob0, g1, g0, flow, ms)
        mask.smooth_temporal(prob1, prev, ms, reliable)

    def rescue() -> None:
        mask.rescue_floor(prob1, prob1, ms, prob0)

    def refine() -> None:
        mask.to_alpha(mask.refine_guided(prob1, small[1], ms), ms)

    def refine_weight() -> None:
        mask.refine_weight(prob1, ms, (480, 270))

    body = cv2.resize(cv2.imread(str(FULL_BODY)), (1280, 720))
    body_small = cv2.resize(body, (480, 270), interpolation=cv2.INTER_LINEAR)
    body_grey = cv2.cvtColor(body_small, cv2.COLOR_BGR2GRAY)
    body_prob = seg(body).copy()
    no_fit = replace(ms, refine_fit=False)

    def fit_thin() -> None:
        mask.guided_coefficients(body_prob, body_grey, ms)

    def fit_thin_before() -> None:
        mask.guided_coefficients(body_prob, body_grey, no_fit)

    def fit_thick() -> None:
        mask.guided_coefficients(prob1, grey[1], ms)

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
        ("model input from the 720p frame (vs 480 px)", timeit(model_input_full, args.repeat), 1),
        ("  (from the 480 px working frame, before)", timeit(model_input_small, args.repeat), 0),
        ("temporal (flow, warp, smoothing, 256x144)", timeit(temporal, args.repeat), 1),
        ("rescue floor (components, 256x144)", timeit(rescue, args.repeat), 1),
        ("refine weight (person thickness)", timeit(refine_weight, args.repeat), 1),
        ("refine (fast guided filter + alpha, 480x270)", timeit(refine, args.repeat), 1),
        ("  fit alone, head and shoulders (mask node)", timeit(fit_thick, args.repeat), 0),
        ("  fit, full-body person (refine_fit)", timeit(fit_thin, args.repeat), 0),
        ("  (fit, full-body person, refine_fit=0)", timeit(fit_thin_before, args.repeat), 0),
        ("face track + protect (every frame)", timeit(track_protect, args.repeat), 1),
        (
            "face detect (every face_interval frames)",
            timeit(detect, args.repeat // 4),
            gs.face_interval,
        ),
        ("people=main (connected components)", timeit(main_person, args.repeat), 0),
    ]
    print(f"faces found: {len(faces)}")
    total_wall = total_cpu = 0.0
    for name, (wall, cpu), every in rows:
        amort = cpu / every if every else 0.0
        print(f"{name:48s} wall {wall:7.3f} ms  cpu {cpu:6.3f} ms  amortised cpu {amort:6.3f}")
        if every:
            total_wall += wall / every
            total_cpu += cpu / every
    print(f"{'default total (amortised)':48s} wall {total_wall:7.3f} ms  cpu {total_cpu:6.3f} ms")


if __name__ == "__main__":
    main()
