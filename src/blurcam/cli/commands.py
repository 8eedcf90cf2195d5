"""Imports every command module so that each registers itself on :data:`app`."""

from __future__ import annotations

from . import (
    batch,  # noqa: F401
    files,  # noqa: F401
    live,  # noqa: F401
    measure,  # noqa: F401
    web,  # noqa: F401
)
