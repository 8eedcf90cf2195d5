"""The one adaptive-quality policy of live video (``blurcam cam``) and WebRTC (``blurcam serve``).

A ladder of :class:`Level` s trades mask quality for time: how often the model
runs and the working width of the mask.
:class:`AdaptiveQuality` watches what each window of frames cost (latency,
busy time, drops) against the frame interval and moves along the ladder;
:func:`apply_level` turns the user's settings into the settings of a level.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .settings import Settings

__all__ = ["LEVELS", "AdaptiveQuality", "Level", "apply_level", "percentile"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Level:
    """One step of the quality ladder (0 = best)."""

    index: int
    every: int  # run the model on every Nth frame
    refine_width: int  # cap on the mask working width (mask resolution)
    sync: bool  # composite waits (bounded) for its own frame's mask

    def describe(self) -> str:
        wait = ", same-frame mask" if self.sync else ""
        return f"L{self.index}: model every {self.every} frame(s), mask {self.refine_width}px{wait}"


# Every level keeps the guided refinement: it fits the carried mask to each new
# frame, so the edge stays on the person between model runs (without it the
# lowest level showed a wide halo of the old background around a moving head).
# The model is never more than 3 frames apart, for the same reason.
LEVELS: tuple[Level, ...] = (
    Level(0, 1, 480, True),
    Level(1, 2, 480, False),
    Level(2, 2, 320, False),
    Level(3, 3, 320, False),
    Level(4, 3, 240, False),
)


def percentile(values: Sequence[float], q: float) -> float:
    """``q``-th percentile (0..100) of ``values``; 0 for an empty sequence."""
    if not values:
        return 0.0
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


class AdaptiveQuality:
    """Chooses the quality level from what the last window of frames cost.

    Per window (``window`` seconds of frames): *bad* when any frame was
    dropped, or latency p95 exceeded ``high`` x the frame interval, or the
    busy time p90 exceeded ``high`` x interval: go one level down at once.
    *Good* when nothing dropped and both stayed under ``low`` x interval.
    The climb back starts after ``patience`` good windows in a row and then
    goes on one level per good window, so a load that is gone is left
    behind within a few seconds (the bottom to the top: ``patience`` +
    ``len(levels) - 2`` windows). An up-move followed at once by a bad window
    was too much: ``patience`` doubles (at most ``max_patience``) so the
    ladder settles instead of oscillating, and a later successful climb
    restores it.
    """

    def __init__(
        self,
        fps: float,
        *,
        levels: Sequence[Level] = LEVELS,
        start: int = 0,
        window: float = 1.0,
        high: float = 0.85,
        low: float = 0.6,
        patience: int = 2,
        max_patience: int = 8,
        enabled: bool = True,
    ) -> None:
        self.interval = 1.0 / fps
        self.levels = tuple(levels)
        self.index = min(max(0, start), len(self.levels) - 1)
        self.window, self.high, self.low = window, high, low
        self.base_patience = self.patience = patience
        self.max_patience = max_patience
        self.enabled = enabled
        self._lat: list[float] = []
        self._busy: list[float] = []
        self._drops = 0
        self._t0: float | None = None
        self._good = 0
        self._just_raised = False
        self.changes: list[tuple[float, int]] = []  # (time, new level)

    @property
    def level(self) -> Level:
        return self.levels[self.index]

    def observe(self, now: float, latency: float, busy: float, drops: int = 0) -> Level | None:
        """Record one output frame (and drops since the last call); a new level or None."""
        if self._t0 is None:
            self._t0 = now
        self._lat.append(latency)
        self._busy.append(busy)
        self._drops += drops
        if now - self._t0 < self.window:
            return None
        lat95 = percentile(self._lat, 95)
        busy90 = percentile(self._busy, 90)
        drops, self._drops = self._drops, 0
        self._lat.clear()
        self._busy.clear()
        self._t0 = None  # the next frame opens the next window
        if not self.enabled:
            return None
        budget = self.interval
        raised, self._just_raised = self._just_raised, False
        if drops or lat95 > self.high * budget or busy90 > self.high * budget:
            self._good = 0
            if raised:
                self.patience = min(self.max_patience, self.patience * 2)
            if self.index + 1 < len(self.levels):
                return self._move(now, self.index + 1, lat95, busy90, drops)
            return None
        if not (lat95 < self.low * budget and busy90 < self.low * budget):
            self._good = 0
            return None
        self._good += 1
        if raised:  # the last step held: climb on one good window at a time
            self.patience = self.base_patience
            self._good = max(self._good, self.patience)
        if self._good >= self.patience and self.index > 0:
            self._good = 0
            self._just_raised = True
            return self._move(now, self.index - 1, lat95, busy90, drops)
        return None

    def _move(self, now: float, index: int, lat95: float, busy90: float, drops: int) -> Level:
        log.info(
            "quality L%d -> L%d (latency p95 %.1f ms, busy p90 %.1f ms, %d dropped, budget %.1f)",
            self.index,
            index,
            lat95 * 1e3,
            busy90 * 1e3,
            drops,
            self.interval * 1e3,
        )
        self.index = index
        self.changes.append((now, index))
        return self.level


def apply_level(settings: Settings, level: Level) -> Settings:
    """``settings`` with the mask working width capped as ``level`` says."""
    m = settings.mask
    return replace(settings, mask=replace(m, refine_width=min(m.refine_width, level.refine_width)))
