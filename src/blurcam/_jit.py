"""Compiled kernels: numba, cached on disk, compiled in memory when the cache cannot be.

A kernel here is a plain Python loop over numpy arrays that numba compiles
with the GIL released, used where one pass replaces several NumPy or OpenCV
calls (each of which walks the array and, on small arrays, costs more in call
overhead than in arithmetic).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba as nb

__all__ = ["Kernel", "inline"]


class Kernel:
    """``fn`` compiled by numba (nogil); calls go to the disk-cached build.

    The cache saves ~1 s of compiling per process. If it cannot be written
    (full disk, read-only install, file-size limit: numba raises OSError)
    the uncached twin compiles in memory instead of failing the user's job.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self.cached = nb.njit(cache=True, nogil=True)(fn)
        self.memory = nb.njit(cache=False, nogil=True)(fn)

    def __call__(self, *args: Any) -> Any:
        try:
            return self.cached(*args)
        except OSError:
            return self.memory(*args)


def inline(fn: Callable[..., Any]) -> Any:
    """A helper for kernels, inlined into each kernel that calls it at compile time
    (so it needs no disk cache of its own)."""
    return nb.njit(nogil=True, inline="always")(fn)
