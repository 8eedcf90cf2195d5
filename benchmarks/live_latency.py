"""Live latency benchmark: ``blurcam cam --source <clip> --sink file out.mp4 --stats`` per case.

Cases: 720p and 1080p (the clip upscaled in the source with --width/--height),
each alone and with a CPU hog (a busy-looping process pinned to one core,
started by this script), optionally also a 30 fps version of the clip (the
same frames re-timed at 30 fps, i.e. played twice as fast).

It prints, per case, fps source/in/out, drops, added latency p50/p95/max
against the frame budget, the largest backlog seen and the quality level the
adaptive runner chose, and can write everything as JSON.

Usage (from the repository root)::

    python benchmarks/live_latency.py --seconds 30
    python benchmarks/live_latency.py --seconds 30 --fps30 --cpus 0,1   # pin to 2 cores

Timings depend on the machine and on whatever else runs on it; say which.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = ROOT.parent / "shared" / "data" / "clips" / "portrait_segmentation_test.mp4"
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


def retime(src: Path, dst: Path, fps: int) -> Path:
    """Re-time every frame of ``src`` at ``fps`` (same frames, played faster)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height = vin.codec_context.width, vin.codec_context.height
        vs.pix_fmt = "yuv420p"
        vs.options = {"preset": "veryfast", "crf": "20"}
        tb = Fraction(1, fps)
        for i, frame in enumerate(inp.decode(vin)):
            nf = av.VideoFrame.from_ndarray(frame.to_ndarray(format="bgr24"), format="bgr24")
            nf.pts, nf.time_base = i, tb
            for p in vs.encode(nf):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return dst


def start_hog(cpu: int) -> subprocess.Popen[bytes]:
    """A process that keeps one core busy (pinned to ``cpu`` where the OS allows)."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        os.sched_setaffinity(hog.pid, {cpu})
    except (AttributeError, OSError) as e:  # not Linux, or not allowed
        print(f"  (hog not pinned: {e})", file=sys.stderr)
    return hog


def run_case(
    clip: Path,
    size: tuple[int, int],
    seconds: float,
    cpus: set[int] | None,
    workdir: Path,
    extra: list[str],
) -> dict[str, object]:
    out, rep = workdir / "out.mp4", workdir / "report.json"
    rep.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "blurcam", "cam", "--source", str(clip), "--loop"]
    cmd += ["--width", str(size[0]), "--height", str(size[1])]
    cmd += ["--sink", "file", str(out), "--force", "--stats", "--stats-json", str(rep)]
    cmd += ["--duration", str(seconds), *extra]

    def pin() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)

    env = dict(os.environ)
    if cpus:  # what a machine with that many cores would have (numba sizes its pool by CPU count)
        env.setdefault("NUMBA_NUM_THREADS", str(len(cpus)))
    print("  $ " + " ".join(cmd[2:]), file=sys.stderr)
    subprocess.run(cmd, check=True, preexec_fn=pin, stderr=subprocess.DEVNULL, env=env)
    return json.loads(rep.read_text())


def fmt(name: str, r: dict[str, object]) -> str:
    lat = r["latency_ms"]
    assert isinstance(lat, dict)
    budget = 1000.0 / float(r["fps_nominal"])  # type: ignore[arg-type]
    share = " ".join(
        f"{k}:{v:.0%}"
        for k, v in r["level_share"].items()  # type: ignore[union-attr]
        if v > 0
    )
    ok = "yes" if lat["p95_ms"] <= budget else "NO"
    rec = sum(r.get("sink_dropped", {}).values())  # type: ignore[union-attr]
    return (
        f"{name:<16} {r['fps_nominal']:5.1f} {r['fps_in']:5.1f} {r['fps_out']:5.1f} "
        f"{r['dropped']:5d} {r['source_skipped']:5d} {lat['p50_ms']:6.1f} {lat['p95_ms']:6.1f} "
        f"{lat['max_ms']:6.1f} {budget:6.1f} {ok:>4} {r['max_queue_age_frames']:4d} {rec:4d} "
        f"L{r['level']}  {share}"
    )


HEADER = (
    f"{'case':<16} {'src':>5} {'in':>5} {'out':>5} {'drop':>5} {'skip':>5} "
    f"{'p50':>6} {'p95':>6} {'max':>6} {'budget':>6} {'ok':>4} {'age':>4} {'rec-':>4} "
    "level (share)"
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each case")
    ap.add_argument("--sizes", default="720p,1080p")
    ap.add_argument("--no-hog", action="store_true", help="skip the CPU-hog cases")
    ap.add_argument("--fps30", action="store_true", help="also a 30 fps re-timed clip")
    ap.add_argument("--cpus", default="", help="pin blurcam to these CPUs, e.g. 0,1")
    ap.add_argument("--no-native", action="store_true", help="only the 30 fps clip")
    ap.add_argument("--extra", default="", help="more blurcam cam options, e.g. '--bg-nice 0'")
    ap.add_argument("--json", type=Path, help="write all reports here")
    args = ap.parse_args()
    if not args.clip.is_file():
        print(f"clip not found: {args.clip}", file=sys.stderr)
        return 2
    cpus = {int(c) for c in args.cpus.split(",") if c} or None
    allowed = sorted(cpus or os.sched_getaffinity(0))
    hog_cpu = allowed[-1]
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="blurcam-live-") as tmp:
        work = Path(tmp)
        clips = [] if args.no_native and args.fps30 else [("", args.clip)]
        if args.fps30:
            clips.append(("30fps ", retime(args.clip, work / "clip30.mp4", 30)))
        for tag, clip in clips:
            for size_name in args.sizes.split(","):
                size = SIZES[size_name]
                for hog in (False, True) if not args.no_hog else (False,):
                    name = f"{tag}{size_name}{' +hog' if hog else ''}"
                    print(f"{name} ...", file=sys.stderr)
                    proc = start_hog(hog_cpu) if hog else None
                    try:
                        time.sleep(0.5 if hog else 0)
                        results[name] = run_case(
                            clip, size, args.seconds, cpus, work, args.extra.split()
                        )
                    finally:
                        if proc is not None:
                            proc.kill()
                            proc.wait()
    print(f"cpus: {allowed} (hog on cpu {hog_cpu}); {args.seconds:g} s per case; {args.clip.name}")
    if args.extra:
        print(f"extra options: {args.extra}")
    print(HEADER)
    for name, r in results.items():
        print(fmt(name, r))
    print(
        "latencies in ms (capture -> written); age = max frames newer than the one taken; "
        "rec- = frames the recording left out (encoder behind)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
