"""A monocular depth model, run through the same model template as the segmenters.

Nothing is bundled: depth models with unclear licences (such as TCMonoDepth in
OBS's plugin) are used only from a path the user gives. What differs between
depth models (input size, pixel normalisation) is data in a
:class:`~blurcam.segment.spec.ModelSpec`; :class:`~blurcam.segment.onnx.OnnxModel`
runs it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..frame import F32, U8
from .onnx import OnnxModel
from .spec import ModelSpec, preprocess

__all__ = ["DEPTH_NORMS", "DepthEstimator", "depth_spec"]


_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
# norm -> (scale, mean, std): how 0..255 pixels become the model's input
DEPTH_NORMS: dict[str, tuple[float, tuple[float, float, float], tuple[float, float, float]]] = {
    "raw": (1.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),  # 0..255 (TCMonoDepth)
    "unit": (1.0 / 255.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),  # 0..1
    "imagenet": (1.0 / 255.0, _IMAGENET_MEAN, _IMAGENET_STD),  # MiDaS/DPT style
}


def depth_spec(path: Path, norm: str = "raw") -> ModelSpec:
    """The spec of a user's NCHW RGB depth model (size read from its graph; 320x192 if dynamic).

    Raises:
        ModelError: an unknown ``norm``.
    """
    if norm not in DEPTH_NORMS:
        raise ModelError(f"depth norm must be {', '.join(DEPTH_NORMS)}, got {norm!r}")
    scale, mean, std = DEPTH_NORMS[norm]
    return ModelSpec(
        name=f"depth:{path.stem}",
        path=path,
        input_size=(320, 192),
        layout="nchw",
        color="rgb",
        scale=scale,
        mean=mean,
        std=std,
        output="depth",
        resize="area",
    )


class DepthEstimator:
    """A monocular depth model (ONNX, one NCHW RGB image input) loaded from a user path.

    ``norm`` says how pixels are scaled (:data:`DEPTH_NORMS`). The output is
    returned as is (any scale, any sign); ``effects.normalize_depth`` makes
    it usable.

    Raises:
        ModelError: onnxruntime missing, file missing or not a usable model.
    """

    def __init__(self, path: str | Path, *, threads: int = 2, norm: str = "raw") -> None:
        p = Path(path)
        if not p.is_file():
            raise ModelError(f"depth model not found: {p}")
        self._model = OnnxModel(depth_spec(p, norm), threads=threads, what="depth models")
        if self._model.spec.layout != "nchw":
            raise ModelError(f"{p}: expected 3 input channels (NCHW), got an NHWC input")
        self.input_size = self._model.spec.input_size
        self.path = p
        self.norm = norm
        self._buf = self._model.buffer()

    def __call__(self, frame: U8) -> F32:
        """BGR uint8 frame (any size) -> float32 HxW relative depth at model resolution."""
        preprocess(frame, self._model.spec, self._buf)
        try:
            y = self._model.run(self._buf)[0]
        except Exception as e:  # a model with other input expectations
            raise ModelError(f"depth model {self.path} failed: {e}") from e
        out: F32 = np.asarray(y, np.float32)
        while out.ndim > 2:
            out = out[0]
        return out

    def close(self) -> None:
        self._model.close()
