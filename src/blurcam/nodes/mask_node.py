"""The mask node: frame -> :class:`MaskPacket` (model, temporal history, guided fit, faces).

In: a uint8 HxWx3 BGR frame at full resolution. Out: a frozen
:class:`MaskPacket` holding the frame at working resolution, the person
probability at model resolution after temporal smoothing, and the guided
filter's fit, with this frame's face detections when the detector was due.

The node owns the state of this stage group and nothing else: the segmenter,
the previous mask (an owned copy, never a working buffer), the motion guide
of the last model run, the still gate's count, the main-person region and
the face detector's schedule. The maths are the pure functions of
:mod:`blurcam.mask` and :mod:`blurcam.guards`, which get that history passed
in. One thread owns a node; a packet, once made, is only read, so another
thread may use it (:meth:`blurcam.pipeline.Stream.process_iter` runs this node
frames ahead of the others on a worker thread).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np

from .. import guards, mask
from ..face import Face, FaceDetector
from ..frame import F32, U8
from ..segment import Segmenter, SegmenterFactory, open_for, resolve_model
from ..settings import Settings
from .timing import StageTimes

__all__ = ["FaceDetectorLike", "MaskNode", "MaskPacket", "follow", "working_frame"]

log = logging.getLogger(__name__)

FaceDetectorLike = Callable[[U8], list[Face]]


@dataclass(frozen=True, slots=True)
class MaskPacket:
    """What the mask node hands on for one frame. Read it; never write into its arrays."""

    small: U8  # the frame at working resolution (uint8 HxWx3 BGR)
    grey: U8  # its luminance (uint8 HxW)
    guide: U8 | None  # luminance at model resolution (face tracking)
    prob: F32  # person probability at model resolution, 0..1, after temporal smoothing
    coef: tuple[F32, F32]  # guided-filter fit on its coarse grid (mask.guided_coefficients)
    floor: F32 | None  # least alpha at model resolution (mask.rescue_floor), None: none
    still: bool  # the still gate carried the last mask (and fit) to this frame
    faces: list[Face] | None  # face detections of this frame (None: the detector did not run)
    inferred: bool  # False: the model did not run for this frame
    photo: bool  # a still photo (Stream.process_image): no face guard
    times: dict[str, float]  # ms per stage spent making this packet


def working_frame(frame: U8, settings: Settings) -> tuple[U8, U8]:
    """The frame at working resolution (``mask.refine_width`` wide) and its luminance.

    One cheap downscale is shared by the model input, the refinement guide and
    the background effect (bilinear: area averaging costs 1.5-10 ms here).
    """
    h, w = frame.shape[:2]
    ww, wh = mask.working_size((w, h), settings.mask.refine_width)
    small: U8 = (
        frame
        if (ww, wh) == (w, h)
        else cast(U8, cv2.resize(frame, (ww, wh), interpolation=cv2.INTER_LINEAR))
    )
    return small, cast(U8, cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))


def follow(
    packet: MaskPacket, frame: U8, settings: Settings, *, faces: list[Face] | None = None
) -> MaskPacket:
    """A packet for ``frame`` from the newest model packet, without the model.

    For runners that segment on another thread than they composite on (the
    live runner, the web track under load): the last probability is carried
    to this frame and the guided filter is fitted on this frame's image, so
    the edge snaps to where the person is now. ``faces`` are detections to
    hand on (those of a model packet not rendered itself). Pure: no node
    state changes.
    """
    times = StageTimes()
    t = time.perf_counter()
    small, grey = working_frame(frame, settings)
    prob = packet.prob
    guide = mask.motion_guide(grey, (prob.shape[1], prob.shape[0]))
    t = times.add("downscale", t)
    coef = mask.guided_coefficients(prob, grey, settings.mask)
    times.add("refine", t)
    return MaskPacket(
        small, grey, guide, prob, coef, packet.floor, False, faces, False, False, times.ms
    )


class MaskNode:
    """Frame -> :class:`MaskPacket`; owns the segmenter and the mask history.

    ``segmenter`` may be given (tests use a fake one; the caller keeps
    ownership); otherwise one is built through ``segmenter_factory`` on the
    first frame, when the frame size is known (``auto`` picks the model by
    aspect ratio). ``face_detector`` replaces MediaPipe's (built on first use).
    """

    def __init__(
        self,
        settings: Settings,
        segmenter: Segmenter | None = None,
        *,
        segmenter_factory: SegmenterFactory = open_for,
        face_detector: FaceDetectorLike | None = None,
    ) -> None:
        self.settings = settings
        self._segmenter = segmenter
        self._owns_segmenter = segmenter is None
        self._factory = segmenter_factory
        self.face_detector = face_detector
        self._owns_detector = face_detector is None
        self._prev: F32 | None = None  # owned copy of the last smoothed probability
        self._last_prob: F32 | None = None  # what the last model run gave (main person applied)
        self._coef: tuple[F32, F32] | None = None  # the last guided fit (the still gate reuses it)
        self._guide: U8 | None = None  # grey frame at model resolution at the last model run
        self._flow: cv2.DISOpticalFlow | None = None  # optical flow (mask.align_previous)
        self._floor: F32 | None = None  # alpha floor of the last model run (mask.rescue_floor)
        self._raw: F32 | None = None  # the model's own answer at the last model run
        self._main: np.ndarray | None = None  # main person region (people=main)
        self._seg_size: tuple[int, int] | None = None  # frame size the segmenter was made for
        self._size: tuple[int, int] | None = None  # frame size the history belongs to
        self._carried = 0  # frames in a row whose mask was carried (still image)
        self._face_due = 0  # frame number of the next face detection
        self._frames = 0  # frames through this node

    @property
    def segmenter(self) -> Segmenter | None:
        return self._segmenter

    def update(self, settings: Settings) -> None:
        """New settings from the next frame on; a new model is loaded on the next frame."""
        if settings.segment != self.settings.segment and self._owns_segmenter:
            self._close_segmenter()
        self.settings = settings

    def reset(self) -> None:
        """Forget the history (a new stream starts)."""
        self._prev = self._last_prob = self._coef = self._guide = self._main = None
        self._floor = self._raw = None
        self._carried = self._face_due = self._frames = 0
        if self._segmenter is not None:
            self._segmenter.reset()

    def close(self) -> None:
        if self._owns_segmenter:
            self._close_segmenter()
        if self._owns_detector and isinstance(self.face_detector, FaceDetector):
            self.face_detector.close()
            self.face_detector = None

    def _close_segmenter(self) -> None:
        if self._segmenter is not None:
            self._segmenter.close()
        self._segmenter = None
        self._seg_size = None

    def _ensure_segmenter(self, size: tuple[int, int]) -> Segmenter:
        """The segmenter for frames of ``size``: with ``model`` ``auto``, the one ``auto``
        picks for that size, so a stream (or a ``BackgroundBlur`` reused across
        photos) that gets a frame of another shape switches model (a tall photo after
        a wide one runs on the general model, not the landscape one)."""
        model = self.settings.segment.model
        if (
            self._segmenter is not None
            and self._owns_segmenter
            and self._seg_size not in (None, size)
            and resolve_model(model, size) != resolve_model(model, self._seg_size)
        ):
            self._close_segmenter()
        if self._segmenter is None:
            self._segmenter = self._factory(self.settings.segment, size)
            self._seg_size = size
            log.debug("segmenter %s for %dx%d", self._segmenter.name, *size)
        return self._segmenter

    # ------------------------------------------------------------------ work
    def run(self, frame: U8, *, photo: bool = False) -> MaskPacket:
        """The packet of ``frame`` (uint8 HxWx3 BGR): model or carried mask, fit, faces.

        With ``photo`` the model also sees the mirrored frame (the answers are
        averaged) and the edge is sharpened on both sides (see
        :meth:`blurcam.pipeline.Stream.process_image`).
        """
        s = self.settings
        times = StageTimes()
        t = time.perf_counter()
        h, w = frame.shape[:2]
        if self._size != (w, h):
            self._size = (w, h)
            self._prev = None
        small, grey = working_frame(frame, s)
        t = times.add("downscale", t)
        last = self._last_prob
        carry = self._has_history()
        still, guide = self._still(grey) if carry else (False, None)
        if still and last is not None:
            prob = last
        else:
            # the model sees the full frame, as the raw model does (its own bilinear
            # resize): from the working frame it is resampled twice, and the model
            # answers differently (DAVIS hike: mIoU -0.015, far false positives +0.1%)
            prob = self._infer(frame, grey, mirror=photo, guide=guide)
            guide = self._guide
        t = times.add("segment", t)
        # on a frame the still gate carried, the last fit is applied to this
        # frame's image: the edge follows what little moved (talking-head clip:
        # IoU with running the model on every frame 0.995 -> 0.997 against
        # carrying the last alpha as it was)
        coef = self._coef if still else None
        if coef is None:
            coef = mask.guided_coefficients(prob, grey, s.mask, photo=photo)
        self._coef = coef
        t = times.add("refine", t)
        # a photo has no exposure swing between frames to guard against, and the
        # guard's fill past the model's edge cost the dev portraits boundary F 0.03
        faces = None if photo else self._detect_faces(small, prob)
        times.add("guards", t)
        return MaskPacket(
            small, grey, guide, prob, coef, self._floor, still, faces, not still, photo, times.ms
        )

    def _infer(self, frame: U8, grey: U8, *, mirror: bool, guide: U8 | None) -> F32:
        """Segment, smooth and keep the main person: the model-resolution probability.

        Updates the history (previous mask, motion guide, main region, the
        rescue floor). ``frame`` is the full frame (the model sees what the
        raw model sees), ``grey`` the working frame's luminance; ``guide``
        this frame's motion guide when the still gate already made it. With
        ``mirror`` (photos) the model runs on several views of the frame
        (``mask.segment_views``).
        """
        seg = self._ensure_segmenter((frame.shape[1], frame.shape[0]))
        s = self.settings
        raw = seg(frame).copy()  # a segmenter may hand out its own buffer
        prob = mask.segment_views(seg, frame, raw, s.mask.photo_views) if mirror else raw
        size = (prob.shape[1], prob.shape[0])
        if guide is None or (guide.shape[1], guide.shape[0]) != size:
            guide = mask.motion_guide(grey, size)
        prev, reliable = self._prev, None
        if prev is not None and self._guide is not None and self._guide.shape == guide.shape:
            if self._flow is None and s.mask.flow_width:
                self._flow = cv2.DISOpticalFlow.create(cv2.DISOpticalFlow_PRESET_ULTRAFAST)
            prev, reliable = mask.align_previous(prev, guide, self._guide, self._flow, s.mask)
        self._guide = guide
        prob = mask.smooth_temporal(prob, prev, s.mask, reliable)
        self._prev = prob.copy()
        if s.guards.people == "main":
            prob, self._main = guards.keep_main(prob, self._main)
            raw = guards.near_main(raw, self._main)
        # a person the model sees now and the stages above dropped comes back
        self._floor = mask.rescue_floor(prob, raw, s.mask, self._raw)
        self._raw = raw
        self._last_prob = prob
        return prob

    def _has_history(self) -> bool:
        """Whether a mask from an earlier frame can be carried to this one."""
        last, prev = self._last_prob, self._prev
        return last is not None and prev is not None and last.shape == prev.shape

    def _still(self, grey: U8) -> tuple[bool, U8 | None]:
        """The still-image gate (``mask.is_still``), counting carried frames in a row.

        Returns whether to carry the last mask, and this frame's guide at
        model resolution.
        """
        last = self._last_prob
        if last is None:
            return False, None
        guide = mask.motion_guide(grey, (last.shape[1], last.shape[0]))
        s = self.settings.mask
        still = self._carried < s.still_reuse and mask.is_still(guide, self._guide, s)
        self._carried = self._carried + 1 if still else 0
        return still, guide

    def _detect_faces(self, small: U8, prob: F32) -> list[Face] | None:
        """Run the face detector when it is due: faces in 0..1 of the frame, or None.

        Every ``face_interval`` frames while faces are found, every
        ``face_retry`` while none is. Part of this node (it needs only the
        working frame and the mask), which in ``process_iter`` is the thread
        with time to spare once the still gate skips the model.
        """
        g = self.settings.guards
        n = self._frames
        self._frames += 1
        if not g.face or n < self._face_due:
            return None
        if self.face_detector is None:
            self.face_detector = FaceDetector(min_score=g.face_score)
        size = (small.shape[1], small.shape[0])
        rect = guards.face_search_rect(prob, size)
        x0, y0, x1, y1 = rect
        found = self.face_detector(small[y0:y1, x0:x1])
        detections = guards.faces_to_frame(found, rect, size)
        self._face_due = n + (g.face_interval if detections else g.face_retry)
        return detections
