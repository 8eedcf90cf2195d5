"""The composite node: the packet's fit -> the alpha; frame + layer + alpha -> output.

Two declared steps, because the effect runs between them and needs the
alpha (the blur leaves the person out of the background, a kept region and
the light wrap change the alpha):

* :meth:`CompositeNode.alpha`: in a :class:`~blurcam.nodes.mask_node.MaskPacket`;
  out the uint8 alpha at working resolution (255 = person). The guided fit is
  applied, a person the model sees that a stage dropped is raised back to the
  rescue floor (``mask.apply_floor``), and tracked faces are held in the
  foreground (``guards.protect_faces``).
* :meth:`CompositeNode.render`: in the frame, the background layer (full or
  small) and the alpha; out the composited frame, in one full-resolution
  pass that upsamples alpha and layer on the fly (``composite.render``).

The node owns the face tracks and the output buffer. Returned arrays are
valid until its next call.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor
from typing import cast

import cv2
import numpy as np

from .. import composite, guards, mask
from ..face import Face, track_faces
from ..frame import F32, U8
from ..settings import Settings
from .mask_node import MaskPacket
from .timing import StageTimes

__all__ = ["CompositeNode"]


class CompositeNode:
    """Face tracks and the output buffer of one stream."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.faces: list[Face] = []  # tracked faces, in 0..1 of the frame
        self._out: U8 | None = None  # output buffer

    def update(self, settings: Settings) -> None:
        self.settings = settings

    def reset(self) -> None:
        """Forget the face tracks (a new stream starts)."""
        self.faces = []

    def alpha(self, packet: MaskPacket, times: StageTimes | None = None) -> U8:
        """uint8 alpha at working resolution, 255 = person: fit applied, floor, faces held."""
        s = self.settings
        tm = times or StageTimes()
        t = time.perf_counter()
        a_work = mask.to_alpha(mask.apply_guided(*packet.coef, packet.grey), s.mask)
        mask.apply_floor(a_work, packet.floor)
        t = tm.add("refine", t)
        self._guard_faces(a_work, packet)
        a8 = cast(U8, cv2.convertScaleAbs(a_work, alpha=255.0))
        tm.add("guards", t)
        return a8

    def _guard_faces(self, alpha: F32, packet: MaskPacket) -> None:
        """Track faces (with this frame's detections, if any), then force them into ``alpha``.

        On a frame the still gate carried (the image as at the last model
        run) the faces stay where they are, unless the detector ran.
        """
        if not self.settings.guards.face or packet.photo:
            self.faces = []
            return
        if packet.guide is not None and (packet.faces is not None or not packet.still):
            self.faces = track_faces(self.faces, packet.faces, packet.guide)
        self.faces = guards.protect_faces(alpha, self.faces)

    def render(
        self,
        frame: U8,
        layer: U8,
        alpha: U8,
        times: StageTimes | None = None,
        *,
        pool: Executor | None = None,
    ) -> U8:
        """``frame`` over ``layer`` by ``alpha`` (both upsampled in the pass): the node's buffer.

        With ``pool`` half of the frame is composited on its thread.
        """
        t = time.perf_counter()
        if self._out is None or self._out.shape != frame.shape:
            self._out = np.empty_like(frame)
        out = composite.render(frame, alpha, layer, self._out, pool=pool)
        if times is not None:
            times.add("composite", t)
        return out
