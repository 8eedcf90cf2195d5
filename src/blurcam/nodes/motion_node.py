"""The motion node: frame -> :class:`MotionPacket` (working frame, still gate, optical flow).

In: a uint8 HxWx3 BGR frame at full resolution. Out: a frozen packet with the
frame at working resolution and its luminance, a small grey *guide* of it,
whether the still gate lets the model rest on this frame, and how the frame
moved since the last model run (``mask.measure_motion``: the flow the mask
node warps its history by).

Everything here needs the image only, never a mask, which is why it is a
node of its own: its work can run while the model runs (``Stream.process``)
or frames ahead on another thread than the mask node (``Stream.process_iter``).
The node owns what it compares frames with: the guide of the last model run,
the count of frames the gate carried, and the optical-flow object.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import cast

import cv2

from .. import mask
from ..frame import U8
from ..settings import Settings
from .timing import StageTimes

__all__ = ["GUIDE_WIDTH", "MotionNode", "MotionPacket", "working_frame"]

# The guide's width: the landscape model's, so the motion is measured on the grid
# the mask lives on for 16:9 frames (the mask node resizes it otherwise)
GUIDE_WIDTH = 256


@dataclass(frozen=True, slots=True)
class MotionPacket:
    """What the motion node hands on for one frame. Read it; never write into its arrays."""

    small: U8  # the frame at working resolution (uint8 HxWx3 BGR)
    grey: U8  # its luminance (uint8 HxW)
    guide: U8  # the luminance at GUIDE_WIDTH (motion, face tracking)
    still: bool  # the still gate: the model may rest, the last mask is carried
    motion: mask.Motion | None  # since the last model run (None: still, or no run before)
    times: dict[str, float]


def working_frame(frame: U8, settings: Settings, *, photo: bool = False) -> tuple[U8, U8]:
    """The frame at working resolution (``mask.refine_width`` wide, a photo
    ``mask.photo_width``) and its luminance.

    One cheap downscale is shared by the refinement guide, the motion guide and
    the background effect (bilinear: area averaging costs 1.5-10 ms here).
    """
    h, w = frame.shape[:2]
    width = settings.mask.photo_width if photo else settings.mask.refine_width
    ww, wh = mask.working_size((w, h), width)
    small: U8 = (
        frame
        if (ww, wh) == (w, h)
        else cast(U8, cv2.resize(frame, (ww, wh), interpolation=cv2.INTER_LINEAR))
    )
    return small, cast(U8, cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))


def guide_of(grey: U8) -> U8:
    """The motion guide of a working-resolution luminance (``GUIDE_WIDTH`` wide)."""
    return mask.motion_guide(grey, mask.working_size((grey.shape[1], grey.shape[0]), GUIDE_WIDTH))


class MotionNode:
    """Frame -> :class:`MotionPacket`; owns the guide of the last model run and the flow."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ref: U8 | None = None  # the guide at the last model run
        self._carried = 0  # frames in a row the gate carried
        self._flow: cv2.DISOpticalFlow | None = None

    def update(self, settings: Settings) -> None:
        self.settings = settings

    def reset(self) -> None:
        """Forget the last model run (a new stream starts)."""
        self._ref = None
        self._carried = 0

    def may_carry(self) -> bool:
        """Whether the still gate may carry the next frame: False when it cannot (gate
        off, no model run yet, or ``still_reuse`` frames carried in a row), so the
        model is sure to run and a caller may start it before :meth:`start`."""
        s = self.settings.mask
        return s.still_reuse > 0 and self._ref is not None and self._carried < s.still_reuse

    def run(self, frame: U8, *, photo: bool = False) -> MotionPacket:
        """:meth:`start` and :meth:`finish` in one."""
        return self.finish(self.start(frame, photo=photo))

    def start(self, frame: U8, *, photo: bool = False) -> MotionPacket:
        """Working frame, guide and the still gate's answer (no motion yet).

        A ``photo`` gets the photo's working width (``mask.photo_width``).

        The gate (``mask.is_still``): when the image is as it was at the last
        model run, up to noise and exposure, the model rests and the last
        mask is carried, at most ``still_reuse`` frames in a row.
        """
        times = StageTimes()
        t = time.perf_counter()
        small, grey = working_frame(frame, self.settings, photo=photo)
        guide = guide_of(grey)
        # is_still answers False for a guide of another size than the reference
        still = self.may_carry() and mask.is_still(guide, self._ref, self.settings.mask)
        self._carried = self._carried + 1 if still else 0
        times.add("downscale", t)
        return MotionPacket(small, grey, guide, still, None, times.ms)

    def finish(self, packet: MotionPacket) -> MotionPacket:
        """The packet with the motion since the last model run; this frame becomes that run
        unless the gate carried it."""
        if packet.still:
            return packet
        t = time.perf_counter()
        ref, self._ref = self._ref, packet.guide
        if ref is None or ref.shape != packet.guide.shape:
            return packet
        if self._flow is None and self.settings.mask.flow_width:
            self._flow = cv2.DISOpticalFlow.create(cv2.DISOpticalFlow_PRESET_ULTRAFAST)
        motion = mask.measure_motion(packet.guide, ref, self._flow, self.settings.mask)
        times = dict(packet.times)
        times["motion"] = (time.perf_counter() - t) * 1000.0
        return replace(packet, motion=motion, times=times)
