"""Per-stage wall time of one frame, filled by the nodes as they run."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["StageTimes"]


@dataclass
class StageTimes:
    """Milliseconds spent per stage on the last frame (``blurcam bench`` prints them)."""

    ms: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, t0: float) -> float:
        """Add the time since ``t0`` (``time.perf_counter()``) to ``stage``; returns now."""
        t1 = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (t1 - t0) * 1000.0
        return t1
