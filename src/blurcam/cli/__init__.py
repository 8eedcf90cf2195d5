"""Command-line interface: a thin layer of options -> Settings -> source, sink, run."""

from __future__ import annotations

import sys

from .app import app
from .app import main as _main

__all__ = ["app", "main"]


def main() -> None:
    """The ``blurcam`` program (``python -m blurcam`` too)."""
    sys.exit(_main(exiting=True))
