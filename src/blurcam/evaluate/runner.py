"""Run a predictor over evaluation sets and score it against the ground truth.

A *predictor* is any callable ``frame -> alpha`` (frame uint8 HxWx3 BGR;
alpha uint8 0..255, bool or float 0..1, HxW). A *predictor factory* builds a
fresh one per sequence (one photo of an image set is a sequence of one), so
temporal state never leaks from one sequence into the next. Two factories
are provided:

* :class:`PipelinePredictors`: the whole blurcam pipeline, ``Stream.process``
  then ``Stream.last_alpha``: what users get.
* :class:`RawPredictors`: the model alone, probability resized bilinearly to
  the frame and thresholded at 0.5, no smoothing or refinement: the recipe of
  the reference numbers in ``../shared/data/README.md``.

Both share one segmenter per model across sequences (loading a model per
photo would dominate the run) and reset it per sequence.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from ..frame import U8
from ..pipeline import Stream
from ..segment import Segmenter, open_segmenter
from ..segment.registry import resolve_model
from ..settings import SegmentSettings, Settings
from . import metrics
from .datasets import Dataset, Sequence, read_frame, read_mask

__all__ = [
    "DatasetResult",
    "EvalReport",
    "PipelinePredictors",
    "Predictor",
    "PredictorFactory",
    "RawPredictors",
    "SequenceResult",
    "evaluate",
    "evaluate_sequence",
]

log = logging.getLogger(__name__)

Predictor = Callable[[U8], NDArray[Any]]
PredictorFactory = Callable[[], Predictor]

_WORST = 5  # worst items listed per image set


class _Segmenters:
    """One open segmenter per resolved model name, shared by the predictors of a run."""

    def __init__(self, segment: SegmentSettings) -> None:
        self.segment = segment
        self._open: dict[str, Segmenter] = {}

    def get(self, frame_size: tuple[int, int]) -> Segmenter:
        name = resolve_model(self.segment.model, frame_size)
        seg = self._open.get(name)
        if seg is None:
            seg = open_segmenter(
                name,
                frame_size=frame_size,
                threads=self.segment.threads,
                device=self.segment.device,
            )
            self._open[name] = seg
            log.info("evaluating with model %s", seg.name)
        seg.reset()
        return seg

    @property
    def names(self) -> list[str]:
        return sorted(self._open)

    def close(self) -> None:
        for seg in self._open.values():
            seg.close()
        self._open.clear()


class _Predictors:
    """What both predictor factories share: settings and one segmenter per model."""

    kind = ""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._segs = _Segmenters(self.settings.segment)

    @property
    def models(self) -> list[str]:
        return self._segs.names

    def close(self) -> None:
        self._segs.close()


class PipelinePredictors(_Predictors):
    """Factory of full-pipeline predictors: a new :class:`Stream` per sequence."""

    kind = "pipeline"

    def __call__(self) -> Predictor:
        return self._predictor(photo=False)

    def for_images(self) -> Predictor:
        """Predictor for a set of photos: :meth:`Stream.process_image`, like ``blurcam blur``."""
        return self._predictor(photo=True)

    def _predictor(self, *, photo: bool) -> Predictor:
        stream: Stream | None = None

        def predict(frame: U8) -> U8:
            nonlocal stream
            if stream is None:
                h, w = frame.shape[:2]
                stream = Stream(self.settings, self._segs.get((w, h)))
            if photo:
                stream.process_image(frame)
            else:
                stream.process(frame)
            alpha = stream.last_alpha
            assert alpha is not None
            out: U8 = alpha.copy()  # the stream reuses its buffer on the next frame
            return out

        return predict


class RawPredictors(_Predictors):
    """Factory of model-only predictors: bilinear upsample, threshold 0.5, no state."""

    kind = "raw"

    def __call__(self) -> Predictor:
        def predict(frame: U8) -> NDArray[np.bool_]:
            h, w = frame.shape[:2]
            prob = self._segs.get((w, h))(frame)
            return cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR) > 0.5

        return predict


def _mean(xs: Iterable[float]) -> float | None:
    xs = list(xs)
    return float(statistics.fmean(xs)) if xs else None


def _pct(x: float | None) -> float | None:
    return None if x is None else 100.0 * x


@dataclass
class SequenceResult:
    """Scores of one sequence (or one photo). Temporal scores need two annotated neighbours."""

    name: str
    frames: int
    ious: list[float] = field(default_factory=list)
    bfs: list[float] = field(default_factory=list)
    far_fps: list[float] = field(default_factory=list)
    dtssds: list[float] = field(default_factory=list)
    changes: list[float] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)

    @property
    def miou(self) -> float | None:
        return _mean(self.ious)

    @property
    def boundary_f(self) -> float | None:
        return _mean(self.bfs)

    @property
    def far_fp(self) -> float | None:
        """Mean share of the frame marked person far from the truth, in % (see
        :func:`metrics.far_false_positives`)."""
        return _pct(_mean(self.far_fps))

    @property
    def flicker(self) -> float | None:
        return _mean(self.dtssds)

    @property
    def change(self) -> float | None:
        return _mean(self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "frames": self.frames,
            "scored": len(self.ious),
            "miou": self.miou,
            "boundary_f": self.boundary_f,
            "far_fp_pct": self.far_fp,
            "flicker_dtssd": self.flicker,
            "temporal_change": self.change,
        }


@dataclass
class DatasetResult:
    """Scores of one set.

    Image sets average over photos. Video sets average over sequences (each
    sequence's mean first, as the DAVIS benchmark does), so a long sequence
    does not outweigh a short one.
    """

    name: str
    kind: str
    sequences: list[SequenceResult]

    def _agg(self, attr: str, per_item: str) -> float | None:
        if self.kind == "images":
            return _mean(x for s in self.sequences for x in getattr(s, per_item))
        return _mean(v for s in self.sequences if (v := getattr(s, attr)) is not None)

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.sequences)

    @property
    def scored(self) -> int:
        return sum(len(s.ious) for s in self.sequences)

    @property
    def miou(self) -> float | None:
        return self._agg("miou", "ious")

    @property
    def boundary_f(self) -> float | None:
        return self._agg("boundary_f", "bfs")

    @property
    def far_fp(self) -> float | None:
        if self.kind == "images":
            return _pct(_mean(x for s in self.sequences for x in s.far_fps))
        return self._agg("far_fp", "far_fps")

    @property
    def flicker(self) -> float | None:
        return None if self.kind == "images" else self._agg("flicker", "dtssds")

    @property
    def change(self) -> float | None:
        return None if self.kind == "images" else self._agg("change", "changes")

    @property
    def ms_per_frame(self) -> float | None:
        ms = [x for s in self.sequences for x in s.ms]
        return float(statistics.median(ms)) if ms else None

    def worst(self, n: int = _WORST) -> list[tuple[str, float]]:
        scored = [(s.name, v) for s in self.sequences if (v := s.miou) is not None]
        return sorted(scored, key=lambda t: t[1])[:n]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "frames": self.frames,
            "scored": self.scored,
            "miou": self.miou,
            "boundary_f": self.boundary_f,
            "far_fp_pct": self.far_fp,
            "flicker_dtssd": self.flicker,
            "temporal_change": self.change,
            "ms_per_frame_median": self.ms_per_frame,
        }
        if self.kind == "images":
            d["worst"] = [{"name": n, "iou": v} for n, v in self.worst()]
        else:
            d["sequences"] = [s.to_dict() for s in self.sequences]
        return d


@dataclass
class EvalReport:
    """Everything one ``blurcam eval`` run measured.

    ``overall`` weighs every scored photo and frame equally for mIoU and
    boundary F, and every sequence equally for flicker.
    """

    predictor: str
    model: str
    models: list[str]
    datasets: list[DatasetResult]

    def overall(self) -> dict[str, float | None]:
        seqs = [s for d in self.datasets for s in d.sequences]
        vids = [s for d in self.datasets if d.kind == "video" for s in d.sequences]
        return {
            "miou": _mean(x for s in seqs for x in s.ious),
            "boundary_f": _mean(x for s in seqs for x in s.bfs),
            "far_fp_pct": _pct(_mean(x for s in seqs for x in s.far_fps)),
            "flicker_dtssd": _mean(v for s in vids if (v := s.flicker) is not None),
            "temporal_change": _mean(v for s in vids if (v := s.change) is not None),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "predictor": self.predictor,
            "model": self.model,
            "models_used": self.models,
            "boundary_tolerance": f"{metrics.BOUNDARY_TOLERANCE * 100:g}% of the image diagonal",
            "datasets": [d.to_dict() for d in self.datasets],
            "overall": {**self.overall(), "frames": sum(d.scored for d in self.datasets)},
        }


def evaluate_sequence(
    seq: Sequence,
    predictor: Predictor,
    progress: Callable[[int], None] | None = None,
) -> SequenceResult:
    """Feed every frame of ``seq`` in order; score the annotated ones.

    The temporal scores compare consecutive annotated frames only. A
    prediction of another size than its mask is resized to the mask (bilinear).
    """
    res = SequenceResult(seq.name, len(seq.items))
    prev: tuple[NDArray[Any], U8] | None = None
    for item in seq.items:
        frame = read_frame(item.frame)
        t0 = time.perf_counter()
        alpha = np.asarray(predictor(frame))
        res.ms.append((time.perf_counter() - t0) * 1000.0)
        if item.mask is None:
            prev = None
        else:
            gt = read_mask(item.mask)
            if alpha.shape[:2] != gt.shape[:2]:
                log.debug("%s: prediction %s resized to mask %s", item.frame, alpha.shape, gt.shape)
                alpha = cv2.resize(
                    metrics.as_unit(alpha), gt.shape[::-1], interpolation=cv2.INTER_LINEAR
                )
            res.ious.append(metrics.iou(alpha, gt))
            res.bfs.append(metrics.boundary_f(alpha, gt))
            res.far_fps.append(metrics.far_false_positives(alpha, gt))
            if prev is not None:
                res.dtssds.append(metrics.dtssd(prev[0], alpha, prev[1], gt))
                res.changes.append(metrics.temporal_change(prev[0], alpha, prev[1], gt))
            prev = (alpha, gt)
        if progress is not None:
            progress(1)
    return res


def evaluate(
    datasets: Iterable[Dataset],
    make_predictor: PredictorFactory,
    *,
    name: str = "custom",
    model: str = "",
    progress: Callable[[int], None] | None = None,
) -> EvalReport:
    """Score ``make_predictor``'s predictors on every sequence of every set.

    ``progress`` is called with the number of frames just done.
    """
    results = []
    for ds in datasets:
        # photos go through the photo path when the factory has one (as in the CLI)
        make = getattr(make_predictor, "for_images", None) if ds.kind == "images" else None
        seqs = [evaluate_sequence(s, (make or make_predictor)(), progress) for s in ds.sequences]
        results.append(DatasetResult(ds.name, ds.kind, seqs))
        log.info("%s: %d frames, mIoU %s", ds.name, ds.frames, results[-1].miou)
    models = list(getattr(make_predictor, "models", []))
    return EvalReport(name, model, models, results)
