"""The pipeline beside the raw model, per set and per sequence: where is it worse?

``blurcam eval DATASET --compare raw`` scores both predictors of
:mod:`blurcam.evaluate.runner` on the same data and lines them up here. A
row *fails* when the pipeline is worse than the model alone on it:

* mIoU more than ``miou_slack`` (0.003) below the raw model's;
* boundary F below it;
* far false positives (:func:`metrics.far_false_positives`) above it;
* dtSSD above it (video sequences).

Every stage between the model and the composite has to earn its place on
every set and every sequence, not on the mean: a gain on portraits does not
pay for a person dropped on street photos. Temporal change is listed beside
dtSSD but not judged (a frozen mask is perfect on it; docs/QUALITY.md).
Pure: takes two :class:`~blurcam.evaluate.runner.EvalReport` and returns rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .runner import DatasetResult, EvalReport, SequenceResult

__all__ = ["METRICS", "MIOU_SLACK", "CompareRow", "compare", "failures"]

MIOU_SLACK = 0.003  # mIoU the pipeline may lose against the raw model (boundary noise)

# (key, attribute of SequenceResult/DatasetResult, label, higher is better or None: not judged)
METRICS: tuple[tuple[str, str, str, bool | None], ...] = (
    ("miou", "miou", "mIoU", True),
    ("boundary_f", "boundary_f", "BF", True),
    ("flicker_dtssd", "flicker", "dtSSD", False),
    ("temporal_change", "change", "change", None),
    ("far_fp_pct", "far_fp", "far FP %", False),
)


@dataclass(frozen=True, slots=True)
class CompareRow:
    """One set (``sequence`` None: the set's mean) or one sequence of a video set."""

    dataset: str
    sequence: str | None
    frames: int
    pipeline: dict[str, float | None]
    raw: dict[str, float | None]
    failures: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.dataset if self.sequence is None else f"{self.dataset}/{self.sequence}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "frames": self.frames,
            "pipeline": self.pipeline,
            "raw": self.raw,
            "failures": list(self.failures),
        }


def _values(r: DatasetResult | SequenceResult) -> dict[str, float | None]:
    return {key: getattr(r, attr) for key, attr, _, _ in METRICS}


def _judge(
    pipe: dict[str, float | None], raw: dict[str, float | None], miou_slack: float
) -> tuple[str, ...]:
    out = []
    for key, _, label, higher in METRICS:
        p, r = pipe[key], raw[key]
        if higher is None or p is None or r is None:
            continue
        slack = miou_slack if key == "miou" else 0.0
        worse = p < r - slack if higher else p > r
        if worse:
            out.append(f"{label} {p:.4f} vs raw {r:.4f}")
    return tuple(out)


def compare(
    pipeline: EvalReport, raw: EvalReport, *, miou_slack: float = MIOU_SLACK
) -> list[CompareRow]:
    """Rows for every set (its mean) and every sequence of every video set, in report order.

    Sets and sequences are matched by name; one missing from ``raw`` is
    compared against nothing and cannot fail.
    """
    raw_sets = {d.name: d for d in raw.datasets}
    rows = []
    for d in pipeline.datasets:
        rd = raw_sets.get(d.name)
        pv = _values(d)
        rv = _values(rd) if rd is not None else dict.fromkeys(pv)
        rows.append(CompareRow(d.name, None, d.scored, pv, rv, _judge(pv, rv, miou_slack)))
        if d.kind != "video":
            continue
        raw_seqs = {s.name: s for s in rd.sequences} if rd is not None else {}
        for s in d.sequences:
            rs = raw_seqs.get(s.name)
            sv = _values(s)
            rsv = _values(rs) if rs is not None else dict.fromkeys(sv)
            rows.append(
                CompareRow(d.name, s.name, len(s.ious), sv, rsv, _judge(sv, rsv, miou_slack))
            )
    return rows


def failures(rows: list[CompareRow]) -> list[str]:
    """One line per failing row: ``set[/sequence]: what is worse``."""
    return [f"{r.name}: {'; '.join(r.failures)}" for r in rows if r.failures]
