"""Quality and speed measurement: metrics, dataset discovery, the eval runner and the bench.

Import the submodules directly (``blurcam.evaluate.metrics`` ...); this package
imports nothing heavy on its own.
"""

from __future__ import annotations
