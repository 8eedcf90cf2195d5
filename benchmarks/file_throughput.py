"""File throughput and peak memory of ``blurcam blur`` on a 1080p30 H.264 file with audio.

Makes the input, then runs
``blurcam blur IN OUT`` as a child process and reports wall time, the
real-time factor (input duration / wall time, decode + process + encode
included) and the child's peak RSS (``wait4``)::

    python benchmarks/file_throughput.py --seconds 60 --json benchmarks/results/file-throughput.json

Inputs (``--source``), 1920x1080 at 30 fps with a stereo AAC tone track, looped
(forward and back, so no frame jumps) to ``--seconds``:

* ``moving`` (default): the six DAVIS sequences of ``../shared/data``, each frame
  once: hand-held full-body video, where the model runs on every frame (the
  still gate never fires);
* ``talking``: the talking-head clip, each frame twice (15 -> 30 fps): the still
  gate skips the model on about half of the frames (an extra row, labelled).

Synthetic moving frames without the data.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

FPS = 30
SIZE = (1920, 1080)
RATE = 48000


def _davis_frames(data: Path | None, per_seq: int = 40) -> list[np.ndarray]:
    """Consecutive frames of each DAVIS sequence (forward then back: no jump inside)."""
    frames: list[np.ndarray] = []
    for seq in sorted((data / "davis").glob("*/frames")) if data else []:
        part = [
            cv2.resize(cv2.imread(str(p)), SIZE, interpolation=cv2.INTER_LINEAR)
            for p in sorted(seq.glob("*.jpg"))[:per_seq]
        ]
        frames += part + part[-2:0:-1]
    return frames


def _source_frames(data: Path | None, n: int = 150) -> list[np.ndarray]:
    clip = data / "clips" / "portrait_segmentation_test.mp4" if data else None
    frames: list[np.ndarray] = []
    if clip is not None and clip.is_file():
        with av.open(str(clip)) as c:
            for f in c.decode(video=0):
                frames.append(cv2.resize(f.to_ndarray(format="bgr24"), SIZE, cv2.INTER_LINEAR))
                if len(frames) >= n:
                    break
    if not frames:
        x = np.linspace(0, 255, SIZE[0], dtype=np.float32)[None, :]
        base = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
        base[..., 0] = x
        base[..., 2] = 255 - x
        for i in range(n):
            f = base.copy()
            cx = int(SIZE[0] * (0.4 + 0.2 * i / n))
            cv2.ellipse(f, (cx, 450), (200, 260), 0, 0, 360, (60, 110, 190), -1)
            frames.append(f)
    return frames


def make_input(path: Path, seconds: float, data: Path | None, source: str = "moving") -> Path:
    """1080p30 H.264 (veryfast, crf 23) + stereo AAC, ``seconds`` long (see the module doc)."""
    moving = _davis_frames(data) if source == "moving" else []
    src = moving or _source_frames(data)
    repeat = 1 if moving else 2  # the talking head (15 fps) shows each frame twice
    n = round(seconds * FPS)
    per_frame = RATE // FPS
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=FPS, options={"preset": "veryfast", "crf": "23"})
        vs.width, vs.height, vs.pix_fmt = *SIZE, "yuv420p"
        aus = out.add_stream("aac", rate=RATE)
        aus.layout = "stereo"
        period = 2 * len(src) - 2
        for i in range(n):
            j = (i // repeat) % period  # ping-pong: no jump back to the start
            j = j if j < len(src) else period - j
            vf = av.VideoFrame.from_ndarray(src[j], format="bgr24")
            vf.pts, vf.time_base = i, Fraction(1, FPS)
            out.mux(vs.encode(vf))
            t = (np.arange(per_frame) + i * per_frame) / RATE
            env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)  # speech-like rhythm
            tone = (0.2 * env * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
            af = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            af.sample_rate, af.pts = RATE, i * per_frame
            out.mux(aus.encode(af))
        out.mux(vs.encode(None))
        out.mux(aus.encode(None))
    return path


def _tree_rss_kb(root: int) -> float:
    """Summed VmRSS of ``root`` and all its descendants (Linux /proc), 0 if gone."""
    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                parents[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, grew = {root}, True
    while grew:
        more = {p for p, pp in parents.items() if pp in tree and p not in tree}
        tree |= more
        grew = bool(more)
    total = 0.0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += float(line.split()[1])
        except OSError:
            continue
    return total


def _sample_tree(root: int, stop: threading.Event, peak: list[float]) -> None:
    while not stop.wait(0.2):
        peak[0] = max(peak[0], _tree_rss_kb(root))


def run_blur(src: Path, dst: Path, extra: list[str]) -> dict[str, float]:
    cmd = [sys.executable, "-m", "blurcam", "blur", str(src), str(dst), "--force", *extra]
    # A forked child's ru_maxrss counts the pages it shared with this process
    # before exec (here: the ~1 GB of source frames), so the peak is read by
    # GNU time, a small process of its own, when it is installed.
    gnu_time = Path("/usr/bin/time")
    if gnu_time.exists():
        cmd = [str(gnu_time), "-f", "maxrss_kb=%M", *cmd]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # a long video runs in several processes: their memory together, sampled
    stop, tree_peak = threading.Event(), [0.0]
    sampler = threading.Thread(target=_sample_tree, args=(proc.pid, stop, tree_peak), daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    stop.set()
    sampler.join()
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"blurcam blur failed ({proc.returncode}): {err[-500:]}")
    rss_kb = float(usage.ru_maxrss)
    for line in err.splitlines():
        if line.startswith("maxrss_kb="):
            rss_kb = float(line.split("=", 1)[1])
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": rss_kb / 1024.0,
        "peak_tree_rss_mib": tree_peak[0] / 1024.0,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--source", choices=("moving", "talking"), default="moving")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--json", type=Path, default=None, help="write the result here too")
    ap.add_argument("--keep", type=Path, default=None, help="folder to keep input/output in")
    ap.add_argument("blur_args", nargs="*", help="extra arguments for blurcam blur (after --)")
    a = ap.parse_args()
    data = a.data if a.data.is_dir() else None
    with tempfile.TemporaryDirectory() as tmp:
        d = a.keep or Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        src = d / f"in_1080p30_{a.source}_{int(a.seconds)}s.mp4"
        t0 = time.perf_counter()
        if not src.exists():  # --keep a folder to reuse the input across runs
            make_input(src, a.seconds, data, a.source)
        made = time.perf_counter() - t0
        res = run_blur(src, d / f"out_{int(a.seconds)}s.mp4", a.blur_args)
    res.update(
        {
            "input": f"1920x1080 {FPS} fps H.264 + stereo AAC, {a.seconds:g} s, {a.source}",
            "frames": round(a.seconds * FPS),
            "realtime_factor": a.seconds / res["wall_s"],
            "fps": a.seconds * FPS / res["wall_s"],
            "input_made_in_s": made,
            "blur_args": a.blur_args,
            "cpus": os.cpu_count(),
            "loadavg_after": list(os.getloadavg()),
        }
    )
    text = json.dumps(res, indent=2)
    print(text)
    if a.json:
        a.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
