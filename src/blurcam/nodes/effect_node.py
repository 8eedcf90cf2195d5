"""The effect node: frame + packet + alpha -> (background layer, alpha).

In: the full-resolution frame, its :class:`~blurcam.nodes.mask_node.MaskPacket`
(the working-resolution frame and luminance) and the working-resolution
alpha from :meth:`~blurcam.nodes.composite_node.CompositeNode.alpha`. Out:
the uint8 layer that goes behind the person, at full resolution (a
replacement picture) or at the small size an effect works at (blur, bokeh,
depth: :func:`blurcam.composite.render` upsamples it on the fly), and the
alpha to blend with. The alpha handed in is never edited: when the effect
changes it (a kept region raises it, the light wrap lowers it at the edge)
the node returns its own copy.

The node owns what the effects keep between frames: the replacement source
(image or looping video), the depth model and its last answer, the keep
tracker, and the last layer, which a frame the still gate carried shows again
(the image is as it was, so the layer is too). The maths are the pure
functions of :mod:`blurcam.effects` and :mod:`blurcam.keep`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import effects
from ..frame import F32, U8
from ..io.background import BackgroundSource, studio_backdrop
from ..keep import KeepTracker, apply_keep, box_from_point
from ..segment.depth import DepthEstimator
from ..settings import EffectSettings, Settings
from .mask_node import MaskPacket
from .timing import StageTimes

__all__ = ["EffectNode"]


class EffectNode:
    """Background layer of each frame, and the alpha the effect asks for."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._frames = 0
        self._bg_source: BackgroundSource | None = None
        self._bg_key: object = None
        self._depth: DepthEstimator | None = None
        self._depth_raw: F32 | None = None
        # (key, layer, wrap weight) of the last frame, for still frames (see run)
        self._reuse: tuple[object, U8 | None, U8 | None] | None = None
        self._keep: KeepTracker | None = None
        self._keep_key: object = None
        self._keep_scale = 1.0
        self._layer: U8 | None = None  # the replacement's full-resolution layer
        self._alpha: U8 | None = None  # the alpha when the effect changes it

    def update(self, settings: Settings) -> None:
        self.settings = settings

    def reset(self) -> None:
        """Forget the tracked keep region, the depth and the reused layer."""
        self._frames = 0
        self._keep = self._depth_raw = self._reuse = None

    def close(self) -> None:
        if self._bg_source is not None:
            self._bg_source.close()
        if self._depth is not None:
            self._depth.close()
        self._bg_source = self._bg_key = self._depth = self._depth_raw = None

    # ------------------------------------------------------------------ work
    def run(
        self, frame: U8, packet: MaskPacket, alpha: U8, times: StageTimes | None = None
    ) -> tuple[U8, U8]:
        """The background layer for ``settings.effect.kind`` and the alpha to blend with.

        ``alpha`` is the working-resolution alpha (uint8, 255 = person). The
        layer is the replacement picture at full resolution, or the small
        layer of blur, bokeh or depth, or ``frame`` itself (effect ``none``,
        or too weak to blur). On a ``packet.still`` frame (the gate carried
        the mask: the image is as at the last model run) the layer of the
        frame before is used again, as the mask is. A video background moves
        on every frame, so it is never reused.
        """
        t = time.perf_counter()
        e = self.settings.effect
        alpha = self._keep_region(packet.grey, alpha, e, (frame.shape[1], frame.shape[0]))
        layer, alpha = self._layer_for(frame, packet, alpha, e)
        self._frames += 1
        if times is not None:
            times.add("effect", t)
        return layer, alpha

    def _own(self, alpha: U8) -> U8:
        """``alpha`` in the node's buffer (a copy the node may edit)."""
        if alpha is self._alpha:
            return alpha
        if self._alpha is None or self._alpha.shape != alpha.shape:
            self._alpha = np.empty_like(alpha)
        np.copyto(self._alpha, alpha)
        return self._alpha

    def _layer_for(
        self, frame: U8, packet: MaskPacket, alpha: U8, e: EffectSettings
    ) -> tuple[U8, U8]:
        if e.kind == "none":
            self._reuse = None
            return frame, alpha
        small = packet.small
        h, w = frame.shape[:2]
        key = (e, (w, h), small.shape)
        reuse = self._reuse if packet.still and self._reuse and self._reuse[0] == key else None
        if reuse is not None and reuse[2] is not None:
            alpha = self._own(alpha)
            effects.wrap_alpha(alpha, reuse[2])  # the light wrap of the reused layer
        layer: U8 | None
        if reuse is not None:  # kept as it is, wrap weight and all
            layer = reuse[1]
            return (frame if layer is None else layer), alpha
        if e.kind == "blur":
            layer = effects.blur_layer((w, h), small, e.strength, alpha)
        elif e.kind == "bokeh":
            layer = effects.bokeh_layer(
                (w, h), small, alpha, e.strength, shape=e.bokeh_shape, highlights=e.highlights
            )
        elif e.kind == "depth":
            depth = self._depth_map(small, alpha, e)
            layer = effects.depth_layer((w, h), small, alpha, e.strength, depth)
        else:
            img, alpha, wrap = self._replacement(frame, small, alpha, e)
            video = self._background_source(e).is_video
            self._reuse = None if video else (key, img, wrap)
            return img, alpha
        self._reuse = (key, layer, None)
        # too weak to blur: the frame is its own background
        return (frame if layer is None else layer), alpha

    def _replacement(
        self, frame: U8, small: U8, alpha: U8, e: EffectSettings
    ) -> tuple[U8, U8, U8 | None]:
        """The replacement picture at full resolution (in the node's buffer, or the
        source's read-only picture), the alpha, and the light wrap's weight (or None)."""
        img = self._background_source(e).frame((frame.shape[1], frame.shape[0]))
        if e.harmonize == 0.0 and e.light_wrap == 0.0:
            return img, alpha, None  # read-only: the composite writes into its own buffer
        if self._layer is None or self._layer.shape != frame.shape:
            self._layer = np.empty_like(frame)
        out = self._layer
        bg = effects.harmonize_background(img, small, e.harmonize, out=out)
        if bg is not out:
            out[...] = bg
        if e.light_wrap == 0.0:
            return out, alpha, None
        alpha = self._own(alpha)
        return out, alpha, effects.light_wrap(out, alpha, e.light_wrap)

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
            est = self._depth = DepthEstimator(
                e.depth_model, threads=self.settings.segment.threads, norm=e.depth_norm
            )
            self._depth_raw = None
        if self._depth_raw is None or self._frames % e.depth_every == 0:
            self._depth_raw = est(small)
        return effects.normalize_depth(self._depth_raw, alpha)

    def _keep_region(
        self, grey: U8, alpha: U8, e: EffectSettings, frame_size: tuple[int, int]
    ) -> U8:
        """``alpha`` raised inside the kept (and tracked) box; as it was when nothing is kept.

        ``grey`` and ``alpha`` are at working resolution; the box is given in
        pixels of the frame (``frame_size``) and tracked in ``grey``.
        """
        if e.keep_point is None and e.keep_box is None:
            self._keep = None
            return alpha
        w, h = frame_size
        if e.keep_box is not None:
            box = tuple(float(v) for v in e.keep_box)
        else:
            assert e.keep_point is not None
            box = box_from_point(e.keep_point, e.keep_size * min(w, h), (w, h))
        sc = grey.shape[1] / w
        work = tuple(v * sc for v in box)
        alpha = self._own(alpha)
        if not e.keep_track:
            self._keep = None
            apply_keep(alpha, work)
            return alpha
        key = (e.keep_point, e.keep_box, e.keep_size, (w, h))
        if self._keep is None or self._keep_key != key or self._frames == 0:
            self._keep = KeepTracker(grey, work)
            self._keep_key = key
            self._keep_scale = sc
        else:
            self._keep.update(grey)
        apply_keep(alpha, self._keep.box)
        return alpha

    @property
    def keep_box(self) -> tuple[float, float, float, float] | None:
        """The kept region of the last frame, (x, y, w, h) in frame pixels (None if none)."""
        if self._keep is None:
            return None
        x, y, bw, bh = self._keep.box
        s = 1.0 / self._keep_scale
        return x * s, y * s, bw * s, bh * s
