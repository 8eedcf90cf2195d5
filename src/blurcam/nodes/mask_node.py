"""The mask node: frame + motion -> :class:`MaskPacket` (model, temporal history, guided fit).

In: the full-resolution frame and its :class:`~blurcam.nodes.motion_node.MotionPacket`.
Out: a frozen :class:`MaskPacket` holding the person probability at model
resolution after temporal smoothing (the history warped by the frame's
motion) and the alpha at working resolution it gives: the guided filter's
fit applied to the frame's image, raised to the rescue floor. (The fit is
applied here, not in the composite node, so that in ``process_iter`` the two
threads carry about the same load.)

The node owns the state of this stage group and nothing else: the segmenter,
the previous mask (an owned copy, never a working buffer), the model's last
answer, the main-person region and the last fit. The maths are the pure
functions of :mod:`blurcam.mask` and :mod:`blurcam.guards`, which get that
history passed in. One thread owns a node; a packet, once made, is only
read, so another thread may use it (:meth:`blurcam.pipeline.Stream.process_iter`
runs this node a frame or two ahead of the others on a worker thread).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np

from .. import guards, mask
from ..frame import F32, U8
from ..segment import Segmenter, SegmenterFactory, open_for, resolve_model
from ..settings import Settings
from .motion_node import MotionPacket, guide_of, working_frame
from .timing import StageTimes

__all__ = ["MaskNode", "MaskPacket", "follow"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MaskPacket:
    """What the mask node hands on for one frame. Read it; never write into its arrays."""

    small: U8  # the frame at working resolution (uint8 HxWx3 BGR)
    grey: U8  # its luminance (uint8 HxW)
    guide: U8  # a small grey copy (motion, face tracking)
    prob: F32  # person probability at model resolution, 0..1, after temporal smoothing
    alpha: F32  # the refined alpha at working resolution, 0..1, floor applied (no face guard)
    floor: F32 | None  # least alpha at model resolution (mask.rescue_floor), None: none
    still: bool  # the still gate carried the last mask (and fit) to this frame
    inferred: bool  # False: the model did not run for this frame
    photo: bool  # a still photo (Stream.process_image): no face guard
    times: dict[str, float]  # ms per stage spent making this packet


def follow(packet: MaskPacket, frame: U8, settings: Settings) -> MaskPacket:
    """A packet for ``frame`` from the newest model packet, without the model.

    For runners that segment on another thread than they composite on (the
    live runner, the web track under load): the last probability is carried
    to this frame and the guided filter is fitted on this frame's image, so
    the edge snaps to where the person is now. Pure: no node state changes.
    """
    times = StageTimes()
    t = time.perf_counter()
    small, grey = working_frame(frame, settings)
    t = times.add("downscale", t)
    coef = mask.guided_coefficients(packet.prob, grey, settings.mask)
    alpha = mask.guided_alpha(*coef, grey, settings.mask, packet.floor)
    times.add("refine", t)
    return MaskPacket(
        small, grey, guide_of(grey), packet.prob, alpha, packet.floor, False, False, False, times.ms
    )


class MaskNode:
    """Frame + motion -> :class:`MaskPacket`; owns the segmenter and the mask history.

    ``segmenter`` may be given (tests use a fake one; the caller keeps
    ownership); otherwise one is built through ``segmenter_factory`` on the
    first frame, when the frame size is known (``auto`` picks the model by
    aspect ratio).
    """

    def __init__(
        self,
        settings: Settings,
        segmenter: Segmenter | None = None,
        *,
        segmenter_factory: SegmenterFactory = open_for,
    ) -> None:
        self.settings = settings
        self._segmenter = segmenter
        self._owns_segmenter = segmenter is None
        self._factory = segmenter_factory
        self._prev: F32 | None = None  # owned copy of the last smoothed probability
        self._last_prob: F32 | None = None  # what the last model run gave (main person applied)
        self._coef: tuple[F32, F32] | None = None  # the last guided fit (the still gate reuses it)
        self._floor: F32 | None = None  # alpha floor of the last model run (mask.rescue_floor)
        self._raw: F32 | None = None  # the model's own answer at the last model run
        self._main: np.ndarray | None = None  # main person region (people=main)
        self._seg_size: tuple[int, int] | None = None  # frame size the segmenter was made for
        self._size: tuple[int, int] | None = None  # frame size the history belongs to

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
        self._prev = self._last_prob = self._coef = self._main = None
        self._floor = self._raw = None
        if self._segmenter is not None:
            self._segmenter.reset()

    def close(self) -> None:
        if self._owns_segmenter:
            self._close_segmenter()

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
    def wants_model(self, motion: MotionPacket) -> bool:
        """Whether :meth:`run` will run the model for this frame (for a caller that runs
        :meth:`segment` beforehand, on another thread)."""
        return not (motion.still and self._has_history())

    def segment(self, frame: U8, *, photo: bool = False) -> tuple[F32, F32]:
        """The model's answer for ``frame`` (float32 0..1 at model resolution), twice: its
        own, and with ``photo`` the mean over the views of ``mask.segment_views`` (else
        the same array). The rescue floor compares the two.

        Touches only the segmenter, so a caller may run it on a helper thread
        while it prepares the frame's motion (``Stream.process``).
        """
        seg = self._ensure_segmenter((frame.shape[1], frame.shape[0]))
        raw = cast(F32, seg(frame).copy())  # a segmenter may hand out its own buffer
        if photo:
            return raw, mask.segment_views(seg, frame, raw, self.settings.mask.photo_views)
        return raw, raw

    def run(
        self,
        frame: U8,
        motion: MotionPacket,
        *,
        photo: bool = False,
        segmented: tuple[F32, F32] | None = None,
    ) -> MaskPacket:
        """The packet of ``frame`` (uint8 HxWx3 BGR): model or carried mask, history, fit.

        ``motion`` is the frame's motion packet; ``segmented`` the model's
        answers when the caller already ran :meth:`segment` (else it runs
        here, unless the still gate carries the last mask). With ``photo``
        the edge is sharpened on both sides and solved against the photo's
        colours (``mask.matte_photo``; see
        :meth:`blurcam.pipeline.Stream.process_image`).
        """
        s = self.settings
        times = StageTimes()
        times.ms.update(motion.times)
        t = time.perf_counter()
        h, w = frame.shape[:2]
        if self._size != (w, h):
            self._size = (w, h)
            self._prev = None
        still = not self.wants_model(motion)
        if still and self._last_prob is not None:
            prob = self._last_prob
        else:
            # the model sees the full frame, as the raw model does (its own bilinear
            # resize): from the working frame it is resampled twice, and the model
            # answers differently (DAVIS hike: mIoU -0.015, far false positives +0.1%)
            raw, seen = self.segment(frame, photo=photo) if segmented is None else segmented
            prob = self._smooth(raw, seen, motion)
        t = times.add("segment", t)
        # on a frame the still gate carried, the last fit is applied to this
        # frame's image: the edge follows what little moved (talking-head clip:
        # IoU with running the model on every frame 0.995 -> 0.997 against
        # carrying the last alpha as it was)
        coef = self._coef if still else None
        if coef is None:
            coef = mask.guided_coefficients(prob, motion.grey, s.mask, photo=photo)
        self._coef = coef
        alpha = mask.guided_alpha(*coef, motion.grey, s.mask, self._floor)
        if photo:  # a photo has the time to solve its edge against its colours
            alpha = mask.matte_photo(alpha, motion.small, prob, s.mask)
        times.add("refine", t)
        return MaskPacket(
            motion.small,
            motion.grey,
            motion.guide,
            prob,
            alpha,
            self._floor,
            still,
            not still,
            photo,
            times.ms,
        )

    def _smooth(self, raw: F32, seen: F32, motion: MotionPacket) -> F32:
        """The model's answer (``seen``: over the photo's views) smoothed with the warped
        history, the main person kept, and the rescue floor of what a stage dropped from
        its own answer ``raw``; updates the history."""
        s = self.settings
        prob = seen
        prev, reliable = self._prev, None
        if prev is not None and prev.shape == raw.shape and motion.motion is not None:
            m = motion.motion
            size = (raw.shape[1], raw.shape[0])
            maps, reliable = m.maps, m.reliable
            if reliable.shape != raw.shape:  # a model grid of another aspect than the guide
                maps = None if maps is None else _resize_maps(maps, size)
                reliable = cast(F32, cv2.resize(reliable, size, interpolation=cv2.INTER_LINEAR))
            prev = cast(F32, mask.warp(prev, maps))
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


def _resize_maps(maps: tuple[F32, F32], size: tuple[int, int]) -> tuple[F32, F32]:
    """Remap coordinates of one grid for a grid of ``size`` (w, h): resampled, and the
    positions they hold rescaled about pixel centres (no drift of half a pixel)."""
    out = []
    for m, k in zip(maps, (size[0] / maps[0].shape[1], size[1] / maps[0].shape[0]), strict=True):
        r = cv2.resize(m, size, interpolation=cv2.INTER_LINEAR)
        r += np.float32(0.5)
        r *= np.float32(k)
        r -= np.float32(0.5)
        out.append(cast(F32, r))
    return out[0], out[1]
