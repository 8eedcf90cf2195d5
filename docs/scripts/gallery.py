"""Make docs/gallery/: before/after pictures of every effect at two strengths.

Usage (from the repository root)::

    python docs/scripts/gallery.py
    python docs/scripts/gallery.py --depth-model \
        ../shared/models/obs_models/tcmonodepth_tcsmallnet_192x320.onnx

Sources: ``examples/astronaut.png`` (NASA, public domain, shipped) and frame
30 of ``examples/astronaut_clip.mp4`` (a wide 16:9 pan over the same photo,
made by ``docs/scripts/make_sample_clip.py``: the landscape model's view).
Both are public domain, so the pictures can live in this Apache-2.0
repository (a DAVIS frame, CC BY-NC, could not). The replacement background
is blurcam's built-in studio backdrop (drawn, so it needs no licence). Pictures are 480 px wide
JPEGs (quality 82) to keep the folder small; the real segmentation model
runs (``--model auto``), so they show what users get, mask errors included.
With ``--depth-model`` two more pictures per source use that ONNX model (not
committed by default: its licence is unclear, see docs/EFFECTS.md).
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from blurcam.io.background import studio_backdrop
from blurcam.io.video import iter_frames
from blurcam.pipeline import Stream
from blurcam.settings import EffectSettings, GuardSettings, Settings

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "gallery"
WIDTH = 480

U8 = NDArray[np.uint8]


@dataclass(frozen=True)
class Source:
    name: str
    path: Path
    keep_box: tuple[float, float, float, float] | None = None  # something worth keeping sharp
    frame: int | None = None  # for a video: which frame

    def image(self) -> U8:
        if self.frame is None:
            img = cv2.imread(str(self.path))
            if img is None:
                raise SystemExit(f"cannot read {self.path}")
            return img
        for k, (img, _ts) in enumerate(iter_frames(self.path)):
            if k == self.frame:
                return img
        raise SystemExit(f"{self.path} has no frame {self.frame}")


def variants(src: Source, depth_model: str | None) -> list[tuple[str, EffectSettings]]:
    """(file suffix, settings) of every picture made for one source."""
    v = [
        ("blur-light", EffectSettings(kind="blur", strength=0.4)),
        ("blur-strong", EffectSettings(kind="blur", strength=0.8)),
        ("bokeh-light", EffectSettings(kind="bokeh", strength=0.4)),
        ("bokeh-strong", EffectSettings(kind="bokeh", strength=0.8)),
        ("depth-light", EffectSettings(kind="depth", strength=0.5)),
        ("depth-strong", EffectSettings(kind="depth", strength=1.0)),
        ("replace-plain", EffectSettings(kind="replace", light_wrap=0.0)),
        ("replace-wrap", EffectSettings(kind="replace", light_wrap=0.6, harmonize=0.4)),
    ]
    if src.keep_box is not None:
        v.append(("keep", EffectSettings(kind="blur", strength=0.8, keep_box=src.keep_box)))
    if depth_model:
        for name, s in (("depth-model-light", 0.5), ("depth-model-strong", 1.0)):
            v.append((name, EffectSettings(kind="depth", strength=s, depth_model=depth_model)))
    return v


def small_jpeg(path: Path, img: U8) -> None:
    h, w = img.shape[:2]
    out = cv2.resize(img, (WIDTH, round(h * WIDTH / w)), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(path), out, [cv2.IMWRITE_JPEG_QUALITY, 82])


def render(src: Source, depth_model: str | None) -> list[Path]:
    frame = src.image()
    bg = studio_backdrop()
    written = [OUT / f"{src.name}_original.jpg"]
    small_jpeg(written[0], frame)
    for suffix, fx in variants(src, depth_model):
        s = Settings(effect=fx, guards=GuardSettings(face=False))
        stream = Stream(s)
        stream.set_background(bg)
        out = stream.process(frame)
        stream.close()
        path = OUT / f"{src.name}_{suffix}.jpg"
        small_jpeg(path, out)
        written.append(path)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--depth-model", help="ONNX depth model for two extra pictures per source")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    OUT.mkdir(parents=True, exist_ok=True)
    sources = [
        Source("astronaut", ROOT / "examples" / "astronaut.png", (345, 0, 130, 285)),
        Source("clip", ROOT / "examples" / "astronaut_clip.mp4", frame=30),
    ]
    total = 0
    for src in sources:
        for p in render(src, args.depth_model):
            total += p.stat().st_size
            print(f"{p.relative_to(ROOT)}  {p.stat().st_size // 1024} KB")
    print(f"total {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
