"""Robust Video Matting (Lin et al., WACV 2022) through onnxruntime, with its recurrent state.

RVM is GPL-3.0: blurcam never ships or downloads it. A user who has the
ONNX export (``rvm_mobilenetv3_fp32.onnx``) passes its path
(``--model rvm=/path/rvm.onnx``, or just the path: the registry knows its
sha256). It is a matting model, so it answers an alpha matte, and it is
recurrent: four hidden states go out with each frame and back in with the
next, which is what makes it temporally stable. The state belongs to one
stream, hence one segmenter per stream; :meth:`RvmSegmenter.reset` drops it
(a new clip, a scene cut).
"""

from __future__ import annotations

import logging
from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

from ..errors import ModelError
from .spec import ModelSpec

__all__ = ["RVM_SHA256", "RvmSegmenter", "rvm_input_size"]

log = logging.getLogger(__name__)

RVM_SHA256 = "88d4531297118f595bf2fd60f6f566aec2e559393802d1f436c380f0cbbd2828"
_STATES = ("r1i", "r2i", "r3i", "r4i")


def rvm_input_size(frame_size: tuple[int, int] | None, width: int = 512) -> tuple[int, int]:
    """(w, h) RVM runs at: ``width`` wide at most, the frame's aspect, multiples of 16."""
    fw, fh = frame_size or (16 * 32, 16 * 18)
    w = min(width, fw)
    h = max(16, round(fh * w / fw / 16) * 16)
    return max(16, round(w / 16) * 16), h


class RvmSegmenter:
    """Runs RVM's ONNX export; ``__call__`` returns its alpha at ``input_size``.

    ``downsample_ratio`` sets the resolution of RVM's coarse pass relative to
    ``input_size`` (RVM's authors suggest 0.25 at 720p-1080p, 0.4 around
    512-800 px); it must stay fixed within a clip.

    Raises:
        ModelError: onnxruntime is missing or the file is not an RVM export.
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        frame_size: tuple[int, int] | None = None,
        threads: int = 2,
        device: str = "cpu",
        downsample_ratio: float = 0.5,
    ) -> None:
        spec.verify()
        from .onnx import open_session

        self._sess = open_session(spec.path, threads=threads, device=device, what="RVM models")
        names = {i.name for i in self._sess.get_inputs()}
        outs = [o.name for o in self._sess.get_outputs()]
        if not {"src", "downsample_ratio", *_STATES} <= names or "pha" not in outs:
            raise ModelError(
                f"{spec.path}: not a Robust Video Matting export (inputs {sorted(names)})"
            )
        self.spec = spec
        self.name = spec.name
        self.input_size = rvm_input_size(frame_size)
        self._ratio = np.asarray([downsample_ratio], np.float32)
        self._outs = ["pha", "r1o", "r2o", "r3o", "r4o"]
        self._state: list[NDArray[np.float32]] = []
        self.reset()

    def __call__(self, frame: NDArray[np.uint8]) -> NDArray[np.float32]:
        w, h = self.input_size
        small = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)
        src = cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32)
        src *= np.float32(1.0 / 255.0)
        feed = {"src": src.transpose(2, 0, 1)[None], "downsample_ratio": self._ratio}
        feed.update(zip(_STATES, self._state, strict=True))
        pha, *state = self._sess.run(self._outs, feed)
        self._state = [np.asarray(s, np.float32) for s in state]
        return cast(NDArray[np.float32], np.clip(np.asarray(pha, np.float32)[0, 0], 0.0, 1.0))

    def reset(self) -> None:
        """Drop the recurrent state (RVM starts from zeros of shape [1, 1, 1, 1])."""
        self._state = [np.zeros((1, 1, 1, 1), np.float32) for _ in _STATES]

    def close(self) -> None:
        self._sess = None

    def __enter__(self) -> RvmSegmenter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
