"""The interface every segmentation backend implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = ["Segmenter"]


@runtime_checkable
class Segmenter(Protocol):
    """BGR frame -> person probability at model resolution.

    ``__call__`` takes a uint8 HxWx3 BGR frame of any size and returns a
    float32 array of shape (input_size[1], input_size[0]) in 0..1. Recurrent
    backends keep state per instance, so every stream owns its own segmenter;
    ``reset`` drops that state.
    """

    name: str
    input_size: tuple[int, int]  # (width, height)

    def __call__(self, frame: NDArray[np.uint8]) -> NDArray[np.float32]: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...
