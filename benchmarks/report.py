"""Markdown tables from ``blurcam eval --json`` and ``blurcam bench --json`` output.

The tables in docs/EVAL.md and docs/BENCHMARKS.md are pasted from this, so a
re-run gives the same layout::

    python benchmarks/report.py eval benchmarks/results/eval-pipeline.json [more.json ...]
    python benchmarks/report.py bench benchmarks/results/bench.json
    python benchmarks/report.py compare benchmarks/results/quality-compare.json

``compare`` takes ``blurcam eval DATASET --compare raw --json`` output: one row per set and
per sequence, raw model and blurcam side by side (the docs/QUALITY.md table).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _f(x: float | None, d: int = 3) -> str:
    return "-" if x is None else f"{x:.{d}f}"


def eval_table(reports: list[tuple[str, dict[str, Any]]]) -> str:
    lines = [
        "| run | set | frames | mIoU | boundary F | flicker dtSSD | temporal change |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for label, rep in reports:
        for d in rep["datasets"]:
            lines.append(
                f"| {label} | **{d['name']}** | {d['scored']} | {_f(d['miou'])} | "
                f"{_f(d['boundary_f'])} | {_f(d['flicker_dtssd'], 2)} | "
                f"{_f(d['temporal_change'], 2)} |"
            )
            for s in d.get("sequences", []):
                lines.append(
                    f"| {label} | {d['name']}/{s['name']} | {s['scored']} | {_f(s['miou'])} | "
                    f"{_f(s['boundary_f'])} | {_f(s['flicker_dtssd'], 2)} | "
                    f"{_f(s['temporal_change'], 2)} |"
                )
        o = rep["overall"]
        lines.append(
            f"| {label} | overall | {o['frames']} | {_f(o['miou'])} | {_f(o['boundary_f'])} | "
            f"{_f(o['flicker_dtssd'], 2)} | {_f(o['temporal_change'], 2)} |"
        )
    return "\n".join(lines)


def bench_tables(res: dict[str, Any]) -> str:
    """The docs/BENCHMARKS.md tables of one ``blurcam bench --json`` run."""
    out = [
        "| size | workload | one by one median (p95) | pipelined | naive median (p95) | "
        "speed-up one by one / pipelined | CPU ms/frame one by one / pipelined / naive | "
        "model runs |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["rows"]:
        a, p, b = r["one_by_one"], r["pipelined"], r["naive"]
        work = "moving, model every frame" if r["workload"] == "moving" else "still clip, gate on"
        out.append(
            f"| {r['size']} ({r['width']}x{r['height']}) | {work} | "
            f"{a['median_ms']:.2f} ms ({a['p95_ms']:.2f}) | {p['ms']:.2f} ms | "
            f"{b['median_ms']:.2f} ms ({b['p95_ms']:.2f}) | "
            f"**{r['x_one_by_one']:.1f}x** / **{r['x_pipelined']:.1f}x** | "
            f"{a['cpu_mean_ms']:.1f} / {p['cpu_ms']:.1f} / {b['cpu_mean_ms']:.1f} | "
            f"{r['model_runs']:.0%} |"
        )
    moving = [r for r in res["rows"] if r["workload"] == "moving"]
    for who, title in (("one_by_one", "blurcam one by one"), ("naive", "naive")):
        names: list[str] = []
        for r in moving:
            names += [k for k in r[who]["stages"] if k not in names]
        out += [
            "",
            f"{title}, moving, per stage: mean ms/frame (median in brackets):",
            "",
            "| size | " + " | ".join(names) + " | sum of means | end-to-end mean |",
            "|---|" + "---:|" * (len(names) + 2),
        ]
        for r in moving:
            st = r[who]["stages"]
            cells = [
                f"{st[n]['mean_ms']:.2f} ({st[n]['median_ms']:.2f})" if n in st else "-"
                for n in names
            ]
            tot = sum(st[n]["mean_ms"] for n in names if n in st)
            end = f" | {tot:.2f} | {r[who]['mean_ms']:.2f} |"
            out.append(f"| {r['size']} | " + " | ".join(cells) + end)
    if res.get("effects"):
        out += [
            "",
            f"effects at {res['effects'][0]['size']}, one by one, model every frame:",
            "",
            "| effect | median | p95 | vs blur |",
            "|---|---:|---:|---:|",
        ]
        for e in res["effects"]:
            if "error" in e:
                out.append(f"| {e['effect']} | skipped: {e['error']} | | |")
            else:
                out.append(
                    f"| {e['effect']} | {e['median_ms']:.2f} ms | {e['p95_ms']:.2f} ms | "
                    f"{e.get('vs_blur', float('nan')):.2f}x |"
                )
    return "\n".join(out)


def compare_table(out: dict[str, Any]) -> str:
    cols = (
        ("miou", "mIoU", 3),
        ("boundary_f", "BF", 3),
        ("flicker_dtssd", "dtSSD", 2),
        ("temporal_change", "temporal change", 2),
        ("far_fp_pct", "far FP %", 2),
    )
    head = " | ".join(f"{label} raw / blurcam" for _, label, _ in cols)
    lines = [
        f"| set / sequence | frames | {head} | vs raw |",
        "|---|---:|" + "---:|" * len(cols) + "---|",
    ]
    for r in out["comparison"]:
        cells = []
        for key, _, d in cols:
            a, b = r["raw"][key], r["pipeline"][key]
            cells.append("-" if a is None and b is None else f"{_f(a, d)} / **{_f(b, d)}**")
        name = f"**{r['name']}**" if "/" not in r["name"] else r["name"]
        verdict = "worse: " + "; ".join(r["failures"]) if r["failures"] else "ok"
        lines.append(f"| {name} | {r['frames']} | {' | '.join(cells)} | {verdict} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] not in ("eval", "bench", "compare"):
        print(__doc__)
        return 2
    if argv[1] == "eval":
        reps = []
        for p in argv[2:]:
            rep = json.loads(Path(p).read_text())
            reps.append((Path(p).stem.removeprefix("eval-"), rep))
        print(eval_table(reps))
    elif argv[1] == "compare":
        print(compare_table(json.loads(Path(argv[2]).read_text())))
    else:
        print(bench_tables(json.loads(Path(argv[2]).read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
