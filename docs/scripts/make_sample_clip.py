"""Make examples/astronaut_clip.mp4: a slow pan and zoom over the public-domain NASA
astronaut photo (examples/astronaut.png), 640x360 at 15 fps, with a quiet two-tone
AAC soundtrack, so that `blurcam blur` has a video with audio to work on.

    python docs/scripts/make_sample_clip.py
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "examples" / "astronaut.png"
DST = ROOT / "examples" / "astronaut_clip.mp4"
W, H, FPS, SECONDS, RATE = 640, 360, 15, 4, 44100


def frames(img: np.ndarray) -> list[np.ndarray]:
    ih, iw = img.shape[:2]
    n = FPS * SECONDS
    out = []
    for i in range(n):
        t = i / (n - 1)
        # crop a 16:9 window that drifts left to right and zooms in slightly
        cw = int(iw * (1.0 - 0.15 * t))
        ch = int(cw * H / W)
        x0 = int((iw - cw) * (0.2 + 0.6 * t))
        y0 = max(0, int((ih - ch) * 0.3))
        crop = img[y0 : y0 + ch, x0 : x0 + cw]
        out.append(cv2.resize(crop, (W, H), interpolation=cv2.INTER_AREA))
    return out


def main() -> None:
    img = cv2.imread(str(SRC))
    with av.open(str(DST), "w") as c:
        vs = c.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.options = {"crf": "26", "preset": "slow"}
        aus = c.add_stream("aac", rate=RATE)
        aus.layout = "mono"
        for i, f in enumerate(frames(img)):
            vf = av.VideoFrame.from_ndarray(f, format="bgr24")
            vf.pts, vf.time_base = i, Fraction(1, FPS)
            for p in vs.encode(vf):
                c.mux(p)
        t = np.arange(RATE * SECONDS) / RATE
        tone = 0.15 * np.sin(2 * np.pi * np.where((t * 2).astype(int) % 2, 440, 660) * t)
        tone = tone.astype(np.float32)
        step = 1024
        for k in range(0, len(tone), step):
            af = av.AudioFrame.from_ndarray(tone[None, k : k + step], format="fltp", layout="mono")
            af.sample_rate, af.pts = RATE, k
            for p in aus.encode(af):
                c.mux(p)
        for s in (vs, aus):
            for p in s.encode(None):
                c.mux(p)
    print(f"wrote {DST} ({DST.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
