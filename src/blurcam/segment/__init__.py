"""Segmentation: a model registry and one backend per runtime (LiteRT, ONNX Runtime)."""

from __future__ import annotations

from .base import Segmenter
from .registry import (
    BUNDLED,
    SegmenterFactory,
    bundled_path,
    check_model,
    open_for,
    open_segmenter,
    resolve_model,
    spec_for,
)
from .spec import ModelSpec, postprocess, preprocess

__all__ = [
    "BUNDLED",
    "ModelSpec",
    "Segmenter",
    "SegmenterFactory",
    "bundled_path",
    "check_model",
    "open_for",
    "open_segmenter",
    "postprocess",
    "preprocess",
    "resolve_model",
    "spec_for",
]
