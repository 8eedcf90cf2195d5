"""Media the tests make themselves: small videos with a moving disc and a sine tone."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from blurcam.testing import synthetic_frame


def make_video(
    path: Path,
    frames: int = 12,
    size: tuple[int, int] = (160, 96),
    fps: int = 12,
    audio: bool = True,
    codec: str = "libx264",
    rotation: int | None = None,
) -> Path:
    """Encode a clip of a disc moving across a striped background, with a 440 Hz tone.

    ``size`` is the stored size; with ``rotation`` the stream gets a display
    matrix (as phones write), so players show it turned by that many degrees
    counter-clockwise. An odd size is stored as yuv444p for H.264 (it needs
    even sizes in yuv420p).
    """
    w, h = size
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=fps)
        odd = codec == "libx264" and (w % 2 or h % 2)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv444p" if odd else "yuv420p"
        if rotation is not None:
            vs.set_display_rotation(rotation)
        as_ = None
        if audio:
            as_ = out.add_stream("aac", rate=44100)
            as_.layout = "mono"
        samples_per_frame = 44100 // fps
        t0 = 0
        for i in range(frames):
            f = synthetic_frame(w, h, cx=0.3 + 0.4 * i / max(1, frames - 1))
            vf = av.VideoFrame.from_ndarray(f, format="bgr24")
            vf.pts = i
            vf.time_base = Fraction(1, fps)
            for p in vs.encode(vf):
                out.mux(p)
            if as_ is not None:
                t = (np.arange(samples_per_frame) + t0) / 44100
                t0 += samples_per_frame
                tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
                af = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
                af.sample_rate = 44100
                af.pts = t0 - samples_per_frame
                for p in as_.encode(af):
                    out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
        if as_ is not None:
            for p in as_.encode(None):
                out.mux(p)
    return path


def encode_frames(
    path: Path,
    frames: list[np.ndarray],
    pts: list[int] | None = None,
    *,
    time_base: Fraction = Fraction(1, 12),
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rotation: int | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode BGR frames with given timestamps (and display rotation) into ``path``."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", options=options or {}) as out:
        vs = out.add_stream(codec, rate=12)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        vs.time_base = time_base
        vs.codec_context.time_base = time_base
        if rotation is not None:
            vs.set_display_rotation(rotation)
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="bgr24")
            vf.pts = pts[i] if pts else i
            vf.time_base = time_base
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return path


def stream_summary(path: Path) -> dict[str, object]:
    """Frame count, size, fps of the video; codec and packet count of the audio."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        size = (v.codec_context.width, v.codec_context.height)
        fps = float(v.average_rate or 0)
        n = sum(1 for _ in c.decode(v))
    with av.open(str(path)) as c:
        a = c.streams.audio[0] if c.streams.audio else None
        info: dict[str, object] = {
            "frames": n,
            "size": size,
            "fps": fps,
            "audio": a.codec_context.name if a else None,
        }
        if a is not None:
            info["audio_packets"] = sum(1 for p in c.demux(a) if p.size)
    return info
