"""``blurcam eval`` (quality against ground truth) and ``blurcam bench`` (speed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from ..errors import SettingsError, SourceError
from ..evaluate import bench as benchmod
from ..evaluate import compare as comparemod
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
    compare: Annotated[
        str | None,
        typer.Option(
            "--compare",
            help="'raw': score the pipeline and the raw model, one table per set with every "
            "sequence, and exit 1 where the pipeline is worse (mIoU more than 0.003 below, "
            "boundary F below, dtSSD or far false positives above).",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="First N photos per image set / frames per sequence."),
    ] = None,
    threads: Threads = DEFAULT_THREADS,
) -> None:
    """Score masks against ground truth: mIoU, boundary F, far false positives, flicker (dtSSD)."""
    if compare is not None and compare != "raw":
        raise SettingsError(f"--compare takes 'raw', got {compare!r}")
    if compare is not None and raw:
        raise SettingsError("--compare raw already runs the raw model: drop --raw")
    settings = build_settings(model=model, threads=threads)
    sets = [d.limited(limit) for d in datasets.discover(dataset)]
    kinds = ["pipeline", "raw"] if compare else ["raw" if raw else "pipeline"]
    total = sum(d.frames for d in sets) * len(kinds)
    reports: dict[str, runner.EvalReport] = {}
    with progress_bar("eval", total) as bar:
        for kind in kinds:
            factory = (
                runner.RawPredictors(settings)
                if kind == "raw"
                else runner.PipelinePredictors(settings)
            )
            try:
                reports[kind] = runner.evaluate(
                    sets, factory, name=factory.kind, model=model, progress=bar.add
                )
            finally:
                factory.close()
    if not compare:
        report = reports[kinds[0]]
        if json_out:
            typer.echo(json.dumps(report.to_dict(), indent=2))
            return
        _print_eval(report)
        return
    rows = comparemod.compare(reports["pipeline"], reports["raw"])
    worse = comparemod.failures(rows)
    if json_out:
        out = {
            "pipeline": reports["pipeline"].to_dict(),
            "raw": reports["raw"].to_dict(),
            "comparison": [r.to_dict() for r in rows],
            "worse_than_raw": worse,
        }
        typer.echo(json.dumps(out, indent=2))
    else:
        _print_compare(reports["pipeline"], rows)
    if worse:
        err_console.print(f"pipeline worse than the raw model on {len(worse)} of {len(rows)} rows")
        raise typer.Exit(1)


def _print_compare(report: runner.EvalReport, rows: list[comparemod.CompareRow]) -> None:
    models = ", ".join(report.models) or report.model
    digits = {"flicker_dtssd": 2, "temporal_change": 2, "far_fp_pct": 2}
    for d in report.datasets:
        metrics = [
            m
            for m in comparemod.METRICS
            if d.kind == "video" or m[0] not in ("flicker_dtssd", "temporal_change")
        ]
        t = Table(title=f"{d.name}: raw model and blurcam ({models})", box=box.SIMPLE_HEAD)
        t.add_column("set" if d.kind == "images" else "sequence", min_width=16)
        t.add_column("n", justify="right")
        t.add_column("predictor")
        for _, _, label, _ in metrics:
            t.add_column(label, justify="right")
        for r in rows:
            if r.dataset != d.name:
                continue
            name = f"[bold]{d.name}[/bold]" if r.sequence is None else r.sequence
            raw = [_f(r.raw[key], digits.get(key, 3)) for key, _, _, _ in metrics]
            t.add_row(name, str(r.frames), "raw", *raw)
            ours = []
            for key, _, label, _ in metrics:
                v = _f(r.pipeline[key], digits.get(key, 3))
                bad = any(f.startswith(label + " ") for f in r.failures)
                ours.append(f"[red]{v}[/red]" if bad else v)
            who = "[red]blurcam x[/red]" if r.failures else "blurcam"
            t.add_row("", "", who, *ours, end_section=True)
        console.print(t)
    console.print(
        "mIoU at alpha >= 0.5; BF: boundary F, tolerance 0.5% of the diagonal; dtSSD x100 and "
        "change (mean |alpha_t - alpha_t-1| x100 where the truth is still): lower is better; "
        "far FP: % of the frame marked person farther than 2% of the diagonal from the truth. "
        "blurcam x: worse than raw (mIoU more than 0.003 below, BF below, dtSSD or far FP above)."
    )
    for line in comparemod.failures(rows):
        console.print(f"[red]worse than raw[/red] {line}")


def _print_eval(report: runner.EvalReport) -> None:
    models = ", ".join(report.models) or report.model
    t = Table(title=f"blurcam eval: {report.predictor} predictor, model {models}")
    for col in ("set", "frames", "mIoU", "boundary F", "far FP %", "flicker dtSSD", "change"):
        t.add_column(col, justify="left" if col == "set" else "right")
    for d in report.datasets:
        t.add_row(
            f"[bold]{d.name}[/bold]",
            str(d.scored),
            _f(d.miou),
            _f(d.boundary_f),
            _f(d.far_fp),
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
                    _f(s.far_fp),
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
        _f(o["far_fp_pct"]),
        _f(o["flicker_dtssd"], 2),
        _f(o["temporal_change"], 2),
    )
    console.print(t)
    console.print(
        "boundary F: tolerance 0.5% of the image diagonal; far FP: % of the frame marked "
        "person farther than 2% of the diagonal from the truth; flicker: dtSSD x100 (lower is "
        "better); change: mean |alpha_t - alpha_t-1| x100 where the truth is still."
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
