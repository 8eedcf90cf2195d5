"""``blurcam batch``: a whole folder or manifest, on a local pool or a Ray cluster."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from ..batch import Tick, connect_ray, discover, make_plan, run_batch, write_report
from ..batch.plan import STATE_DIR
from ..errors import SettingsError
from ..jobs import check_files
from ..settings import Settings
from .common import bar_columns, err_console
from .options import Quality, check_quality, with_settings
from .signals import shield

Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        "-w",
        min=1,
        help="Worker processes (default: one per CPU); with --ray local, the CPUs of the cluster.",
    ),
]


@with_settings("effect", "model", "guards")
def batch(
    input: Annotated[
        Path, typer.Argument(help="Folder (scanned recursively) or a .csv/.json manifest.")
    ],
    output_dir: Annotated[
        Path, typer.Argument(help="Output folder; the input layout is mirrored.")
    ],
    *,
    settings: Settings,
    workers: Workers = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray", help="Run as Ray tasks: a cluster address, 'auto', or 'local' (start one)."
        ),
    ] = None,
    task_cpus: Annotated[
        float, typer.Option("--task-cpus", min=0.1, help="CPUs each Ray task reserves.")
    ] = 1.0,
    retry: Annotated[
        int, typer.Option("--retry", min=0, help="Extra attempts after a transient failure.")
    ] = 1,
    quality: Quality = "fast",
    report: Annotated[
        Path | None,
        typer.Option(
            "--report", help="JSON report path (default: OUTPUT_DIR/blurcam-report.json)."
        ),
    ] = None,
    split_min: Annotated[
        float,
        typer.Option(
            "--split-min",
            min=0.0,
            help="Split videos longer than 2x this many seconds across workers (0 = never).",
        ),
    ] = 0.0,
) -> int:
    """Blur every image and video of a folder or manifest; complete outputs are skipped.

    Takes every option of ``blurcam blur``; a manifest row may set any of them
    for its file. Changing any option that changes the frames redoes the
    files it applies to.
    """
    check_quality(quality)
    check_files(settings)
    if input.is_dir() and output_dir.resolve() == input.resolve():
        raise SettingsError(
            f"the output folder is the input folder ({input}): give another output folder"
        )
    if ray:  # before anything is created: no cluster, no output folder
        connect_ray(ray, workers or os.cpu_count() or 1)
    items = discover(input, exclude=output_dir)
    jobs = make_plan(items, output_dir, settings, quality)
    todo = sum(1 for j in jobs if not j.done)
    err_console.print(
        f"{len(jobs)} file(s): {todo} to do, {len(jobs) - todo} already complete", highlight=False
    )
    with Progress(*bar_columns("note"), console=err_console) as bar:
        files = bar.add_task("files", total=todo or None, note="")
        frames = bar.add_task("frames", total=None, note="")

        def on_tick(t: Tick) -> None:
            bar.update(files, completed=t.files_done, note=f"{t.failed} failed" if t.failed else "")
            bar.update(frames, completed=t.frames_done, total=t.frames_total or None)
            r = t.result
            if r is None:
                return
            if r.status == "failed":
                bar.console.print(f"[red]failed[/red] {r.input}: {r.error}")
            for w in r.warnings:
                bar.console.print(f"[yellow]warning[/yellow] {r.input}: {w}", highlight=False)

        result = run_batch(
            jobs,
            workers=workers or os.cpu_count() or 1,
            ray=ray,
            retry=retry,
            split_min=split_min,
            task_cpus=task_cpus,
            work_dir=output_dir / STATE_DIR / "parts",
            on_tick=on_tick,
        )
        shield()  # what is done is done: a late signal must not lose the report
    path = report or output_dir / "blurcam-report.json"
    write_report(path, result)
    s = result.summary()
    err_console.print(
        f"done {s['done']}, skipped {s['skipped']}, failed {s['failed']}"
        + (f", interrupted {s['interrupted']}" if result.interrupted else "")
        + f" in {s['wall_seconds']:.1f} s ({s['files_per_minute']} files/min,"
        f" {s['x_realtime']}x real time); report: {path}",
        highlight=False,
    )
    for f in result.failures:
        err_console.print(f"  [red]x[/red] {f.input}: {f.error}", highlight=False)
    for f in result.warned:
        err_console.print(
            f"  [yellow]![/yellow] {f.input}: {'; '.join(f.warnings)}", highlight=False
        )
    if result.interrupted:  # exit as the Ctrl-C or SIGTERM that stopped it (130, 143)
        raise KeyboardInterrupt
    return 1 if result.failures else 0
