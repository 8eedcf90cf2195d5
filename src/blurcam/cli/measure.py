"""``blurcam eval`` (quality against ground truth) and ``blurcam bench`` (speed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..errors import SourceError
from ..evaluate import bench as benchmod
from ..evaluate import datasets, runner
from ..settings import DEFAULT_THREADS, build_settings
from .common import console, err_console, progress_bar
from .options import Model, Threads

Json = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of tables.")]


def _f(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def eval_(
    dataset: Annotated[
        Path,
        typer.Argument(
            help="Folder laid out like ../shared/data (images/+masks/ sets, "
            "<seq>/frames/+<seq>/masks/ sequences)."
        ),
    ],
    json_out: Json = False,
    model: Model = "auto",
    raw: Annotated[
        bool,
        typer.Option("--raw", help="Model only: bilinear upsample, threshold 0.5, no smoothing."),
    ] = False,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="First N photos per image set / frames per sequence."),
    ] = None,
    threads: Threads = DEFAULT_THREADS,
) -> None:
    """Score masks against ground truth: mIoU, boundary F-score, flicker (dtSSD) on sequences."""
    settings = build_settings(model=model, threads=threads)
    sets = [d.limited(limit) for d in datasets.discover(dataset)]
    factory = runner.RawPredictors(settings) if raw else runner.PipelinePredictors(settings)
    total = sum(d.frames for d in sets)
    try:
        with progress_bar("eval", total) as bar:
            report = runner.evaluate(
                sets, factory, name=factory.kind, model=model, progress=bar.add
            )
    finally:
        factory.close()
    if json_out:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    _print_eval(report)


def _print_eval(report: runner.EvalReport) -> None:
    models = ", ".join(report.models) or report.model
    t = Table(title=f"blurcam eval: {report.predictor} predictor, model {models}")
    for col in ("set", "frames", "mIoU", "boundary F", "flicker dtSSD", "temporal change"):
        t.add_column(col, justify="left" if col == "set" else "right")
    for d in report.datasets:
        t.add_row(
            f"[bold]{d.name}[/bold]",
            str(d.scored),
            _f(d.miou),
            _f(d.boundary_f),
            _f(d.flicker, 2),
            _f(d.change, 2),
        )
        if d.kind == "video":
            for s in d.sequences:
                t.add_row(
                    f"  {s.name}",
                    str(len(s.ious)),
                    _f(s.miou),
                    _f(s.boundary_f),
                    _f(s.flicker, 2),
                    _f(s.change, 2),
                )
    o = report.overall()
    t.add_section()
    t.add_row(
        "[bold]overall[/bold]",
        str(sum(d.scored for d in report.datasets)),
        _f(o["miou"]),
        _f(o["boundary_f"]),
        _f(o["flicker_dtssd"], 2),
        _f(o["temporal_change"], 2),
    )
    console.print(t)
    console.print(
        "boundary F: tolerance 0.5% of the image diagonal; flicker: dtSSD x100 (lower is "
        "better); temporal change: mean |alpha_t - alpha_t-1| x100 where the truth is still."
    )


def bench(
    json_out: Json = False,
    frames: Annotated[
        int, typer.Option("--frames", "-n", min=1, help="Timed frames per size.")
    ] = 120,
    sizes: Annotated[
        str, typer.Option("--sizes", help="Comma list: 720p, 1080p, 4k or WIDTHxHEIGHT.")
    ] = "720p,1080p,4k",
    clip: Annotated[
        Path | None,
        typer.Option(
            "--clip",
            help="Video (or folder of frames) timed on its consecutive frames "
            "(default: ../shared's talking-head clip, else the bundled sample clip).",
        ),
    ] = None,
    effects: Annotated[
        bool, typer.Option("--effects", help="Also time every effect kind (at 1080p).")
    ] = False,
    model: Model = "auto",
    threads: Threads = DEFAULT_THREADS,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Evaluation data folder (default ../shared/data)."),
    ] = None,
    synthetic: Annotated[
        bool, typer.Option("--synthetic", help="A synthetic moving scene instead of a clip.")
    ] = False,
) -> None:
    """ms/frame on moving video (model on every frame), one by one and pipelined, beside the
    naive recipe in the same run; a still clip as an extra row."""
    settings = build_settings(model=model, threads=threads)
    size_list = benchmod.parse_sizes(sizes)
    if clip is not None and not clip.exists():
        raise SourceError(f"clip not found: {clip}")
    total = benchmod.planned_frames(frames, len(size_list), effects)
    with progress_bar("bench", total) as bar:
        res = benchmod.run_bench(
            frames=frames,
            sizes=size_list,
            effects=effects,
            settings=settings,
            clip=clip,
            data=data,
            synthetic=synthetic,
            progress=bar.add,
        )
    if json_out:
        typer.echo(json.dumps(res, indent=2))
        return
    _print_bench(res)


def _print_bench(res: dict[str, Any]) -> None:
    console.print(f"[bold]blurcam bench[/bold]: {res['source']}, {res['frames']} frames per size")
    t = Table(title="ms per frame (median; pipelined: steady state), naive / blurcam in brackets")
    for col in ("size", "workload", "one by one", "pipelined", "naive", "model runs", "p95"):
        t.add_column(col, justify="left" if col in ("size", "workload") else "right")
    for r in res["rows"]:
        a, p, b = r["one_by_one"], r["pipelined"], r["naive"]
        work = "moving, model every frame" if r["workload"] == "moving" else "still, gate on"
        t.add_row(
            f"{r['size']} ({r['width']}x{r['height']})",
            work,
            f"{a['median_ms']:.2f} ({r['x_one_by_one']:.1f}x)",
            f"{p['ms']:.2f} ({r['x_pipelined']:.1f}x)",
            f"{b['median_ms']:.2f}",
            f"{r['model_runs']:.0%}",
            f"{a['p95_ms']:.2f}",
        )
    console.print(t)
    moving = [r for r in res["rows"] if r["workload"] == "moving"]
    names: list[str] = []
    for r in moving:
        names += [k for k in r["one_by_one"]["stages"] if k not in names]
    stages = Table(title="one by one, moving: mean ms per stage")
    stages.add_column("size")
    for n in names:
        stages.add_column(n, justify="right")
    for r in moving:
        st = r["one_by_one"]["stages"]
        stages.add_row(r["size"], *[f"{st[n]['mean_ms']:.2f}" if n in st else "-" for n in names])
    console.print(stages)
    if res["effects"]:
        e = Table(title=f"effects at {res['effects'][0]['size']}, one by one, model every frame")
        for col in ("effect", "median", "p95", "vs blur"):
            e.add_column(col, justify="left" if col == "effect" else "right")
        for r in res["effects"]:
            if "error" in r:
                e.add_row(r["effect"], "skipped", r["error"][:60], "")
            else:
                e.add_row(
                    r["effect"],
                    f"{r['median_ms']:.2f} ms",
                    f"{r['p95_ms']:.2f}",
                    f"{r.get('vs_blur', float('nan')):.2f}x",
                )
        console.print(e)
    err_console.print(
        f"{res['machine']['cpus']} CPUs ({res['machine']['cpu']}); load average before "
        f"{res['loadavg_before']}, after {res['loadavg_after']}"
    )
