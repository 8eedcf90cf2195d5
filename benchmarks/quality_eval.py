"""Quality numbers for docs/QUALITY.md: raw models vs blurcam's mask pipeline.

Usage (from the repo root)::

    python benchmarks/quality_eval.py --set portraits --set davis --set synthetic \
        --config raw:selfie --config blurcam

A config is ``raw:<model>`` (the model's probability, bilinear to full size,
person = p > 0.5) or ``blurcam[:<model>]`` (the default Stream: temporal,
refine, guards). Metrics: mIoU (alpha > 0.5), boundary F (DAVIS-style,
tolerance 0.008 x diagonal), flicker (mean |a_t - a_t-1| where the truth did
not change), lag (frames of delay minimising the error, synthetic only),
border recall (person pixels within 5% of the frame border kept).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from blurcam.evaluate import synthetic
from blurcam.pipeline import Stream
from blurcam.segment import open_segmenter
from blurcam.settings import GuardSettings, Settings

SHARED = Path(__file__).resolve().parents[2] / "shared"


def iou(a: np.ndarray, g: np.ndarray) -> float:
    u = (a | g).sum()
    return float((a & g).sum() / u) if u else 1.0


def _bd(m: np.ndarray) -> np.ndarray:
    m8 = m.astype(np.uint8)
    return (m8 - cv2.erode(m8, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)) > 0


def boundary_f(a: np.ndarray, g: np.ndarray) -> float:
    r = max(1, math.ceil(0.008 * math.hypot(*a.shape)))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    ba, bg = _bd(a), _bd(g)
    if not ba.any() and not bg.any():
        return 1.0
    if not ba.any() or not bg.any():
        return 0.0
    da = cv2.dilate(ba.astype(np.uint8), k) > 0
    dg = cv2.dilate(bg.astype(np.uint8), k) > 0
    p = (ba & dg).sum() / ba.sum()
    rc = (bg & da).sum() / bg.sum()
    return float(2 * p * rc / (p + rc)) if p + rc else 0.0


def border_recall(a: np.ndarray, g: np.ndarray, frac: float = 0.05) -> float | None:
    h, w = g.shape
    b = np.zeros_like(g)
    m = max(1, round(frac * min(h, w)))
    b[:m] = b[-m:] = True
    b[:, :m] = b[:, -m:] = True
    sel = g & b
    return float((a & sel).sum() / sel.sum()) if sel.sum() > 50 else None


class Runner:
    """One sequence at a time: returns soft alphas (float 0..1, full res)."""

    def __init__(self, config: str, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        kind, _, model = config.partition(":")
        self.kind = kind
        self.model = model or "auto"
        self.ms: list[float] = []

    def sequence(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        h, w = frames[0].shape[:2]
        out = []
        if self.kind == "raw":
            seg = open_segmenter(self.model, frame_size=(w, h))
            for f in frames:
                t = time.perf_counter()
                p = seg(f)
                a = cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR)
                self.ms.append((time.perf_counter() - t) * 1000)
                out.append(a)
            seg.close()
            return out
        s = self.settings
        s = replace(s, segment=replace(s.segment, model=self.model))
        st = Stream(s)
        for f in frames:
            t = time.perf_counter()
            st.process(f)
            self.ms.append((time.perf_counter() - t) * 1000)
            out.append(st.last_alpha.astype(np.float32) / 255.0)
        st.close()
        return out


def load_portraits() -> list[tuple[np.ndarray, np.ndarray]]:
    d = SHARED / "data" / "portraits"
    items = []
    for p in sorted((d / "images").glob("*.jpg")):
        items.append((cv2.imread(str(p)), cv2.imread(str(d / "masks" / f"{p.stem}.png"), 0)))
    return items


def load_davis() -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    d = SHARED / "data" / "davis"
    out = {}
    for seq in sorted(x for x in d.iterdir() if x.is_dir()):
        out[seq.name] = [
            (cv2.imread(str(f)), cv2.imread(str(seq / "masks" / f"{f.stem}.png"), 0))
            for f in sorted((seq / "frames").glob("*.jpg"))
        ]
    return out


def evaluate(r: Runner, sets: list[str]) -> dict[str, float]:
    res: dict[str, float] = {}
    if "portraits" in sets:
        ious, bfs, brs = [], [], []
        for img, gt in load_portraits():
            a = r.sequence([img])[0] > 0.5
            g = gt > 127
            ious.append(iou(a, g))
            bfs.append(boundary_f(a, g))
            b = border_recall(a, g)
            if b is not None:
                brs.append(b)
        res.update(p_miou=np.mean(ious), p_bf=np.mean(bfs), p_border=np.mean(brs))
    if "davis" in sets:
        ious, bfs, fls, brs = [], [], [], []
        for seq, items in load_davis().items():
            frames = [f for f, _ in items]
            gts = [g for _, g in items]
            al = r.sequence(frames)
            sq = [iou(a > 0.5, g > 127) for a, g in zip(al, gts, strict=True)]
            ious.append(np.mean(sq))
            bfs.append(
                np.mean([boundary_f(a > 0.5, g > 127) for a, g in zip(al, gts, strict=True)])
            )
            fls.append(synthetic.flicker(al, gts))
            bb = [border_recall(a > 0.5, g > 127) for a, g in zip(al, gts, strict=True)]
            bb = [b for b in bb if b is not None]
            if bb:
                brs.append(np.mean(bb))
            res[f"d_{seq}"] = float(np.mean(sq))
        res.update(
            d_miou=np.mean(ious), d_bf=np.mean(bfs), d_flicker=np.mean(fls), d_border=np.mean(brs)
        )
    if "synthetic" in sets:
        items = synthetic.load_motion_set(SHARED)
        frames = [f for f, _ in items]
        gts = [g for _, g in items]
        al = r.sequence(frames)
        res.update(
            s_miou=np.mean([iou(a > 0.5, g > 127) for a, g in zip(al, gts, strict=True)]),
            s_flicker=synthetic.flicker(al, gts),
            s_lag=synthetic.lag_frames(al, gts),
        )
        errs = synthetic.lag_errors(al, gts)
        res["s_err0"], res["s_err1"] = errs[0], errs[1]
    if r.ms:
        res["ms_median"] = float(np.median(r.ms))
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--config", action="append", default=[])
    ap.add_argument("--face", action="store_true", help="face guard on")
    args = ap.parse_args()
    settings = Settings()
    if args.face:
        settings = replace(settings, guards=replace(settings.guards, face=True))
    _ = GuardSettings
    for c in args.config or ["raw:auto", "blurcam"]:
        r = Runner(c, settings)
        res = evaluate(r, args.set or ["portraits", "davis", "synthetic"])
        print(c, " ".join(f"{k}={v:.4f}" for k, v in res.items()), flush=True)


if __name__ == "__main__":
    main()
