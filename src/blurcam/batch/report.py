"""What a batch did: one record per file and a summary, written as JSON.

The report is for people (which files failed and why) and for scripts (the
exit status alone cannot say that 3 of 500 files failed).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..io import atomic_output

__all__ = ["STATUSES", "BatchReport", "FileResult", "write_report"]

# done: processed now; skipped: a complete output existed; failed: gave up after retries;
# interrupted: was running or waiting when the batch was stopped
STATUSES = ("done", "skipped", "failed", "interrupted")


@dataclass(slots=True)
class FileResult:
    """One input's outcome. ``seconds`` is worker time (summed over parts when split)."""

    input: str
    output: str
    status: str
    frames: int = 0
    seconds: float = 0.0
    duration: float = 0.0  # media seconds (0 for images or when unknown)
    attempts: int = 0
    parts: int = 1
    error: str | None = None
    warnings: list[str] = field(default_factory=list)  # a truncated input, dropped audio...

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def x_realtime(self) -> float:
        """Media seconds per worker second (>1 = faster than playback)."""
        return self.duration / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fps"] = round(self.fps, 2)
        d["x_realtime"] = round(self.x_realtime, 3)
        d["seconds"] = round(self.seconds, 3)
        d["duration"] = round(self.duration, 3)
        return d


@dataclass(slots=True)
class BatchReport:
    """Every file's result plus what the whole run cost in wall-clock time."""

    files: list[FileResult] = field(default_factory=list)
    wall_seconds: float = 0.0
    workers: int = 1
    backend: str = "local"
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def failures(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    @property
    def warned(self) -> list[FileResult]:
        """Files with warnings (processed, but not quite as they should have been)."""
        return [f for f in self.files if f.warnings]

    def summary(self) -> dict[str, Any]:
        done = [f for f in self.files if f.status == "done"]
        frames = sum(f.frames for f in done)
        media = sum(f.duration for f in done)
        wall = self.wall_seconds
        return {
            "files": len(self.files),
            **{s: self.count(s) for s in STATUSES},
            "frames": frames,
            "media_seconds": round(media, 3),
            "wall_seconds": round(wall, 3),
            "files_per_minute": round(60 * len(done) / wall, 2) if wall > 0 else 0.0,
            "fps": round(frames / wall, 2) if wall > 0 else 0.0,
            "x_realtime": round(media / wall, 3) if wall > 0 else 0.0,
            "workers": self.workers,
            "backend": self.backend,
            "stopped_early": self.interrupted,
            "failures": [{"input": f.input, "error": f.error} for f in self.failures],
            "warnings": [{"input": f.input, "warnings": f.warnings} for f in self.warned],
        }

    def as_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "files": [f.as_dict() for f in self.files]}


def write_report(path: Path, report: BatchReport) -> None:
    """Write the report as JSON, atomically (a reader never sees half a report)."""
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(report.as_dict(), indent=1) + "\n", encoding="utf-8")
