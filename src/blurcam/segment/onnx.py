"""ONNX Runtime backend: any ONNX model with one image input (optional extra ``[onnx]``)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from ..errors import ModelError
from ..frame import F32
from .spec import ModelSpec, check_io_shapes, postprocess, preprocess

__all__ = ["OnnxModel", "OnnxSegmenter", "open_session", "select_providers"]


log = logging.getLogger(__name__)

_DEVICE_PROVIDERS = {
    "gpu": [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "ROCMExecutionProvider",
        "DmlExecutionProvider",
        "CoreMLExecutionProvider",
    ],
    "npu": ["OpenVINOExecutionProvider", "QNNExecutionProvider", "CoreMLExecutionProvider"],
}


def select_providers(device: str, available: list[str]) -> list[str]:
    """Execution providers for ``device`` among ``available``, CPU always last.

    ``auto`` takes the first accelerator present; ``gpu``/``npu`` warn once and
    fall back to CPU when none of theirs is installed.
    """
    if device == "cpu":
        return ["CPUExecutionProvider"]
    wanted = (
        _DEVICE_PROVIDERS["gpu"] + _DEVICE_PROVIDERS["npu"]
        if device == "auto"
        else _DEVICE_PROVIDERS[device]
    )
    chosen = [p for p in wanted if p in available][:1]
    if not chosen and device != "auto":
        log.warning(
            "no onnxruntime %s execution provider installed (have: %s); running on CPU",
            device,
            ", ".join(available),
        )
    return [*chosen, "CPUExecutionProvider"]


def open_session(
    path: Path, *, threads: int = 2, device: str = "cpu", what: str = "ONNX models"
) -> Any:
    """An onnxruntime session with our thread and log settings, every failure a ModelError.

    ``what`` names the feature in the message when onnxruntime is missing.
    """
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ModelError(f"{what} need onnxruntime: pip install 'blurcam[onnx]'") from e
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    providers = select_providers(device, ort.get_available_providers())
    try:
        return ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as e:  # onnxruntime raises its own non-exported types
        raise ModelError(f"cannot load {path} as an ONNX model: {e}") from e


def _dim(d: Any) -> int | None:
    return d if isinstance(d, int) and d > 0 else None


class OnnxModel:
    """One ONNX model on onnxruntime: the runtime part every model shares.

    Checks ``spec`` (:meth:`ModelSpec.verify`), opens the session
    (:func:`open_session`) and reads the one image input's layout and size
    from the graph (dynamic sizes fall back to the spec's). :meth:`run` runs
    it on an input tensor. What the tensors mean is the owner's:
    :class:`OnnxSegmenter`, :class:`blurcam.segment.depth.DepthEstimator`.

    Raises:
        ModelError: onnxruntime missing, the file missing or altered, or not one image input.
    """

    def __init__(
        self, spec: ModelSpec, *, threads: int = 2, device: str = "cpu", what: str = "ONNX models"
    ) -> None:
        spec.verify()
        self._sess = open_session(spec.path, threads=threads, device=device, what=what)
        inputs = self._sess.get_inputs()
        if len(inputs) != 1:
            raise ModelError(
                f"{spec.path}: expected one image input, found {len(inputs)} "
                f"({', '.join(i.name for i in inputs)})"
            )
        inp = inputs[0]
        if inp.type != "tensor(float)":
            raise ModelError(f"{spec.path}: expected a float32 input, got {inp.type}")
        shape = list(inp.shape)
        if len(shape) != 4:
            raise ModelError(f"{spec.path}: expected a 4-D image input, got shape {shape}")
        if shape[1] == 3:
            layout, h, w = "nchw", _dim(shape[2]), _dim(shape[3])
        elif shape[3] == 3:
            layout, h, w = "nhwc", _dim(shape[1]), _dim(shape[2])
        else:
            raise ModelError(f"{spec.path}: no 3-channel axis in input shape {shape}")
        self.outputs = self._sess.get_outputs()
        if not self.outputs:
            raise ModelError(f"{spec.path}: the model has no output")
        self.dynamic = (h, w)  # the graph's input (height, width); None = dynamic
        size = (w or spec.input_size[0], h or spec.input_size[1])
        self.spec = replace(spec, layout=layout, input_size=size)
        self.providers = self._sess.get_providers()
        self._in_name = inp.name

    def buffer(self) -> F32:
        """A zeroed input tensor of the model's layout and size."""
        w, h = self.spec.input_size
        shape = (1, 3, h, w) if self.spec.layout == "nchw" else (1, h, w, 3)
        return np.zeros(shape, dtype=np.float32)

    def run(self, x: F32) -> list[Any]:
        """The outputs of the model on input tensor ``x``, in the graph's order."""
        return list(self._sess.run(None, {self._in_name: x}))

    def close(self) -> None:
        self._sess = None


class OnnxSegmenter:
    """Runs an ONNX segmentation model with onnxruntime.

    The input layout (NCHW or NHWC) and size are read from the graph when the
    spec leaves them open; dynamic spatial sizes fall back to the spec's size.
    """

    def __init__(self, spec: ModelSpec, *, threads: int = 2, device: str = "cpu") -> None:
        self._model = OnnxModel(spec, threads=threads, device=device)
        out = self._model.outputs[0]
        if out.type != "tensor(float)":
            raise ModelError(f"{spec.path}: expected a float32 output, got {out.type}")
        check_io_shapes(spec.path, self._model.dynamic, [_dim(d) for d in out.shape])
        self.spec = self._model.spec
        self.name = spec.name
        self.input_size = self.spec.input_size
        self.providers = self._model.providers
        self._buf = self._model.buffer()

    def __call__(self, frame: NDArray[np.uint8]) -> NDArray[np.float32]:
        preprocess(frame, self.spec, self._buf)
        raw = self._model.run(self._buf)[0]
        prob = postprocess(raw, self.spec)
        if prob.shape != (self.input_size[1], self.input_size[0]):
            import cv2

            prob = cast(F32, cv2.resize(prob, self.input_size, interpolation=cv2.INTER_LINEAR))
        return prob

    def reset(self) -> None:
        """Stateless model: nothing to drop."""

    def close(self) -> None:
        self._model.close()

    def __enter__(self) -> OnnxSegmenter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
