"""Blur a whole archive: discover files, plan outputs, run them on a pool or Ray, report.

::

    discover (folder scan | CSV/JSON manifest) -> plan (mirror layout, skip complete)
        -> run (process pool | Ray tasks; long videos split + stitched) -> report (JSON)

Each file is processed by :func:`blurcam.jobs.blur_file`, the same code as
``blurcam blur``; this package adds only the fan-out, the bookkeeping that
makes a batch resumable, and the report.
"""

from __future__ import annotations

from .discover import Item, discover, read_manifest, scan_folder
from .plan import Job, is_complete, make_plan
from .report import BatchReport, FileResult, write_report
from .run import Tick, connect_ray, run_batch

__all__ = [
    "BatchReport",
    "FileResult",
    "Item",
    "Job",
    "Tick",
    "connect_ray",
    "discover",
    "is_complete",
    "make_plan",
    "read_manifest",
    "run_batch",
    "scan_folder",
    "write_report",
]
