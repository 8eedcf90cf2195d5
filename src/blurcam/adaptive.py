"""The one adaptive-quality policy of live video (``blurcam cam``) and WebRTC (``blurcam serve``).

A ladder of :class:`Level` s trades mask quality for time: how often the model
runs, the working width of the mask and whether the guided refinement runs.
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
    refine: bool  # image-guided edge refinement
    sync: bool  # composite waits (bounded) for its own frame's mask

    def describe(self) -> str:
        edge = f"refine {self.refine_width}px" if self.refine else f"mask {self.refine_width}px"
        wait = ", same-frame mask" if self.sync else ""
        return f"L{self.index}: model every {self.every} frame(s), {edge}{wait}"


LEVELS: tuple[Level, ...] = (
    Level(0, 1, 480, True, True),
    Level(1, 2, 480, True, False),
    Level(2, 3, 320, True, False),
    Level(3, 4, 240, True, False),
    Level(4, 6, 160, False, False),
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
    composite's busy time p90 exceeded ``high`` x interval: go one level down
    in quality at once. *Good* when nothing dropped and both stayed under
    ``low`` x interval: after ``patience`` good windows in a row go one level
    up. An up-move followed at once by a bad window doubles ``patience`` (up
    to 32) so the ladder settles instead of oscillating.
    """

    def __init__(
        self,
        fps: float,
        *,
        levels: Sequence[Level] = LEVELS,
        start: int = 0,
        window: float = 1.0,
        high: float = 0.85,
        low: float = 0.55,
        patience: int = 3,
        enabled: bool = True,
    ) -> None:
        self.interval = 1.0 / fps
        self.levels = tuple(levels)
        self.index = min(max(0, start), len(self.levels) - 1)
        self.window, self.high, self.low = window, high, low
        self.base_patience = self.patience = patience
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
        if drops or lat95 > self.high * budget or busy90 > self.high * budget:
            self._good = 0
            if self._just_raised:
                self.patience = min(32, self.patience * 2)
            self._just_raised = False
            if self.index + 1 < len(self.levels):
                return self._move(now, self.index + 1, lat95, busy90, drops)
            return None
        self._just_raised = False
        if lat95 < self.low * budget and busy90 < self.low * budget:
            self._good += 1
            if self._good >= self.patience and self.index > 0:
                self._good = 0
                self._just_raised = True
                return self._move(now, self.index - 1, lat95, busy90, drops)
        else:
            self._good = 0
            self.patience = max(self.base_patience, self.patience - 1)
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
    """``settings`` with the mask working width capped and refinement off as ``level`` says."""
    m = settings.mask
    mask = replace(
        m, refine_width=min(m.refine_width, level.refine_width), refine=m.refine and level.refine
    )
    return replace(settings, mask=mask)
