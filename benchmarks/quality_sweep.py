"""Sweep mask settings with the official ``blurcam eval`` runner (same metrics as docs/EVAL.md).

Usage: python benchmarks/quality_sweep.py SET [key=value,key=value ...]

``SET`` is a folder for ``blurcam.evaluate.datasets.discover`` (e.g.
``../shared/data/davis``); each further argument is one configuration of
``MaskSettings``/``GuardSettings`` fields (``face=0`` turns the face guard off).
Prints mIoU, boundary F, dtSSD, temporal change and far false positives (%) per
set; with ``--sequences`` also per video sequence.
"""

from __future__ import annotations

import sys
from dataclasses import fields, replace
from typing import Any

from blurcam.evaluate.datasets import discover
from blurcam.evaluate.runner import PipelinePredictors, evaluate
from blurcam.settings import GuardSettings, MaskSettings, Settings


def parse(spec: str) -> Settings:
    s = Settings()
    mk = {f.name for f in fields(MaskSettings)}
    gk = {f.name for f in fields(GuardSettings)}
    for kv in filter(None, spec.split(",")):
        k, v = kv.split("=")
        if k in mk:
            t = type(getattr(s.mask, k))
            s = replace(s, mask=replace(s.mask, **{k: t(float(v)) if t is not bool else v == "1"}))
        elif k in gk:
            t = type(getattr(s.guards, k))
            val = v == "1" if t is bool else (v if t is str else t(float(v)))
            s = replace(s, guards=replace(s.guards, **{k: val}))
        else:
            raise SystemExit(f"unknown setting {k}")
    return s


def _line(spec: str, name: str, r: Any) -> str:
    nan = float("nan")
    return (
        f"{spec or 'default':40s} {name:24s} mIoU {r.miou:.4f} BF {r.boundary_f:.4f} "
        f"dtSSD {r.flicker if r.flicker is not None else nan:.2f} "
        f"change {r.change if r.change is not None else nan:.3f} far {r.far_fp:.3f}"
    )


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--sequences"]
    sets = discover(args[0])
    for spec in args[1:] or [""]:
        rep = evaluate(sets, PipelinePredictors(parse(spec)))
        for ds in rep.datasets:
            print(_line(spec, ds.name, ds), flush=True)
            if "--sequences" in sys.argv and ds.kind == "video":
                for sq in ds.sequences:
                    print(_line(spec, f"{ds.name}/{sq.name}", sq), flush=True)


if __name__ == "__main__":
    main()
