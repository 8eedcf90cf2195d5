"""Plot a ``blurcam bench --json`` result: ms/frame vs resolution, blurcam beside the naive recipe.

Usage::

    blurcam bench --json > benchmarks/results/bench.json
    python docs/scripts/plot_bench.py benchmarks/results/bench.json docs/img/bench.png

The moving rows (the model on every frame). Left panel: ms/frame against
megapixels, log scale, for blurcam one frame at a time (median), pipelined
(``process_iter``, steady-state throughput) and the naive recipe (median); the
bold ratios are naive / one by one and naive / pipelined. Right panel: blurcam
one by one, mean ms per stage on the calling thread, stacked per size (stage
names come from the JSON, so new stages appear by themselves).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot(res: dict, out: Path) -> None:
    rows = [r for r in res["rows"] if r["workload"] == "moving"]
    mp = [r["width"] * r["height"] / 1e6 for r in rows]
    labels = [r["size"] for r in rows]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.1, 1]})

    series = [
        ("naive", "median_ms", "#c0392b", "naive recipe"),
        ("one_by_one", "median_ms", "#2471a3", "blurcam, one frame at a time"),
        ("pipelined", "ms", "#1e8449", "blurcam pipelined (process_iter)"),
    ]
    for who, key, colour, name in series:
        ms = [r[who][key] for r in rows]
        ax.plot(mp, ms, marker="o", color=colour, label=name)
        for x, y in zip(mp, ms, strict=True):
            ax.annotate(
                f"{y:.1f}",
                (x, y),
                textcoords="offset points",
                xytext=(6, -12),
                fontsize=8,
                color=colour,
            )
    for x, r in zip(mp, rows, strict=True):
        ax.annotate(
            f"{r['x_one_by_one']:.1f}x / {r['x_pipelined']:.1f}x",
            (x, r["naive"]["median_ms"]),
            textcoords="offset points",
            xytext=(-30, 8),
            fontsize=9,
            weight="bold",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(mp, [f"{lab}\n{m:.1f} MP" for lab, m in zip(labels, mp, strict=True)])
    ax.minorticks_off()
    ax.set_ylabel("ms / frame")
    ax.set_title("Moving video, model every frame\n(speed-up one by one / pipelined)", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    lo = min(min(r["pipelined"]["ms"], r["one_by_one"]["median_ms"]) for r in rows)
    ax.set_ylim(bottom=lo * 0.6)

    stages: list[str] = []
    for r in rows:
        stages += [k for k in r["one_by_one"]["stages"] if k not in stages]
    bottom = [0.0] * len(rows)
    cmap = plt.get_cmap("tab10")
    for i, st in enumerate(stages):
        vals = [r["one_by_one"]["stages"].get(st, {}).get("mean_ms", 0.0) for r in rows]
        bx.bar(labels, vals, bottom=bottom, label=st, color=cmap(i % 10))
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    bx.set_ylabel("ms / frame (mean per stage)")
    bx.set_title("blurcam one by one, per stage\n(wall ms on the calling thread)", fontsize=10)
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
