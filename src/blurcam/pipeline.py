"""One :class:`Stream` per video stream: holds state, calls the stages in order.

::

    frame -> segment -> mask.align_previous + mask.smooth_temporal -> [people=main]
          -> mask.rescue_floor -> mask.refine_guided -> guards.protect_faces
          -> effects (background layer) -> composite.blend -> out

The stream owns the segmenter, the previous mask (an owned copy, never a
working buffer) and per-resolution buffers. :class:`BackgroundBlur` is its
public face.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, cast

import cv2
import numpy as np
from numpy.typing import NDArray

from . import composite, effects, guards, mask
from .errors import SettingsError
from .face import Face, FaceDetector, track_faces
from .frame import as_bgr
from .io.background import BackgroundSource, studio_backdrop
from .keep import KeepTracker, apply_keep, box_from_point
from .segment import Segmenter, open_segmenter
from .segment.registry import resolve_model
from .settings import EffectSettings, SegmentSettings, Settings
from .upscale import upscale_linear

__all__ = ["BackgroundBlur", "StageTimes", "Stream"]

log = logging.getLogger(__name__)

F32 = NDArray[np.float32]
U8 = NDArray[np.uint8]

SegmenterFactory = Callable[[SegmentSettings, tuple[int, int]], Segmenter]


def _default_factory(s: SegmentSettings, frame_size: tuple[int, int]) -> Segmenter:
    return open_segmenter(s.model, frame_size=frame_size, threads=s.threads, device=s.device)


@dataclass
class StageTimes:
    """Milliseconds spent per stage on the last frame (filled when ``timing`` is on)."""

    ms: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, t0: float) -> float:
        t1 = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (t1 - t0) * 1000.0
        return t1


@dataclass(frozen=True, slots=True)
class _Front:
    """What the mask stage hands to the composite stage for one frame."""

    small: U8  # the frame at working resolution
    grey: U8  # its luminance
    guide: U8 | None  # luminance at model resolution (face tracking)
    prob: F32  # person probability at model resolution, after temporal smoothing
    coef: tuple[F32, F32]  # guided-filter fit (mask.guided_coefficients)
    floor: F32 | None  # least alpha at model resolution (mask.rescue_floor), None: none
    alpha: F32 | None  # the fit applied (refined alpha 0..1), or None: left to the composite stage
    still: bool  # the still gate carried the last mask (and fit) to this frame
    faces: list[Face] | None  # face detections of this frame (None: the detector did not run)
    inferred: bool  # False: the model was skipped and the last mask carried
    photo: bool  # a still photo (Stream.process_image): no face guard
    times: dict[str, float]


class Stream:
    """State and buffers of one video stream; :meth:`process` runs every stage.

    ``segmenter`` may be given (tests use a fake one); otherwise it is built
    from ``settings.segment`` on the first frame, when the frame size is known
    (``auto`` picks the model by aspect ratio).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        segmenter: Segmenter | None = None,
        *,
        segmenter_factory: SegmenterFactory = _default_factory,
        timing: bool = False,
    ) -> None:
        self.settings = settings or Settings()
        self._segmenter = segmenter
        self._owns_segmenter = segmenter is None
        self._factory = segmenter_factory
        self._seg_size: tuple[int, int] | None = None
        self._prev: F32 | None = None  # owned copy of last smoothed probability
        self._last_prob: F32 | None = None  # what infer() returned (main person applied)
        self._coef: tuple[F32, F32] | None = None  # last guided-filter fit (mask stage)
        self._ms_front = self._ms_back = 0.0  # recent ms per frame of each stage (load balance)
        self._alpha: U8 | None = None
        self._bufs: dict[str, Any] = {}
        self._size: tuple[int, int] | None = None
        self._front_size: tuple[int, int] | None = None
        self._carried = 0  # frames in a row whose mask was carried (still image)
        self.last_inferred = False  # whether the model ran for the last frame
        self.frames = 0
        self.times = StageTimes()
        self.timing = timing
        # mask/guard state (quality engineer): history goes into pure functions
        self._guide: U8 | None = None  # grey frame at model resolution, for motion
        self._flow: cv2.DISOpticalFlow | None = None  # optical flow (mask.align_previous)
        self._floor: F32 | None = None  # alpha floor of the last model run (rescue_floor)
        self._raw: F32 | None = None  # the model's own answer on the last model run
        self._main: NDArray[np.bool_] | None = None  # main person region (people=main)
        self._faces: list[Face] = []  # tracked faces
        self._face_due = 0  # mask-stage frame number of the next face detection
        self._front_frames = 0  # frames through the mask stage
        self.face_detector: Callable[[U8], list[Face]] | None = None  # built on first use
        # effect state (effects engineer): replacement source, depth model, keep tracker
        self._bg_source: BackgroundSource | None = None
        self._bg_key: object = None
        self._depth: effects.DepthEstimator | None = None
        self._depth_raw: F32 | None = None
        # (key, layer) of the last effect, for still frames (see _background)
        self._reuse: tuple[object, U8 | None, U8 | None] | None = None
        self._keep: KeepTracker | None = None
        self._keep_key: object = None
        self._keep_scale = 1.0

    # ----------------------------------------------------------------- state
    @property
    def segmenter(self) -> Segmenter | None:
        return self._segmenter

    def update(self, settings: Settings) -> None:
        """Swap settings between frames; a new model is loaded on the next frame."""
        if settings.segment != self.settings.segment and self._owns_segmenter:
            self._close_segmenter()
        self.settings = settings

    def reset(self) -> None:
        """Forget temporal state (a new stream starts)."""
        self._prev = self._coef = None
        self._alpha = None
        self.frames = self._carried = 0
        self._keep = self._depth_raw = self._reuse = None
        self._guide = self._main = self._floor = self._raw = None
        self._faces, self._face_due, self._front_frames = [], 0, 0
        if self._segmenter is not None:
            self._segmenter.reset()

    def close(self) -> None:
        if self._owns_segmenter:
            self._close_segmenter()
        self._close_effects()
        if isinstance(self.face_detector, FaceDetector):
            self.face_detector.close()
        self.face_detector = None

    def _close_segmenter(self) -> None:
        if self._segmenter is not None:
            self._segmenter.close()
        self._segmenter = None
        self._seg_size = None

    def _ensure(self, frame: U8) -> None:
        h, w = frame.shape[:2]
        if self._size != (w, h):
            self._size = (w, h)
            self._bufs = {
                "alpha": np.empty((h, w), np.uint8),
                "bg": np.empty((h, w, 3), np.uint8),
                "out": np.empty((h, w, 3), np.uint8),
            }

    def _ensure_segmenter(self, size: tuple[int, int]) -> Segmenter:
        """The segmenter for frames of ``size``: with ``model`` ``auto``, the one ``auto``
        picks for that size, so a stream (or a :class:`BackgroundBlur` reused across
        photos) that gets a frame of another shape switches model (a tall photo after
        a wide one runs on the general model, not the landscape one)."""
        if (
            self._segmenter is not None
            and self._owns_segmenter
            and self._seg_size is not None
            and self._seg_size != size
            and resolve_model(self.settings.segment.model, size)
            != resolve_model(self.settings.segment.model, self._seg_size)
        ):
            self._close_segmenter()
        if self._segmenter is None:
            self._segmenter = self._factory(self.settings.segment, size)
            self._seg_size = size
            log.debug("segmenter %s for %dx%d", self._segmenter.name, *size)
        return self._segmenter

    # ------------------------------------------------------------------ work
    @property
    def last_alpha(self) -> U8 | None:
        """uint8 HxW alpha of the last frame (255 = person); valid until the next call."""
        return self._alpha

    def infer(
        self,
        frame: U8,
        grey: U8 | None = None,
        *,
        mirror: bool = False,
        guide: U8 | None = None,
    ) -> F32:
        """Segment, smooth and keep the main person: the model-resolution probability.

        Updates the history (previous mask, grey guide for motion, main
        region); ``frame`` is any-size BGR (the full frame in :meth:`process`:
        the model sees what the raw model sees), ``grey`` its luminance at any
        size if the caller already has it (the working frame's).
        With ``mirror`` the model also sees the mirrored frame and the two
        answers are averaged (photos: twice the model time, steadier edges).
        ``guide`` is this frame's motion guide when the still-image gate has
        already made it.
        """
        seg = self._ensure_segmenter((frame.shape[1], frame.shape[0]))
        s = self.settings
        raw = seg(frame).copy()  # a segmenter may hand out its own buffer
        prob = raw
        if mirror:
            prob = mask.segment_views(seg, frame, raw, s.mask.photo_views)
        size = (prob.shape[1], prob.shape[0])
        if guide is None or (guide.shape[1], guide.shape[0]) != size:
            guide = mask.motion_guide(frame if grey is None else grey, size)
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

    def infer_moving(self, frame: U8) -> bool:
        """:meth:`infer`, unless the image is still since the last model run; True if it ran.

        For runners that segment on their own thread (the live runner): a
        still scene keeps its mask and the model's CPU time is saved, as in
        :meth:`process`. ``frame`` is the working-resolution frame.
        """
        grey = cast(U8, cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
        still, guide = self._still(grey) if self._has_history() else (False, None)
        if still:
            return False
        self.infer(frame, grey, guide=guide)
        return True

    def _has_history(self) -> bool:
        """Whether a mask from an earlier frame can be carried to this one."""
        last, prev = self._last_prob, self._prev
        return last is not None and prev is not None and last.shape == prev.shape

    def _still(self, grey: U8) -> tuple[bool, U8 | None]:
        """The still-image gate (``mask.is_still``), counting carried frames in a row.

        Returns whether to carry the last mask, and this frame's guide at
        model resolution (None when there is no mask yet).
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
        ``face_retry`` while none is. Part of the mask stage (it needs only the
        working frame and the mask), which in :meth:`process_iter` is the
        thread with time to spare once the still gate skips the model.
        """
        g = self.settings.guards
        n = self._front_frames
        self._front_frames += 1
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

    def _guard_faces(self, alpha: F32, fr: _Front) -> None:
        """Track faces (with this frame's detections, if any), then force them into ``alpha``.

        On a frame the still gate carried (the image as at the last model
        run) the faces stay where they are, unless the detector ran.
        """
        g = self.settings.guards
        if not g.face or fr.photo:
            self._faces = []
            return
        if fr.guide is not None and (fr.faces is not None or not fr.still):
            self._faces = track_faces(self._faces, fr.faces, fr.guide)
        self._faces = guards.protect_faces(alpha, self._faces)

    def process(self, frame: NDArray[Any], *, infer: bool = True) -> U8:
        """Blur the background of one frame; returns uint8 HxWx3 BGR of the same size.

        With ``infer=False`` the model is skipped and the previous mask is
        reused (live runners use it to keep full frame rate under load).
        The returned array is reused on the next call: copy it to keep it.
        """
        frame = as_bgr(frame)
        return self._back(frame, self._front(frame, infer))

    def process_image(self, image: NDArray[Any]) -> U8:
        """One still photo: no history, and the time a video frame does not have.

        The stream is reset first (a photo has no past); with ``model`` ``auto``
        the model is the one ``auto`` picks for this photo's shape; the model
        runs on ``photo_views`` views of the photo (itself, its mirror, both
        moved by half a model pixel) and the answers are averaged
        (``mask.segment_views``), a person the model sees on the photo itself
        that the average dropped comes back (``mask.rescue_floor``), and the
        edge is sharpened on both sides before the guided filter (video keeps
        the softer side below the edge, which there would pull shadows at a
        person's feet into the mask from frame to frame). There is no face
        guard: a photo has no exposure swing between frames to guard against.
        Street and group photos mIoU +0.010, boundary F +0.014 over the raw
        model (docs/QUALITY.md), for three more model runs. The returned array
        is reused on the next call.
        """
        self.reset()
        frame = as_bgr(image)
        return self._back(frame, self._front(frame, True, photo=True))

    def process_iter(
        self, frames: Iterable[NDArray[Any]], *, ahead: int = 2
    ) -> Generator[U8, None, None]:
        """:meth:`process` over a sequence, several frames in flight: the same output, faster.

        The mask stage (downscale, model, temporal smoothing, the fit of the
        refinement, face detection) of the next ``ahead`` frames runs on a
        worker thread while this thread finishes frame t (face tracking and
        guard, effect, composite; applying the refinement's fit runs in
        whichever of the two has been lighter lately), so on two cores the
        model is off the critical path. More than one frame ahead lets the
        worker catch up after a frame whose model ran by working ahead on the
        frames the still-image gate makes cheap (720p on 2 cores, one process,
        interleaved: 3.9 -> 3.2 ms/frame from 1 to 2 ahead; 3 or 4 gain
        nothing more). Both
        stages keep their own state and run their frames in order, so the
        frames that come out are exactly those :meth:`process` would give.
        Each yielded array is reused for the next frame: copy it to keep it.
        """
        if ahead < 1:
            raise SettingsError(f"ahead must be >= 1, got {ahead}")
        with ThreadPoolExecutor(1, thread_name_prefix="blurcam-mask") as pool:
            pending: deque[tuple[U8, Future[_Front]]] = deque()
            for f in frames:
                frame = as_bgr(f)
                pending.append((frame, pool.submit(self._front, frame, True)))
                if len(pending) > ahead:
                    done, front = pending.popleft()
                    yield self._back(done, front.result())
            while pending:
                done, front = pending.popleft()
                yield self._back(done, front.result())

    def _front(self, frame: U8, infer: bool, *, photo: bool = False) -> _Front:
        """Mask stage: working frame, model (or the carried mask), refinement, face detection.

        Touches only the mask history (previous mask, guides, main region),
        never the effect or guard state, so it may run frames ahead of
        :meth:`_back` on another thread.
        """
        s = self.settings
        tm = StageTimes()
        t = time.perf_counter()
        h, w = frame.shape[:2]
        if self._front_size != (w, h):
            self._front_size = (w, h)
            self._prev = None
        ww, wh = mask.working_size((w, h), s.mask.refine_width)
        # one cheap downscale shared by the model input, the refinement guide and
        # the background effect (bilinear: area averaging costs 1.5-10 ms here)
        small: U8 = (
            frame
            if (ww, wh) == (w, h)
            else cast(U8, cv2.resize(frame, (ww, wh), interpolation=cv2.INTER_LINEAR))
        )
        # one luminance for the motion guide, the refinement and the keep tracker
        grey = cast(U8, cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
        t = tm.add("downscale", t)
        last = self._last_prob
        carry = self._has_history()
        still, guide = self._still(grey) if carry and infer else (False, None)
        reuse = still or (carry and not infer)
        if reuse and last is not None:
            prob = last
            if guide is None:
                guide = mask.motion_guide(grey, (last.shape[1], last.shape[0]))
        else:
            # the model sees the full frame, as the raw model does (its own bilinear
            # resize): from the working frame it is resampled twice, and the model
            # answers differently (DAVIS hike: mIoU -0.015, far false positives +0.1%)
            prob = self.infer(frame, grey, mirror=photo, guide=guide)
            guide = self._guide
        t = tm.add("segment", t)
        # on a frame the still gate carried, the last fit is applied to this
        # frame's image: the edge follows what little moved (talking-head clip:
        # IoU with running the model on every frame 0.995 -> 0.997 against
        # carrying the last alpha as it was)
        floor = self._floor
        coef = self._coef if still else None
        if coef is None:
            coef = mask.guided_coefficients(prob, grey, s.mask, photo=photo)
        self._coef = coef
        # Applying the fit (pure, ~0.25 ms at 480x270) runs in whichever stage
        # has been the lighter one lately, which balances process_iter's threads
        # whatever share of frames the still gate skips.
        alpha = None
        if self._ms_back >= self._ms_front:
            alpha = mask.apply_floor(mask.to_alpha(mask.apply_guided(*coef, grey), s.mask), floor)
        t = tm.add("refine", t)
        # a photo has no exposure swing between frames to guard against, and the
        # guard's fill past the model's edge cost the dev portraits boundary F 0.03
        faces = None if photo else self._detect_faces(small, prob)
        tm.add("guards", t)
        self._ms_front += 0.1 * (sum(tm.ms.values()) - self._ms_front)
        return _Front(
            small, grey, guide, prob, coef, floor, alpha, still, faces, not reuse, photo, tm.ms
        )

    def _back(self, frame: U8, fr: _Front) -> U8:
        """Guard, effect and composite stage of one frame (see :meth:`_front`)."""
        s = self.settings
        tm = self.times
        tm.ms.clear()
        tm.ms.update(fr.times)
        self.last_inferred = fr.inferred
        t0 = t = time.perf_counter()
        self._ensure(frame)
        h, w = frame.shape[:2]
        a_work = fr.alpha
        if a_work is None:
            a_work = mask.to_alpha(mask.apply_guided(*fr.coef, fr.grey), s.mask)
            mask.apply_floor(a_work, fr.floor)
        t = tm.add("refine", t)
        self._guard_faces(a_work, fr)
        t = tm.add("guards", t)
        # a fresh array every frame: kept as the history without a copy
        a8 = cast(U8, cv2.convertScaleAbs(a_work, alpha=255.0))
        alpha = mask.upsample_alpha(a8, (w, h), out=self._bufs["alpha"])
        self._alpha = alpha
        t = tm.add("upsample", t)
        bg = self._background(frame, fr.small, fr.grey, alpha, s.effect, still=fr.still)
        t = tm.add("effect", t)
        # blend in place when the effect wrote into our background buffer
        dst = bg if bg is self._bufs["bg"] else self._bufs["out"]
        out = composite.blend(frame, bg, alpha, out=dst)
        tm.add("composite", t)
        self.frames += 1
        self._ms_back += 0.1 * ((time.perf_counter() - t0) * 1000.0 - self._ms_back)
        return out

    # --------------------------------------------------------------- effects
    def _background(
        self, frame: U8, small: U8, grey: U8, alpha: U8, e: EffectSettings, *, still: bool = False
    ) -> U8:
        """The background layer for ``e.kind``; may raise ``alpha`` (keep) or lower it (wrap).

        On a ``still`` frame (the gate carried the mask: the image is as at the
        last model run) the layer of the frame before is used again, as the
        mask is: for the blur its small layer, so only the upsample runs (720p:
        ~0.6 ms saved on such a frame); for the other effects the finished
        layer, kept in its own buffer. A video background moves on every frame,
        so it is never reused.
        """
        self._keep_region(grey, alpha, e)
        if e.kind == "none":
            self._reuse = None
            return frame
        h, w = frame.shape[:2]
        key = (e, (w, h), small.shape)
        reuse = self._reuse if still and self._reuse is not None and self._reuse[0] == key else None
        if reuse is not None and reuse[2] is not None:
            effects.wrap_alpha(alpha, reuse[2])  # the light wrap of the reused layer
        if e.kind == "blur":
            low = (
                reuse[1]
                if reuse is not None
                else effects.blur_layer((w, h), small, e.strength, alpha)
            )
            self._reuse = (key, low, None)
            if low is None:
                return frame  # too weak to blur: the frame is its own background
            return upscale_linear(low, (w, h), self._bufs["bg"])
        if reuse is not None and reuse[1] is not None:
            return reuse[1]
        layer = self._bufs.get("layer")
        if layer is None or layer.shape != frame.shape:
            layer = self._bufs["layer"] = np.empty_like(frame)
        bg, wrap = self._effect_layer(frame, small, alpha, e, layer)
        video = e.kind == "replace" and self._background_source(e).is_video
        self._reuse = None if video else (key, bg, wrap)
        return bg

    def _effect_layer(
        self, frame: U8, small: U8, alpha: U8, e: EffectSettings, out: U8
    ) -> tuple[U8, U8 | None]:
        """Bokeh, depth or replacement layer, in ``out`` (or a read-only picture), and
        the light wrap's weight (None: no wrap)."""
        if e.kind == "bokeh":
            bokeh = effects.bokeh_background(
                frame,
                small,
                alpha,
                e.strength,
                shape=e.bokeh_shape,
                highlights=e.highlights,
                out=out,
            )
            return bokeh, None
        if e.kind == "depth":
            depth = self._depth_map(small, alpha, e)
            return effects.depth_background(frame, small, alpha, e.strength, depth, out=out), None
        img = self._background_source(e).frame((frame.shape[1], frame.shape[0]))
        if e.harmonize == 0.0 and e.light_wrap == 0.0:
            return img, None  # read-only: composite writes into its own buffer
        bg = effects.harmonize_background(img, small, e.harmonize, out=out)
        if bg is not out:
            out[...] = bg
        return out, effects.light_wrap(out, alpha, e.light_wrap)

    def set_background(self, source: BackgroundSource | NDArray[Any] | str | None) -> None:
        """Use ``source`` (image array, path, or source) for ``replace`` instead of
        ``settings.effect.background``; ``None`` goes back to the settings' path.

        Raises:
            SourceError: the file cannot be read.
        """
        self._reuse = None  # a new picture: no layer of the old one is shown again
        if self._bg_source is not None:
            self._bg_source.close()
        if source is None:
            self._bg_source, self._bg_key = None, None
            return
        if not isinstance(source, BackgroundSource):
            source = BackgroundSource(source)
        self._bg_source = source
        self._bg_key = "override"

    def _background_source(self, e: EffectSettings) -> BackgroundSource:
        if self._bg_key == "override" and self._bg_source is not None:
            return self._bg_source
        if self._bg_source is None or self._bg_key != e.background:
            if self._bg_source is not None:
                self._bg_source.close()
            if e.background is None:  # no picture given: the built-in studio backdrop
                self._bg_source = BackgroundSource(studio_backdrop())
            else:
                self._bg_source = BackgroundSource(e.background)
            self._bg_key = e.background
        return self._bg_source

    def _depth_map(self, small: U8, alpha: U8, e: EffectSettings) -> F32 | None:
        """0..1 depth from the user's model (run every ``depth_every`` frames), or None."""
        if e.depth_model is None:
            return None
        est = self._depth
        if est is None or str(est.path) != e.depth_model or est.norm != e.depth_norm:
            if est is not None:
                est.close()
            est = self._depth = effects.DepthEstimator(
                e.depth_model, threads=self.settings.segment.threads, norm=e.depth_norm
            )
            self._depth_raw = None
        if self._depth_raw is None or self.frames % e.depth_every == 0:
            self._depth_raw = est(small)
        return effects.normalize_depth(self._depth_raw, alpha)

    def _keep_region(self, grey: U8, alpha: U8, e: EffectSettings) -> None:
        """Raise ``alpha`` inside the kept (and tracked) box; no-op when nothing is kept."""
        if e.keep_point is None and e.keep_box is None:
            self._keep = None
            return
        h, w = alpha.shape[:2]
        if e.keep_box is not None:
            box = tuple(float(v) for v in e.keep_box)
        else:
            assert e.keep_point is not None
            box = box_from_point(e.keep_point, e.keep_size * min(w, h), (w, h))
        if not e.keep_track:
            apply_keep(alpha, box)  # type: ignore[arg-type]
            return
        sc = grey.shape[1] / w
        key = (e.keep_point, e.keep_box, e.keep_size, (w, h))
        if self._keep is None or self._keep_key != key or self.frames == 0:
            self._keep = KeepTracker(grey, tuple(v * sc for v in box))
            self._keep_key = key
            self._keep_scale = sc
        else:
            self._keep.update(grey)
        apply_keep(alpha, self.keep_box)  # type: ignore[arg-type]

    @property
    def keep_box(self) -> tuple[float, float, float, float] | None:
        """The kept region of the last frame, (x, y, w, h) in frame pixels (None if none)."""
        if self._keep is None:
            return None
        x, y, bw, bh = self._keep.box
        s = 1.0 / self._keep_scale
        return x * s, y * s, bw * s, bh * s

    def _close_effects(self) -> None:
        if self._bg_source is not None:
            self._bg_source.close()
        if self._depth is not None:
            self._depth.close()
        self._bg_source = self._bg_key = self._depth = self._depth_raw = None


class BackgroundBlur:
    """Blur the background behind people, one instance per video stream.

    >>> bb = BackgroundBlur(strength=0.7, model="landscape")  # doctest: +SKIP
    >>> out = bb.process(frame)  # HxWx3 BGR uint8 -> same shape/dtype
    >>> bb.last_alpha            # HxW uint8, 255 = person

    Keyword arguments are shortcuts for the common settings; pass a full
    :class:`~blurcam.settings.Settings` for everything else. ``segmenter``
    replaces the model (any object with the :class:`Segmenter` shape).

    Raises:
        SettingsError: an option is out of range.
        ModelError: the model cannot be found or loaded (on the first frame).
    """

    def __init__(
        self,
        strength: float | None = None,
        model: str | None = None,
        *,
        effect: str | None = None,
        settings: Settings | None = None,
        segmenter: Segmenter | None = None,
        threads: int | None = None,
        device: str | None = None,
    ) -> None:
        s = settings or Settings()
        if strength is not None or effect is not None:
            s = replace(
                s,
                effect=replace(
                    s.effect,
                    strength=s.effect.strength if strength is None else float(strength),
                    kind=s.effect.kind if effect is None else effect,
                ),
            )
        if model is not None or threads is not None or device is not None:
            s = replace(
                s,
                segment=replace(
                    s.segment,
                    model=s.segment.model if model is None else model,
                    threads=s.segment.threads if threads is None else threads,
                    device=s.segment.device if device is None else device,
                ),
            )
        self._stream = Stream(s, segmenter)

    @property
    def settings(self) -> Settings:
        return self._stream.settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        self._stream.update(value)

    @property
    def stream(self) -> Stream:
        return self._stream

    @property
    def last_alpha(self) -> U8 | None:
        """HxW uint8 alpha of the last processed frame, 255 = person (None before any)."""
        return self._stream.last_alpha

    def process(self, frame: NDArray[Any]) -> U8:
        """Background-blurred copy of ``frame`` (HxWx3 BGR uint8 -> same shape and dtype)."""
        return cast(U8, self._stream.process(frame).copy())

    def process_image(self, image: NDArray[Any]) -> U8:
        """Background-blurred copy of one still photo: the best mask the model can give,
        at about four times the model time of a video frame; with ``model`` ``auto`` each
        photo runs on the model ``auto`` picks for its shape (see
        :meth:`Stream.process_image`)."""
        return cast(U8, self._stream.process_image(image).copy())

    def process_iter(self, frames: Iterable[NDArray[Any]]) -> Iterator[U8]:
        """:meth:`process` over a sequence of frames, with the mask stage frames ahead on
        a second thread: the same results, faster on two or more cores (see
        :meth:`Stream.process_iter`)."""
        for out in self._stream.process_iter(frames):
            yield cast(U8, out.copy())

    def reset(self) -> None:
        """Forget temporal state before starting an unrelated stream."""
        self._stream.reset()

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> BackgroundBlur:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
