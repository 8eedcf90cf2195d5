"""Hashes of what the pipeline outputs, per effect and entry point: a refactoring check.

Usage: python benchmarks/frame_identity.py [--davis SEQ ...] > hashes.txt

Runs the real model over the bundled sample clip (and DAVIS sequences when
``../shared`` is there) through ``Stream.process``, ``Stream.process_iter`` and
``Stream.process_image`` for every effect, and prints one SHA-256 per run over
every output frame and alpha. Two commits that print the same lines give
bit-identical frames; a refactoring that must not change the output (issue 18)
is checked by diffing this script's output before and after.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from blurcam.io.video import iter_frames
from blurcam.pipeline import Stream
from blurcam.settings import EffectSettings, GuardSettings, Settings

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

CONFIGS: dict[str, Settings] = {
    "blur": Settings(),
    "bokeh": Settings(effect=EffectSettings(kind="bokeh", strength=0.8)),
    "replace": Settings(effect=EffectSettings(kind="replace", harmonize=0.3)),
    "depth": Settings(effect=EffectSettings(kind="depth", strength=1.0)),
    "keep": Settings(effect=EffectSettings(keep_box=(40.0, 40.0, 120.0, 100.0))),
    "main": Settings(guards=GuardSettings(people="main")),
}


def clips(davis: list[str]) -> Iterator[tuple[str, list[np.ndarray]]]:
    yield "astronaut_clip", [f for f, _ in iter_frames(ROOT / "examples" / "astronaut_clip.mp4")]
    for seq in davis:
        d = SHARED / "data" / "davis" / seq / "frames"
        if d.is_dir():
            yield seq, [cv2.imread(str(p)) for p in sorted(d.glob("*.jpg"))]


def digest(outs: Iterable[tuple[np.ndarray, np.ndarray | None]]) -> str:
    h = hashlib.sha256()
    n = 0
    for out, alpha in outs:
        h.update(np.ascontiguousarray(out).tobytes())
        if alpha is not None:
            h.update(np.ascontiguousarray(alpha).tobytes())
        n += 1
    return f"{h.hexdigest()[:16]} ({n} frames)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--davis", nargs="*", default=["lucia", "hockey"])
    args = ap.parse_args()
    for clip, frames in clips(args.davis):
        for name, settings in CONFIGS.items():
            with_alpha = []
            st = Stream(settings)
            for f in frames:
                out = st.process(f)
                with_alpha.append((out.copy(), st.last_alpha.copy()))
            st.close()
            print(f"{clip:16s} {name:8s} process      {digest((o, None) for o, _ in with_alpha)}")
            print(f"{clip:16s} {name:8s} alpha        {digest((a, None) for _, a in with_alpha)}")
            st = Stream(settings)
            outs = [(o.copy(), None) for o in st.process_iter(frames)]
            st.close()
            print(f"{clip:16s} {name:8s} process_iter {digest(outs)}")
            st = Stream(replace(settings))
            photos = []
            for f in frames[:: max(1, len(frames) // 4)][:4]:
                out = st.process_image(f)
                photos.append((out.copy(), st.last_alpha.copy()))
            st.close()
            print(f"{clip:16s} {name:8s} process_image {digest(photos)}")


if __name__ == "__main__":
    main()
