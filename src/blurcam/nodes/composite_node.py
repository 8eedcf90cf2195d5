"""The composite node: packet -> the guarded alpha; frame + layer + alpha -> output.

Two declared steps, because the effect runs between them and needs the
alpha (the blur leaves the person out of the background, a kept region and
the light wrap change the alpha):

* :meth:`CompositeNode.alpha`: in a :class:`~blurcam.nodes.mask_node.MaskPacket`;
  out the uint8 alpha at working resolution (255 = person): the packet's
  alpha with tracked faces held in the foreground (``guards.protect_faces``).
  The face detector runs here too, when it is due (see :meth:`_guard_faces`).
* :meth:`CompositeNode.render`: in the frame, the background layer (full or
  small) and the alpha; out the composited frame, in one full-resolution
  pass that upsamples alpha and layer on the fly (``composite.render``).

The node owns the face tracks, the face detector and its schedule, and the
output buffer. Returned arrays are valid until its next call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from functools import partial
from typing import cast

import cv2
import numpy as np

from .. import composite, guards
from ..face import Face, FaceDetector, track_faces
from ..frame import F32, U8
from ..settings import Settings
from .mask_node import MaskPacket
from .timing import StageTimes

__all__ = ["CompositeNode", "FaceDetectorLike"]


def _detect(detector: FaceDetectorLike, small: U8, prob: F32 | None) -> list[Face]:
    """Faces of a working frame, in 0..1 of the frame: the detector sees the square around
    the person ``prob`` shows (``guards.face_search_rect``)."""
    size = (small.shape[1], small.shape[0])
    rect = guards.face_search_rect(prob, size)
    x0, y0, x1, y1 = rect
    return guards.faces_to_frame(detector(small[y0:y1, x0:x1]), rect, size)


FaceDetectorLike = Callable[[U8], list[Face]]


class CompositeNode:
    """Face tracks, the face detector and the output buffer of one stream.

    ``face_detector`` replaces MediaPipe's (built on first use, owned).
    """

    def __init__(self, settings: Settings, face_detector: FaceDetectorLike | None = None) -> None:
        self.settings = settings
        self.face_detector = face_detector
        self._owns_detector = face_detector is None
        self.faces: list[Face] = []  # tracked faces, in 0..1 of the frame
        self._detected: Future[list[Face]] | list[Face] | None = None  # for the next frame
        self._face_due = 0  # frame number of the next face detection
        self._due: int | None = None  # this frame's number when a detection is due after it
        self._prob: F32 | None = None  # last frame's probability (where to look for faces)
        self._frames = 0
        self._out: U8 | None = None  # output buffer

    def update(self, settings: Settings) -> None:
        self.settings = settings

    def reset(self) -> None:
        """Forget the face tracks and the detector's schedule (a new stream starts)."""
        self.faces = []
        self._detected = self._due = self._prob = None
        self._face_due = self._frames = 0

    def close(self) -> None:
        self._take_detections()  # a detection still running on a helper thread
        if self._owns_detector and isinstance(self.face_detector, FaceDetector):
            self.face_detector.close()
        self.face_detector = None if self._owns_detector else self.face_detector

    def alpha(
        self,
        packet: MaskPacket,
        times: StageTimes | None = None,
        *,
        pool: Executor | None = None,
        tracked: bool = False,
    ) -> U8:
        """uint8 alpha at working resolution, 255 = person: the packet's alpha, faces held.

        :meth:`track` runs first unless the caller already ran it on this
        frame (``tracked``). With ``pool`` a due face detection runs on its
        thread, beside the next frame's work.
        """
        tm = times or StageTimes()
        t = time.perf_counter()
        if not tracked:
            self.track(packet.small, packet.guide, packet.still, photo=packet.photo)
        a_work = packet.alpha.copy()  # the packet is read-only: the guard raises a copy
        if self.settings.guards.face and not packet.photo:
            self.faces = guards.protect_faces(a_work, self.faces)
            if self._due is not None:
                detect = partial(_detect, self._detector(), packet.small, packet.prob)
                self._detected = pool.submit(detect) if pool is not None else detect()
                self._face_due = self._due + (
                    self.settings.guards.face_interval
                    if self.faces
                    else self.settings.guards.face_retry
                )
                self._due = None
        self._prob = packet.prob
        a8 = cast(U8, cv2.convertScaleAbs(a_work, alpha=255.0))
        tm.add("guards", t)
        return a8

    def _take_detections(self) -> list[Face] | None:
        """The faces detected on the frame before (waiting for a helper), or None."""
        found, self._detected = self._detected, None
        return found.result() if isinstance(found, Future) else found

    def _detector(self) -> FaceDetectorLike:
        if self.face_detector is None:
            self.face_detector = FaceDetector(min_score=self.settings.guards.face_score)
        return self.face_detector

    def track(self, small: U8, guide: U8, still: bool, *, photo: bool = False) -> None:
        """The image-only half of the face guard: detections taken in, the tracker moved.

        ``small`` is the frame at working resolution, ``guide`` its small grey
        copy, ``still`` whether the still gate carried the mask to it. Needs
        no mask, so a caller may run it while the model runs
        (``Stream.process``). The detector runs every ``face_interval`` frames
        while faces are tracked, every ``face_retry`` while none is. While none
        is, its faces are taken in at once (a face found is guarded from its
        first frame; it searches around last frame's person); while faces are
        tracked, the tracker follows them and what the detector finds on this
        frame (in :meth:`alpha`, around this frame's person) is taken in on
        the next, so it can run on a helper beside the next frame's work, off
        the critical path. On a still frame the faces stay where they are,
        unless detections came in. A photo has no exposure swing to guard
        against (and the guard's fill past the model's edge cost the dev
        portraits boundary F 0.03): no guard.
        """
        g = self.settings.guards
        if not g.face or photo:
            self.faces = []
            self._detected = self._due = None
            return
        n = self._frames
        self._frames += 1
        detected = self._take_detections()
        self._due = n if n >= self._face_due else None
        if self._due is not None and detected is None and not self.faces:
            detected = _detect(self._detector(), small, self._prob)
            self._face_due = n + (g.face_interval if detected else g.face_retry)
            self._due = None
        if detected is not None or not still:
            self.faces = track_faces(self.faces, detected, guide)

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
