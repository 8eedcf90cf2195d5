"""``blurcam cam``: live video from a camera (or a clip) to a virtual camera, file or preview."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import SettingsError
from ..io import remove_leftovers
from ..jobs import check_files
from ..settings import Settings
from .common import err_console
from .options import with_settings
from .signals import shield

SINKS = ("vcam", "file", "preview", "null")


def _fmt_tick(s: dict[str, Any]) -> str:
    return (
        f"in {s.get('fps_in', 0):5.1f} fps  out {s.get('fps_out', 0):5.1f} fps  "
        f"dropped {s['dropped']:4d}  latency p50 {s.get('p50_ms', 0):5.1f} "
        f"p95 {s.get('p95_ms', 0):5.1f} max {s.get('max_ms', 0):5.1f} ms  "
        f"L{s['level']}  {'on' if s['enabled'] else 'off'}  {s['status']}"
    )


def format_report(r: dict[str, Any]) -> str:
    """The exit report as a few aligned lines (also what the benchmark prints)."""
    lat = r["latency_ms"]
    share = "  ".join(f"{k} {v:.0%}" for k, v in r["level_share"].items() if v > 0)
    return "\n".join(
        [
            f"frames   in {r['frames_in']}  out {r['frames_out']}  dropped {r['dropped']} "
            f"(stale {r['dropped_stale']}, start-up {r['dropped_warmup']})  "
            f"source skipped {r['source_skipped']}",
            f"fps      source {r['fps_nominal']:.2f}  in {r['fps_in']:.2f}  out {r['fps_out']:.2f}"
            f"  over {r['seconds']:.1f} s",
            f"latency  p50 {lat['p50_ms']:.1f}  p95 {lat['p95_ms']:.1f}  max {lat['max_ms']:.1f} ms"
            f"  (budget {1000 / r['fps_nominal']:.1f} ms; p95 first/second half "
            f"{r['latency_p95_first_half_ms']:.1f}/{r['latency_p95_second_half_ms']:.1f})",
            f"backlog  max {r['max_lag_frames']} frame(s) between newest captured and written",
            f"quality  {r['level_text']}  (changes {r['level_changes']}; frames: {share})",
            f"model    {r['inferences']} runs, {r.get('still_skipped', 0)} skipped (still image)",
            "sinks    "
            + ", ".join(f"{k} left out {v}" for k, v in r.get("sink_dropped", {}).items()),
        ]
    )


@with_settings("effect", "model", "guards")
def cam(
    output: Annotated[
        Path | None, typer.Argument(help="Recording path, with --sink file (e.g. out.mp4).")
    ] = None,
    source: Annotated[
        str,
        typer.Option(
            "--source", help="Camera index (0), device (/dev/video0), video file or image folder."
        ),
    ] = "0",
    loop: Annotated[
        bool, typer.Option("--loop", help="Start a file source over at its end.")
    ] = False,
    sink: Annotated[
        list[str] | None,
        typer.Option(
            "--sink", help="vcam (virtual camera), file (give PATH), preview, null; repeatable."
        ),
    ] = None,
    vcam_device: Annotated[
        str | None, typer.Option("--vcam-device", help="Virtual camera, e.g. /dev/video10.")
    ] = None,
    width: Annotated[int | None, typer.Option("--width", help="Frame width (resizes).")] = None,
    height: Annotated[int | None, typer.Option("--height", help="Frame height.")] = None,
    fps: Annotated[
        float | None, typer.Option("--fps", help="Camera fps / image-folder rate.")
    ] = None,
    *,
    settings: Settings,
    level: Annotated[
        int, typer.Option("--level", min=0, max=4, help="Start quality level (0 = best).")
    ] = 0,
    adaptive: Annotated[
        bool, typer.Option("--adaptive/--fixed", help="Adapt quality to the frame budget.")
    ] = True,
    stats: Annotated[
        bool, typer.Option("--stats", help="Live stats line and full report.")
    ] = False,
    stats_json: Annotated[
        Path | None, typer.Option("--stats-json", help="Write the exit report as JSON.")
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", min=0.1, help="Stop after SECONDS.")
    ] = None,
    control_port: Annotated[
        int | None,
        typer.Option(
            "--control-port", min=0, max=65535, help="Local control API/preview port (0 = any)."
        ),
    ] = None,
    bg_nice: Annotated[
        int,
        typer.Option(
            "--bg-nice",
            min=0,
            max=19,
            help="Lower the model thread's priority by this much (Linux; 0 = off).",
        ),
    ] = 10,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite the recording.")] = False,
) -> None:
    """Blur the background of live video; Ctrl-C or SIGTERM stops (a recording is finished
    and kept; a second one while finishing removes it)."""
    from ..live import FileSink, LiveRunner, NullSink, PreviewSink, VirtualCamSink, open_source
    from ..live.control import ControlServer

    sinks_wanted = sink or ["vcam"]
    for name in sinks_wanted:
        if name not in SINKS:
            raise SettingsError(f"--sink must be one of {', '.join(SINKS)}, got {name!r}")
    if "file" in sinks_wanted and output is None:
        raise SettingsError("--sink file needs a PATH, e.g. --sink file out.mp4")
    if output is not None and "file" not in sinks_wanted:
        raise SettingsError(f"got {output} but no --sink file")
    check_files(settings)
    for written in (output, stats_json):  # what a killed recording left there goes
        if written is not None:
            remove_leftovers(written.expanduser().absolute().parent)
    if "preview" in sinks_wanted and control_port is None:
        control_port = 8765

    with contextlib.ExitStack() as stack:
        src = open_source(source, loop=loop, width=width, height=height, fps=fps)
        stack.callback(src.close)
        sinks: list[Any] = []

        def abort_sinks() -> None:
            """Any way out but a finished run (an error, a second Ctrl-C or SIGTERM) leaves
            no half recording; after a finished run, abort changes nothing."""
            for s in sinks:
                s.abort()

        stack.callback(abort_sinks)
        # the sink most likely to fail (no device) first, so nothing else is created
        for name in sorted(sinks_wanted, key=lambda n: n != "vcam"):
            if name == "vcam":
                sinks.append(VirtualCamSink(src.size, src.fps, device=vcam_device))
            elif name == "file":
                assert output is not None
                sinks.append(FileSink(output, src.size, src.fps, force=force))
            elif name == "preview":
                sinks.append(PreviewSink())
            else:
                sinks.append(NullSink())
        runner = LiveRunner(
            src, sinks, settings, adaptive=adaptive, level=level, background_nice=bg_nice
        )
        server = None
        if control_port is not None:
            preview = next((s for s in sinks if isinstance(s, PreviewSink)), None)
            server = ControlServer(runner, port=control_port, preview=preview).start()
            stack.callback(server.close)
            err_console.print(f"controls{' and preview' if preview else ''}: {server.url}")
        where = ", ".join(
            f"{s.name} {getattr(s, 'device', '') or getattr(s, 'path', '')}".strip() for s in sinks
        )
        err_console.print(
            f"blurcam cam: {source} {src.size[0]}x{src.size[1]} @ {src.fps:.2f} fps -> {where}"
            "  (Ctrl-C stops)",
            soft_wrap=True,
        )
        last = {"status": "ok", "level": level}

        def on_tick(snap: dict[str, Any]) -> None:
            if server is not None:
                server.live = {k: snap[k] for k in ("fps_in", "fps_out", "p50_ms", "p95_ms")}
            if stats:
                err_console.print(_fmt_tick(snap), highlight=False, soft_wrap=True)
            elif snap["status"] != last["status"] or snap["level"] != last["level"]:
                err_console.print(f"{snap['status']}  quality {snap['level_text']}", soft_wrap=True)
            last["status"], last["level"] = snap["status"], snap["level"]

        report = runner.run(duration=duration, on_tick=on_tick)
        shield()  # the recording is finished: a late signal must not undo "wrote"
    if stats:
        err_console.print(format_report(report), highlight=False, soft_wrap=True)
    else:
        lat = report["latency_ms"]
        err_console.print(
            f"{report['frames_out']} frames out, {report['dropped']} dropped, latency p95 "
            f"{lat['p95_ms']:.1f} ms, quality L{report['level']}",
            highlight=False,
            soft_wrap=True,
        )
    if stats_json is not None:
        from ..io import atomic_output

        with atomic_output(stats_json) as tmp:
            tmp.write_text(json.dumps(report, indent=2))
    if output is not None and output.exists():
        err_console.print(f"wrote {output}")
