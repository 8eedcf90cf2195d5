"""LiteRT (TensorFlow Lite) backend: the default runtime for the bundled models."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ModelError
from .spec import ModelSpec, check_io_shapes, postprocess, preprocess

__all__ = ["LiteRTModel", "LiteRTSegmenter", "quiet_native_stderr"]

log = logging.getLogger(__name__)


def _load_delegates(device: str) -> list[Any]:
    """GPU/NPU delegates when asked for and installed; CPU (XNNPACK) otherwise.

    A library is opened with ctypes first: ``load_delegate`` on a missing one
    leaves a half-made object whose destructor prints an "Exception ignored"
    traceback, and a missing GPU is no error, only a fallback.
    """
    if device in ("cpu", "auto"):
        return []
    from ai_edge_litert.interpreter import load_delegate

    names = {"gpu": ["libtensorflowlite_gpu_delegate.so"], "npu": ["libedgetpu.so.1"]}[device]
    for lib in names:
        try:
            ctypes.CDLL(lib)
        except OSError:
            continue
        try:
            return [load_delegate(lib)]
        except (OSError, ValueError, RuntimeError):
            continue
    log.warning("no LiteRT %s delegate found (%s); running on CPU", device, ", ".join(names))
    return []


_FD2 = threading.Lock()  # one redirection of the process's stderr at a time


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Send what native code writes to file descriptor 2 to /dev/null for the block.

    LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." from
    C++ when a model's tensors are allocated, with no switch to turn it off;
    on a terminal it breaks into progress bars (every ``blurcam blur``, every
    batch worker). Held only around the allocation; failures still raise.
    """
    with _FD2:
        try:
            saved = os.dup(2)
            null = os.open(os.devnull, os.O_WRONLY)
        except OSError:  # no stderr to redirect (a daemon): nothing to hide
            yield
            return
        try:
            sys.stderr.flush()
            os.dup2(null, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)


class LiteRTModel:
    """One ``.tflite`` model on LiteRT: the runtime part every model shares.

    Loads ``spec`` (checked by :meth:`ModelSpec.verify` first) with
    ``threads`` XNNPACK threads, or a GPU/NPU delegate when ``device`` asks for
    one and it is installed; :meth:`run` sets the one input tensor and
    returns the outputs. What a model's tensors mean (pre- and
    post-processing) is its owner's: :class:`LiteRTSegmenter`, and the face
    detector in :mod:`blurcam.face`.

    Raises:
        ModelError: the file is missing, altered, or not a model LiteRT loads.
    """

    def __init__(self, spec: ModelSpec, *, threads: int = 2, device: str = "cpu") -> None:
        spec.verify()
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as e:  # pragma: no cover - core dependency
            raise ModelError("ai-edge-litert is not installed: pip install ai-edge-litert") from e
        try:
            self._interp = Interpreter(
                model_path=str(spec.path),
                num_threads=threads,
                experimental_delegates=_load_delegates(device) or None,
            )
            self.inputs = self._interp.get_input_details()
            self.outputs = self._interp.get_output_details()
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"cannot load {spec.path} as a LiteRT model: {e}") from e
        self.spec = spec

    def allocate(self) -> None:
        """Allocate the tensors (after the owner has checked the shapes)."""
        try:
            with quiet_native_stderr():
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"cannot load {self.spec.path} as a LiteRT model: {e}") from e

    def run(self, x: NDArray[np.float32]) -> list[NDArray[np.float32]]:
        """Invoke on the input tensor ``x``; the outputs, in the model's order (copies)."""
        self._interp.set_tensor(self.inputs[0]["index"], x)
        self._interp.invoke()
        return [self._interp.get_tensor(o["index"]) for o in self.outputs]

    def close(self) -> None:
        self._interp = None


class LiteRTSegmenter:
    """Runs a ``.tflite`` segmentation model with ``ai_edge_litert.Interpreter``."""

    def __init__(self, spec: ModelSpec, *, threads: int = 2, device: str = "cpu") -> None:
        self._model = LiteRTModel(spec, threads=threads, device=device)
        inp, outs = self._model.inputs, self._model.outputs
        # Shapes and dtypes are checked before any tensor is allocated.
        if len(inp) != 1:
            raise ModelError(f"{spec.path}: expected one image input, found {len(inp)}")
        if not outs:
            raise ModelError(f"{spec.path}: the model has no output")
        shape = tuple(int(s) for s in inp[0]["shape"])
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3 or inp[0]["dtype"] != np.float32:
            raise ModelError(
                f"{spec.path}: expected a float32 [1,H,W,3] input, got {list(shape)} "
                f"{np.dtype(inp[0]['dtype']).name}"
            )
        if outs[0]["dtype"] != np.float32:
            raise ModelError(
                f"{spec.path}: expected a float32 output, got {np.dtype(outs[0]['dtype']).name} "
                "(quantized models are not supported)"
            )
        check_io_shapes(spec.path, (shape[1], shape[2]), [int(d) for d in outs[0]["shape"]])
        self._model.allocate()
        if (shape[2], shape[1]) != spec.input_size:
            spec = _with_size(spec, (shape[2], shape[1]))
        self.spec = spec
        self.name = spec.name
        self.input_size = spec.input_size
        self._buf = np.zeros(shape, dtype=np.float32)

    def __call__(self, frame: NDArray[np.uint8]) -> NDArray[np.float32]:
        preprocess(frame, self.spec, self._buf)
        return postprocess(self._model.run(self._buf)[0], self.spec)

    def reset(self) -> None:
        """Stateless model: nothing to drop."""

    def close(self) -> None:
        self._model.close()

    def __enter__(self) -> LiteRTSegmenter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _with_size(spec: ModelSpec, size: tuple[int, int]) -> ModelSpec:
    from dataclasses import replace

    return replace(spec, input_size=size)
