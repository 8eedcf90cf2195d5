"""Sweep mask settings with the official ``blurcam eval`` runner (same metrics as docs/EVAL.md).

Usage: python benchmarks/quality_sweep.py SET [key=value,key=value ...]

``SET`` is a folder for ``blurcam.evaluate.datasets.discover`` (e.g.
``../shared/data/davis``); each further argument is one configuration of
``MaskSettings``/``GuardSettings`` fields (``face=0`` turns the face guard off).
"""

from __future__ import annotations

import sys
from dataclasses import fields, replace

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


def main() -> None:
    sets = discover(sys.argv[1])
    for spec in sys.argv[2:] or [""]:
        rep = evaluate(sets, PipelinePredictors(parse(spec)))
        for ds in rep.datasets:
            print(
                f"{spec or 'default':40s} {ds.name:10s} mIoU {ds.miou:.4f} BF {ds.boundary_f:.4f} "
                f"dtSSD {ds.flicker if ds.flicker is not None else float('nan'):.2f} "
                f"change {ds.change if ds.change is not None else float('nan'):.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
