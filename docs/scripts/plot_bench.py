"""Plot a ``blurcam bench --json`` result: ms/frame vs resolution, blurcam beside the naive recipe.

Usage::

    blurcam bench --frames 200 --json > benchmarks/results/bench.json
    python docs/scripts/plot_bench.py benchmarks/results/bench.json docs/img/bench.png

Left panel: median end-to-end ms/frame (bars to p95) against megapixels, log
scale, for blurcam (one frame at a time, and pipelined with two frames in
flight) and the naive reference; the bold ratio is naive / best blurcam. Right panel: blurcam's mean
per-stage ms/frame stacked per size (stage names come from the JSON, so new
pipeline stages appear by themselves).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot(res: dict, out: Path) -> None:
    rows = res["sizes"]
    mp = [r["width"] * r["height"] / 1e6 for r in rows]
    labels = [r["size"] for r in rows]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.1, 1]})

    series = [
        ("naive", "#c0392b", "naive reference"),
        ("blurcam", "#2471a3", "blurcam, one frame at a time"),
        ("pipelined", "#1e8449", "blurcam pipelined (process_iter)"),
    ]
    for who, colour, name in series:
        if not all(who in r for r in rows):
            continue  # results from before the pipelined mode
        med = [r[who]["median_ms"] for r in rows]
        p95 = [r[who]["p95_ms"] for r in rows]
        err = [[0] * len(med), [max(0.0, p - m) for p, m in zip(p95, med, strict=True)]]
        ax.errorbar(mp, med, yerr=err, marker="o", capsize=4, color=colour, label=name)
        for x, y in zip(mp, med, strict=True):
            ax.annotate(
                f"{y:.1f}",
                (x, y),
                textcoords="offset points",
                xytext=(6, -12),
                fontsize=8,
                color=colour,
            )
    for x, r in zip(mp, rows, strict=True):
        best = r.get("speedup_pipelined") or r["speedup_median"]
        ax.annotate(
            f"{best:.1f}x",
            (x, r["naive"]["median_ms"]),
            textcoords="offset points",
            xytext=(-10, 8),
            fontsize=9,
            weight="bold",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(mp, [f"{lab}\n{m:.1f} MP" for lab, m in zip(labels, mp, strict=True)])
    ax.minorticks_off()
    ax.set_ylabel("ms / frame (median, bar to p95)")
    ax.set_title("End to end, same run (speed-up in bold)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    lo = min(r.get("pipelined", r["blurcam"])["median_ms"] for r in rows)
    ax.set_ylim(bottom=lo * 0.6)

    stages: list[str] = []
    for r in rows:
        stages += [k for k in r["blurcam"]["stages"] if k not in stages]
    bottom = [0.0] * len(rows)
    cmap = plt.get_cmap("tab10")
    for i, st in enumerate(stages):
        vals = [r["blurcam"]["stages"].get(st, {}).get("mean_ms", 0.0) for r in rows]
        bx.bar(labels, vals, bottom=bottom, label=st, color=cmap(i % 10))
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    bx.set_ylabel("ms / frame (mean per stage)")
    bx.set_title("blurcam per stage")
    bx.legend(fontsize=8)
    bx.grid(True, axis="y", alpha=0.3)

    m = res.get("machine", {})
    fig.suptitle(
        f"blurcam bench: {res['frames']} frames per size, {m.get('cpus', '?')} CPU cores "
        f"({m.get('cpu', '')}), load avg {res.get('loadavg_before')}",
        fontsize=9,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str]) -> int:
    src = Path(argv[1]) if len(argv) > 1 else Path("benchmarks/results/bench.json")
    out = Path(argv[2]) if len(argv) > 2 else Path("docs/img/bench.png")
    plot(json.loads(src.read_text()), out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
