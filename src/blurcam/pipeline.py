"""One :class:`Stream` per video stream: wires the nodes, in order, and nothing else.

::

    frame -> MotionNode.run -> motion -> MaskNode.run -> packet -> CompositeNode.alpha
          -> alpha -> EffectNode.run -> (layer, alpha) -> CompositeNode.render -> out

Each node owns the state of its stage group (:mod:`blurcam.nodes`); the
stream is the one place that knows their order. :class:`BackgroundBlur` is
its public face.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any, cast

from numpy.typing import NDArray

from .errors import SettingsError
from .frame import U8, as_bgr
from .io.background import BackgroundSource
from .nodes import (
    CompositeNode,
    EffectNode,
    FaceDetectorLike,
    MaskNode,
    MaskPacket,
    MotionNode,
    StageTimes,
)
from .segment import Segmenter, SegmenterFactory, open_for
from .settings import Settings
from .upscale import upscale_linear

__all__ = ["BackgroundBlur", "StageTimes", "Stream"]


class Stream:
    """The nodes of one video stream, wired: :meth:`process` runs a frame through all.

    ``segmenter`` may be given (tests use a fake one); otherwise it is built
    through ``segmenter_factory`` on the first frame, when the frame size is
    known. ``face_detector`` replaces MediaPipe's face detector. Runners
    that put the nodes on threads of their own run :attr:`motion` and
    :attr:`mask` on one and :meth:`render` on another (see ``live.runner``);
    one node, one thread.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        segmenter: Segmenter | None = None,
        *,
        segmenter_factory: SegmenterFactory = open_for,
        face_detector: FaceDetectorLike | None = None,
    ) -> None:
        settings = settings or Settings()
        self.motion = MotionNode(settings)
        self.mask = MaskNode(settings, segmenter, segmenter_factory=segmenter_factory)
        self.effect = EffectNode(settings)
        self.composite = CompositeNode(settings, face_detector)
        self.times = StageTimes()  # ms per stage of the last frame
        self.frames = 0
        self._alpha: U8 | None = None  # working-resolution alpha of the last frame
        self._full: U8 | None = None  # ... at the frame's size, once asked for
        self._size: tuple[int, int] | None = None
        self._inferred = False
        self._helper: ThreadPoolExecutor | None = None  # process()'s second core
        self._tracked = False  # mask_packet() moved the face tracker for the frame to render

    # ----------------------------------------------------------------- state
    @property
    def settings(self) -> Settings:
        """The settings of the effect and composite nodes (all nodes', after :meth:`update`)."""
        return self.composite.settings

    @property
    def segmenter(self) -> Segmenter | None:
        return self.mask.segmenter

    @property
    def last_alpha(self) -> U8 | None:
        """uint8 HxW alpha of the last frame at its size (255 = person), exactly the one the
        output was composited with; valid until the next call.

        Made when asked for: the frame itself is composited without writing it
        out (:func:`blurcam.composite.render`).
        """
        if self._alpha is None or self._size is None:
            return None
        if self._full is None:
            self._full = upscale_linear(self._alpha, self._size)
        return self._full

    @property
    def last_inferred(self) -> bool:
        """Whether the model ran for the last frame (False: its mask was carried)."""
        return self._inferred

    @property
    def keep_box(self) -> tuple[float, float, float, float] | None:
        """The kept region of the last frame, (x, y, w, h) in frame pixels (None if none)."""
        return self.effect.keep_box

    def set_background(self, source: BackgroundSource | NDArray[Any] | str | None) -> None:
        """The ``replace`` picture (see :meth:`EffectNode.set_background`)."""
        self.effect.set_background(source)

    def update(self, settings: Settings) -> None:
        """Swap every node's settings between frames; a new model loads on the next frame.

        A runner that has put the nodes on threads of their own updates each
        node from its own thread instead (``node.update``).
        """
        for node in (self.motion, self.mask, self.effect, self.composite):
            node.update(settings)

    def reset(self) -> None:
        """Forget temporal state (a new stream starts)."""
        for node in (self.motion, self.mask, self.effect, self.composite):
            node.reset()
        self.frames = 0
        self._alpha = self._full = None

    def close(self) -> None:
        self.composite.close()
        self.mask.close()
        self.effect.close()
        if self._helper is not None:
            self._helper.shutdown()
            self._helper = None

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ work
    def _second_core(self) -> ThreadPoolExecutor | None:
        """The helper thread of :meth:`process` (None on a one-core machine)."""
        if self._helper is None and (os.cpu_count() or 1) > 1:
            self._helper = ThreadPoolExecutor(1, thread_name_prefix="blurcam-helper")
        return self._helper

    def process(self, frame: NDArray[Any]) -> U8:
        """Blur the background of one frame; returns uint8 HxWx3 BGR of the same size.

        One frame at a time, the latency a caller feels: :meth:`mask_packet`,
        then :meth:`render` with the helper thread. The returned array is
        reused on the next call: copy it to keep it.
        """
        f = as_bgr(frame)
        return self.render(f, self.mask_packet(f), alone=True)

    def mask_packet(self, frame: U8) -> MaskPacket:
        """The motion and mask nodes on one frame (uint8 HxWx3 BGR): its mask packet.

        The model runs on a helper thread while this one measures the
        frame's motion and moves the face tracker (:meth:`CompositeNode.track`):
        those need only the image. When the still gate cannot carry this frame
        (:meth:`MotionNode.may_carry`) the model starts before the downscale
        too. Call :meth:`render` on the same frame next.
        """
        helper = self._second_core()
        model = None
        if helper is not None and not self.motion.may_carry():
            # the model runs whatever the gate says: start it before the downscale
            model = helper.submit(self.mask.segment, frame)
        m = self.motion.start(frame)
        if model is None and helper is not None and self.mask.wants_model(m):
            model = helper.submit(self.mask.segment, frame)
        m = self.motion.finish(m)
        times = StageTimes(dict(m.times))
        t = time.perf_counter()
        self.composite.track(m.small, m.guide, m.still)
        self._tracked = True
        t = times.add("guards", t)
        segmented = None if model is None else model.result()
        times.add("segment", t)  # what is left of the model's run once the tracker moved
        return self.mask.run(frame, replace(m, times=times.ms), segmented=segmented)

    def process_image(self, image: NDArray[Any]) -> U8:
        """One still photo: no history, and the time a video frame does not have.

        The stream is reset first (a photo has no past), the model runs on
        several views of the photo and the answers are averaged
        (``mask.segment_views``), and the edge is sharpened on both sides
        before the guided filter (video keeps the softer side below the edge,
        which there would pull shadows at a person's feet into the mask from
        frame to frame). The returned array is reused on the next call.
        """
        self.reset()
        f = as_bgr(image)
        packet = self.mask.run(f, self.motion.run(f, photo=True), photo=True)
        return self.render(f, packet, alone=True)

    def process_iter(
        self, frames: Iterable[NDArray[Any]], *, ahead: int = 2
    ) -> Generator[U8, None, None]:
        """:meth:`process` over a sequence, several frames in flight: the same output, faster.

        The mask node (the model and the mask history) of the next ``ahead``
        frames runs on a worker thread while this thread measures their
        motion and renders frame t (:meth:`render`), so on two cores the two
        threads share the work about evenly. More than one frame ahead lets
        the worker catch up after a slow frame (720p on 2 cores: 3.9 -> 3.2
        ms/frame from 1 to 2 ahead; 3 or 4 gain nothing more). Each node
        runs its frames in order on one thread, so the frames that come out
        are exactly those :meth:`process` would give. Each yielded array is
        reused for the next frame: copy it to keep it.
        """
        if ahead < 1:
            raise SettingsError(f"ahead must be >= 1, got {ahead}")
        with ThreadPoolExecutor(1, thread_name_prefix="blurcam-mask") as pool:
            pending: deque[tuple[U8, Future[MaskPacket]]] = deque()
            for f in frames:
                frame = as_bgr(f)
                pending.append((frame, pool.submit(self.mask.run, frame, self.motion.run(frame))))
                if len(pending) > ahead:
                    done, packet = pending.popleft()
                    yield self.render(done, packet.result())
            while pending:
                done, packet = pending.popleft()
                yield self.render(done, packet.result())

    def render(self, frame: U8, packet: MaskPacket, *, alone: bool = False) -> U8:
        """Effect and composite of one frame, given its mask packet: the output frame.

        ``frame`` is uint8 HxWx3 BGR (see :func:`blurcam.frame.as_bgr`). The
        composite and effect nodes run here; the motion and mask nodes may
        run on another thread (:meth:`process_iter`, the live runner). With
        ``alone`` (no other thread of this stream busy) the face detector and
        half of the full-resolution pass run on the helper thread.
        """
        pool = self._second_core() if alone else None
        tm = self.times
        tm.ms.clear()
        tm.ms.update(packet.times)
        self._inferred = packet.inferred
        tracked, self._tracked = self._tracked, False
        alpha = self.composite.alpha(packet, tm, pool=pool, tracked=tracked)
        layer, alpha = self.effect.run(frame, packet, alpha, tm)
        self._alpha, self._full = alpha, None
        self._size = (frame.shape[1], frame.shape[0])
        out = self.composite.render(frame, layer, alpha, tm, pool=pool)
        self.frames += 1
        return out


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
        at about twice the time of a video frame (see :meth:`Stream.process_image`)."""
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
