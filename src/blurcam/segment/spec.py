"""What differs between segmentation models, as data.

A :class:`ModelSpec` says how a frame becomes the model's input tensor and how
its output becomes a person probability. Backends read it; adding a model is a
new spec, not a new class.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

from ..errors import ModelError
from ..frame import F32

__all__ = ["ModelSpec", "check_io_shapes", "postprocess", "preprocess", "sha256_file"]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """How to feed one model and read its answer.

    ``input_size`` is (width, height). The frame is resized to it (``resize``:
    ``linear``, or ``area`` where fine detail would alias) and the input is
    ``(x * scale - mean) / std`` per channel, ``x`` in 0..255 in ``color``
    order. ``output`` says how to read the person probability: ``prob``
    (already 0..1), ``softmax2`` (two-class logits, channel 1 = person),
    ``prob2`` (two-class probabilities), ``logit`` (one sigmoid logit) or
    ``auto`` (decided from the values: anything outside 0..1 is read as logits).
    """

    name: str
    path: Path
    input_size: tuple[int, int]
    layout: str = "nhwc"  # nhwc|nchw
    color: str = "rgb"  # rgb|bgr
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    output: str = "prob"
    sha256: str | None = None
    licence: str = "unknown"
    resize: str = "linear"  # linear|area

    def verify(self) -> None:
        """Check the file exists, looks like its format and, for bundled models, is the one.

        Bundled and known models are checked by sha256. Any ``.tflite`` must carry
        the FlatBuffer identifier ``TFL3``, so that a renamed file of another
        kind (a pickle, an archive, a web page) is refused before a runtime
        parses it. The runtimes only parse FlatBuffers/protobuf (no pickle, no
        code); their shape checks follow in :func:`check_io_shapes`.
        """
        if not self.path.is_file():
            raise ModelError(f"model file not found: {self.path}")
        size = self.path.stat().st_size
        if size == 0:
            raise ModelError(f"model file is empty: {self.path}")
        if size > MAX_MODEL_BYTES:
            raise ModelError(
                f"model file {self.path} is {size / 2**20:.0f} MiB; segmentation models are "
                f"far smaller (limit {MAX_MODEL_BYTES // 2**20} MiB)"
            )
        if self.path.suffix.lower() == ".tflite":
            with open(self.path, "rb") as f:
                head = f.read(8)
            if len(head) < 8 or head[4:8] != b"TFL3":
                raise ModelError(
                    f"{self.path} is not a TensorFlow Lite model (no TFL3 identifier): "
                    "corrupt, truncated or another kind of file"
                )
        if self.sha256 is not None:
            digest = sha256_file(self.path)
            if digest != self.sha256:
                raise ModelError(
                    f"model file {self.path} is corrupt or replaced: sha256 {digest[:16]}..., "
                    f"expected {self.sha256[:16]}..."
                )


MAX_MODEL_BYTES = 512 * 2**20
MAX_INPUT_SIDE = 4096  # a model asking for more is corrupt or not a real-time segmenter


def check_io_shapes(
    path: Path, in_hw: tuple[int | None, int | None], out_shape: list[int | None]
) -> None:
    """Refuse a model whose output is not a person map for its input image.

    ``in_hw`` is the input's (height, width) (``None`` = dynamic);
    ``out_shape`` the first output's shape (``None`` = dynamic). Accepted:
    [1,H,W,C], [1,C,H,W], [1,H,W], [H,W,C] or [H,W] with C in 1..2, H and W at
    least 8, and an aspect ratio within 1.5x of the input's (a detector's
    [1,896,16] boxes fail this).

    Raises:
        ModelError: with the shapes found and what was expected.
    """
    want = "a [1,H,W,1|2] or [1,1|2,H,W] person map"
    for side in in_hw:
        if side is not None and not 8 <= side <= MAX_INPUT_SIDE:
            raise ModelError(
                f"{path}: input side {side} is outside 8..{MAX_INPUT_SIDE}: not an image model"
            )
    dims = list(out_shape)
    h: int | None
    w: int | None
    c: int | None
    if len(dims) == 4:
        if dims[0] not in (1, None):
            raise ModelError(f"{path}: output batch must be 1, got shape {out_shape}")
        dims = dims[1:]
    if len(dims) == 3:
        if dims[0] in (1, 2) and (dims[2] is None or dims[2] > 2):
            h, w, c = dims[1], dims[2], dims[0]  # CHW, or batch 1 + HW
        elif dims[2] in (1, 2, None):
            h, w, c = dims[0], dims[1], dims[2]
        else:
            raise ModelError(f"{path}: output shape {out_shape} is not {want}")
    elif len(dims) == 2:
        h, w, c = dims[0], dims[1], 1
    else:
        raise ModelError(f"{path}: output shape {out_shape} is not {want}")
    if c is not None and c not in (1, 2):
        raise ModelError(f"{path}: output has {c} channels, expected 1 or 2 ({want})")
    for side in (h, w):
        if side is not None and side < 8:
            raise ModelError(f"{path}: output shape {out_shape} is too small for {want}")
    ih, iw = in_hw
    if None not in (h, w, ih, iw):
        r = (w / h) / (iw / ih)  # type: ignore[operator]
        if not 1 / 1.5 <= r <= 1.5:
            raise ModelError(
                f"{path}: output {out_shape} does not match the input's shape {[ih, iw]}: "
                "not a segmentation model?"
            )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def preprocess(
    frame: NDArray[np.uint8], spec: ModelSpec, out: NDArray[np.float32]
) -> NDArray[np.float32]:
    """BGR uint8 HxWx3 -> the model's float32 input tensor, written into ``out``.

    Resizes straight to the model size, bilinear unless the spec says
    ``area``: area averaging from 1080p costs milliseconds and a segmentation
    model cannot see the difference at 256 px.
    """
    w, h = spec.input_size
    interp = cv2.INTER_AREA if spec.resize == "area" else cv2.INTER_LINEAR
    small = cv2.resize(frame, (w, h), interpolation=interp)
    if spec.color == "rgb":
        small = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    plain = not any(spec.mean) and all(s == 1.0 for s in spec.std)
    if spec.layout == "nhwc" and plain:
        # one pass: uint8 -> scaled float32 straight into the input tensor
        np.multiply(small, np.float32(spec.scale), out=out[0], casting="unsafe")
        return out
    x = small.astype(np.float32)
    if spec.scale != 1.0:
        x *= np.float32(spec.scale)
    if any(spec.mean):
        x -= np.asarray(spec.mean, dtype=np.float32)
    if not plain:
        x /= np.asarray(spec.std, dtype=np.float32)
    if spec.layout == "nchw":
        out[0] = x.transpose(2, 0, 1)
    else:
        out[0] = x
    return out


def postprocess(raw: NDArray[np.float32], spec: ModelSpec) -> NDArray[np.float32]:
    """Model output (any of 1xHxWxC, 1xCxHxW, HxW) -> person probability HxW float32 0..1."""
    a = np.asarray(raw, dtype=np.float32)
    if a.ndim == 4:
        a = a[0]
    if a.ndim == 3:
        # channel axis is the small one
        a = a.transpose(1, 2, 0) if a.shape[0] <= 4 and a.shape[2] > 4 else a
        kind = spec.output
        if kind == "auto" and a.shape[2] >= 2:
            kind = "prob2" if float(a.min()) >= 0.0 and float(a.max()) <= 1.0 else "softmax2"
        if kind in ("softmax2", "prob2"):
            if a.shape[2] < 2:
                raise ModelError(f"{spec.name}: expected 2 output channels, got {a.shape[2]}")
            if kind == "softmax2":
                d = np.clip(a[:, :, 0] - a[:, :, 1], -60.0, 60.0)
                return cast(F32, (1.0 / (1.0 + np.exp(d))).astype(np.float32))
            return np.ascontiguousarray(a[:, :, 1], dtype=np.float32)
        a = a[:, :, 0]
    if spec.output == "logit" or (
        spec.output == "auto" and (float(a.min()) < 0.0 or float(a.max()) > 1.0)
    ):
        return (1.0 / (1.0 + np.exp(-np.clip(a, -60.0, 60.0)))).astype(np.float32)
    return np.clip(a, 0.0, 1.0, out=np.empty_like(a))
