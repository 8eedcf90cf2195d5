"""Options of every stage, as frozen dataclasses validated once.

CLI, batch manifests, web page, live controls, eval and tests all build one
:class:`Settings`, through :func:`build_settings` where options come by name.
For live changes build a new one and hand it to the stream between frames;
nothing here is mutated.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace

from .errors import SettingsError

__all__ = [
    "EFFECTS",
    "OPTIONS",
    "EffectSettings",
    "GuardSettings",
    "MaskSettings",
    "SegmentSettings",
    "Settings",
    "build_settings",
    "settings_digest",
]

EFFECTS = ("blur", "bokeh", "replace", "depth", "none")


def _check_range(name: str, value: float, lo: float, hi: float, *, hi_open: bool = False) -> None:
    ok = lo <= value < hi if hi_open else lo <= value <= hi
    if not ok:
        bracket = ")" if hi_open else "]"
        raise SettingsError(f"{name} must be in [{lo}, {hi}{bracket}, got {value}")


# Model threads: half the cores, at most 2. The model's stage runs beside the
# composite (Stream.process_iter, the live runner), and on 2 cores a second
# XNNPACK thread only spins against it (measured in docs/BENCHMARKS.md).
DEFAULT_THREADS = max(1, min(2, (os.cpu_count() or 2) // 2))


@dataclass(frozen=True, slots=True)
class SegmentSettings:
    """Which model runs and how.

    ``model`` is ``auto`` (landscape model for frames wider than 4:3, general
    model otherwise), a registry name (``selfie``, ``landscape``, ...) or a path
    to a ``.tflite``/``.onnx`` file.
    """

    model: str = "auto"
    threads: int = DEFAULT_THREADS
    device: str = "cpu"  # auto|cpu|gpu|npu

    def __post_init__(self) -> None:
        if not self.model:
            raise SettingsError("model must be a name or a path, got an empty string")
        if not 1 <= self.threads <= 64:
            raise SettingsError(f"threads must be in [1, 64], got {self.threads}")
        if self.device not in ("auto", "cpu", "gpu", "npu"):
            raise SettingsError(f"device must be auto, cpu, gpu or npu, got {self.device!r}")


@dataclass(frozen=True, slots=True)
class MaskSettings:
    """Temporal smoothing and edge refinement of the person mask.

    Temporal smoothing (``mask.align_previous``, ``mask.smooth_temporal``):
    the previous mask is moved by the optical flow between the frames
    (measured at most ``flow_width`` pixels wide, at model resolution or
    below; 0 = history held in place), trusted where the moved previous
    frame matches this one (``warp_low`` grey levels of difference: fully,
    ``warp_high``: not at all) and blended in with weight ``smoothing``
    times the model's uncertainty, and at least ``hold`` where it is
    trusted (``smoothing`` 0 = off). ``scene_cut`` is the mean absolute mask
    change above which history is dropped.

    Still gate: when at most ``still_moved`` of the pixels changed by more
    than ``motion_high`` grey levels since the last model run, the model is
    skipped and its mask carried (the refinement's last fit applied to the
    new image), at most ``still_reuse`` frames in a row (0 = run it on every
    frame).

    Refinement (``mask.refine_guided``): ``refine`` turns on the
    image-guided filter; ``refine_width`` is the working width it runs at,
    ``refine_coarse`` how many working pixels of person height make one step
    of the coarser grid its coefficients are fitted on (at most 4) and
    ``refine_radius`` its radius on that grid, ``refine_eps`` its
    regularisation. Before the fit the probability is pushed to 0/1 about
    ``refine_edge`` (0.55: on head-and-shoulders photos the models' 0.5
    contour lies a little outside the true edge, in the hair's halo) with
    slope ``refine_sharpen`` in a photo and ``refine_sharpen_video`` in
    video (see ``mask.sharpen_edge``; 0 = off). The refinement fades in with
    the person's thickness, from ``refine_thick_low`` to
    ``refine_thick_high`` (area over boundary length, in frame heights: on
    thin full-body people and groups it frays the edge), and with how much
    finer the working frame is than the model's grid, from
    ``refine_upscale_low`` to ``refine_upscale_high`` (see
    ``mask.refine_weight``). In video, with ``refine_fit``, a thin person is
    refined too, where the guided filter's local fit explains the mask's
    edge (its R squared, ``mask.explained``), and keeps the model's edge
    elsewhere (a thin limb against clutter).

    ``edge_low``/``edge_high`` map probability to alpha (below low -> 0,
    above high -> 1); their midpoint 0.5 is the raw model's own threshold,
    so the alpha keeps every place the model calls person. A photo
    (``Stream.process_image``) is segmented over ``photo_views`` views
    (1, 2: with its mirror image, 4: also moved by half a model pixel; see
    ``mask.segment_views``), at a working width of up to ``photo_width``
    (video: ``refine_width``), and with ``matte`` its alpha is solved
    against the photo's colours within ``matte_band`` model pixels of the
    edge (``mask.matte_photo``: closed-form matting, windows of radius
    ``matte_radius``, regularised by ``matte_eps``, ``matte_iters``
    conjugate-gradient steps).
    """

    smoothing: float = 0.9
    hold: float = 0.5
    flow_width: int = 256
    warp_low: float = 10.0
    warp_high: float = 30.0
    motion_high: float = 12.0
    scene_cut: float = 0.3
    still_reuse: int = 2
    still_moved: float = 0.01
    refine: bool = True
    refine_width: int = 480
    refine_coarse: int = 80
    refine_radius: int = 3
    refine_eps: float = 0.001
    refine_sharpen: float = 8.0
    refine_sharpen_video: float = 4.0
    refine_edge: float = 0.55
    refine_thick_low: float = 0.1
    refine_thick_high: float = 0.2
    refine_upscale_low: float = 1.25
    refine_upscale_high: float = 1.75
    refine_fit: bool = True
    photo_views: int = 4
    photo_width: int = 1024
    matte: bool = True
    matte_band: float = 6.0
    matte_radius: int = 2
    matte_eps: float = 1e-4
    matte_iters: int = 30
    edge_low: float = 0.3
    edge_high: float = 0.7

    def __post_init__(self) -> None:
        _check_range("smoothing", self.smoothing, 0.0, 1.0, hi_open=True)
        _check_range("hold", self.hold, 0.0, 1.0, hi_open=True)
        if not (self.flow_width == 0 or 16 <= self.flow_width <= 1024):
            raise SettingsError(
                f"flow_width must be 0 (off) or in [16, 1024], got {self.flow_width}"
            )
        if not 0.0 <= self.warp_low < self.warp_high <= 255.0:
            raise SettingsError(
                f"need 0 <= warp_low < warp_high <= 255, got {self.warp_low}, {self.warp_high}"
            )
        _check_range("motion_high", self.motion_high, 1.0, 255.0)
        _check_range("scene_cut", self.scene_cut, 0.0, 1.0)
        if not 0 <= self.still_reuse <= 30:
            raise SettingsError(f"still_reuse must be in [0, 30], got {self.still_reuse}")
        _check_range("still_moved", self.still_moved, 0.0, 1.0)
        if not 32 <= self.refine_width <= 4096:
            raise SettingsError(f"refine_width must be in [32, 4096], got {self.refine_width}")
        if not 16 <= self.refine_coarse <= 4096:
            raise SettingsError(f"refine_coarse must be in [16, 4096], got {self.refine_coarse}")
        if not 1 <= self.refine_radius <= 64:
            raise SettingsError(f"refine_radius must be in [1, 64], got {self.refine_radius}")
        if not 0.0 < self.refine_eps <= 1.0:
            raise SettingsError(f"refine_eps must be in (0, 1], got {self.refine_eps}")
        for name in ("refine_sharpen", "refine_sharpen_video"):
            v = getattr(self, name)
            if not (v == 0.0 or 1.0 <= v <= 100.0):
                raise SettingsError(f"{name} must be 0 (off) or in [1, 100], got {v}")
        _check_range("refine_edge", self.refine_edge, 0.05, 0.95)
        if not 0.0 <= self.refine_thick_low <= self.refine_thick_high <= 1.0:
            raise SettingsError(
                f"need 0 <= refine_thick_low <= refine_thick_high <= 1, got "
                f"{self.refine_thick_low}, {self.refine_thick_high}"
            )
        if not 0.0 <= self.refine_upscale_low <= self.refine_upscale_high <= 16.0:
            raise SettingsError(
                f"need 0 <= refine_upscale_low <= refine_upscale_high <= 16, got "
                f"{self.refine_upscale_low}, {self.refine_upscale_high}"
            )
        if self.photo_views not in (1, 2, 4):
            raise SettingsError(f"photo_views must be 1, 2 or 4, got {self.photo_views}")
        _check_range("photo_width", self.photo_width, 32, 8192)
        _check_range("matte_band", self.matte_band, 0.0, 64.0)
        _check_range("matte_radius", self.matte_radius, 1, 8)
        _check_range("matte_eps", self.matte_eps, 1e-6, 1.0)
        _check_range("matte_iters", self.matte_iters, 0, 500)
        if not 0.0 <= self.edge_low < self.edge_high <= 1.0:
            raise SettingsError(
                f"need 0 <= edge_low < edge_high <= 1, got {self.edge_low}, {self.edge_high}"
            )


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """Protection against the known failures: a blurred face, a stranger kept.

    ``face`` keeps the faces of people in the foreground: MediaPipe's
    short-range face detector runs every ``face_interval`` frames (and, while
    no face is tracked, every ``face_retry`` frames), faces are tracked
    between detections, and the head ellipse (from the detector's box and
    keypoints) is held where the model once saw person (see
    ``guards.protect_faces``). A face the detector does not confirm, that
    the tracker loses, or that leaves the person mask is dropped at once.
    ``face_score`` is the detector's minimum score. ``people`` is ``all`` or
    ``main``: keep only the main person (the largest, most central region,
    followed over time) and put everyone else in the background.
    """

    face: bool = True
    face_interval: int = 12
    face_retry: int = 4
    face_score: float = 0.5
    people: str = "all"  # all|main

    def __post_init__(self) -> None:
        if self.people not in ("all", "main"):
            raise SettingsError(f"people must be 'all' or 'main', got {self.people!r}")
        for name in ("face_interval", "face_retry"):
            v = getattr(self, name)
            if not 1 <= v <= 10_000:
                raise SettingsError(f"{name} must be in [1, 10000], got {v}")
        _check_range("face_score", self.face_score, 0.05, 1.0)


@dataclass(frozen=True, slots=True)
class EffectSettings:
    """What happens to the background (docs/EFFECTS.md shows each option).

    ``kind``: ``blur`` (Gaussian, halo-free), ``bokeh`` (lens disc with
    blooming highlights), ``replace`` (image or looping video), ``depth``
    (blur grows with distance) or ``none``. ``strength`` 0 = off, 1 =
    heaviest; it sets the blur of ``blur``, ``bokeh`` and ``depth`` and is
    unused by ``replace``.

    Replacement: ``background`` is a path to an image or a video (looped),
    scaled to cover the frame (``None``: a built-in studio backdrop);
    ``light_wrap`` 0..1 lets the new background's light spill over the
    person's edge; ``harmonize`` 0..1 moves the new background's colours
    toward the camera's lighting.

    Bokeh: ``bokeh_shape`` ``disc`` or ``hex`` (aperture blades);
    ``highlights`` 0..1 how much bright spots bloom.

    Depth: ``depth_model`` is an optional path to an ONNX monocular depth model
    (one NCHW RGB input; ``depth_norm`` ``raw`` 0..255, ``unit`` 0..1 or
    ``imagenet``), run every ``depth_every`` frames; without one the depth is
    guessed from the person mask.

    Keep sharp (selective unblur): ``keep_point`` ``(x, y)`` or ``keep_box``
    ``(x, y, w, h)`` in pixels of the input frame; a point keeps a square of
    ``keep_size`` times the frame's shorter side. With ``keep_track`` the
    region follows the object as it moves.
    """

    kind: str = "blur"
    strength: float = 0.7
    background: str | None = None
    light_wrap: float = 0.3
    harmonize: float = 0.0
    bokeh_shape: str = "disc"
    highlights: float = 0.5
    depth_model: str | None = None
    depth_norm: str = "raw"
    depth_every: int = 3
    keep_point: tuple[float, float] | None = None
    keep_box: tuple[float, float, float, float] | None = None
    keep_size: float = 0.25
    keep_track: bool = True

    def __post_init__(self) -> None:
        if self.kind not in EFFECTS:
            raise SettingsError(f"effect must be one of {', '.join(EFFECTS)}, got {self.kind!r}")
        _check_range("strength", self.strength, 0.0, 1.0)
        _check_range("light_wrap", self.light_wrap, 0.0, 1.0)
        _check_range("harmonize", self.harmonize, 0.0, 1.0)
        _check_range("highlights", self.highlights, 0.0, 1.0)
        if self.bokeh_shape not in ("disc", "hex"):
            raise SettingsError(f"bokeh_shape must be 'disc' or 'hex', got {self.bokeh_shape!r}")
        if self.depth_norm not in ("raw", "unit", "imagenet"):
            raise SettingsError(
                f"depth_norm must be raw, unit or imagenet, got {self.depth_norm!r}"
            )
        if not 1 <= self.depth_every <= 100:
            raise SettingsError(f"depth_every must be in [1, 100], got {self.depth_every}")
        if self.keep_point is not None and self.keep_box is not None:
            raise SettingsError("give keep_point or keep_box, not both")
        if self.keep_point is not None and (len(self.keep_point) != 2 or min(self.keep_point) < 0):
            raise SettingsError(f"keep_point must be (x, y) >= 0, got {self.keep_point}")
        if self.keep_box is not None and (
            len(self.keep_box) != 4 or min(self.keep_box[:2]) < 0 or min(self.keep_box[2:]) <= 0
        ):
            raise SettingsError(
                f"keep_box must be (x, y, w, h) with x, y >= 0 and w, h > 0, got {self.keep_box}"
            )
        _check_range("keep_size", self.keep_size, 0.01, 1.0)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every option of one stream."""

    segment: SegmentSettings = field(default_factory=SegmentSettings)
    mask: MaskSettings = field(default_factory=MaskSettings)
    guards: GuardSettings = field(default_factory=GuardSettings)
    effect: EffectSettings = field(default_factory=EffectSettings)

    @property
    def tracks_over_time(self) -> bool:
        """True when the output depends on following something from the first frame on.

        A tracked keep region, or the main person chosen at the start, would
        be chosen afresh at every cut of a video split across processes, so
        such jobs run whole.
        """
        e = self.effect
        return e.keep_point is not None or e.keep_box is not None or self.guards.people == "main"


# ------------------------------------------------------------------ the builder
# Every front end (CLI flags, a batch manifest row, the web page, the live
# control API) names options the same way; this table says which section and
# field each name sets. Names are the CLI's (``--keep-box`` -> ``keep_box``).
OPTIONS: dict[str, tuple[str, str]] = {
    "model": ("segment", "model"),
    "threads": ("segment", "threads"),
    "device": ("segment", "device"),
    "face_guard": ("guards", "face"),
    "people": ("guards", "people"),
    "effect": ("effect", "kind"),
    "strength": ("effect", "strength"),
    "background": ("effect", "background"),
    "light_wrap": ("effect", "light_wrap"),
    "harmonize": ("effect", "harmonize"),
    "bokeh_shape": ("effect", "bokeh_shape"),
    "highlights": ("effect", "highlights"),
    "depth_model": ("effect", "depth_model"),
    "depth_norm": ("effect", "depth_norm"),
    "depth_every": ("effect", "depth_every"),
    "keep": ("effect", "keep_point"),
    "keep_box": ("effect", "keep_box"),
    "keep_size": ("effect", "keep_size"),
    "keep_track": ("effect", "keep_track"),
}
_BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True}
_BOOL_WORDS.update({"false": False, "no": False, "off": False, "0": False})
# options whose value only changes speed, never the frames (not in settings_digest)
SPEED_ONLY = ("threads", "device")


def _coerce(name: str, value: object, like: object) -> object:
    """``value`` (from a flag, a CSV cell, JSON) as the type of the field default ``like``."""
    if isinstance(like, bool):
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word not in _BOOL_WORDS:
            raise SettingsError(f"{name} must be true or false, got {value!r}")
        return _BOOL_WORDS[word]
    if isinstance(value, bool):  # JSON true is not a number
        raise SettingsError(f"{name} must be a number, got {value!r}")
    try:
        if isinstance(like, int):
            number = float(value)  # type: ignore[arg-type]
            if not number.is_integer():
                raise ValueError
            return int(number)
        if isinstance(like, float):
            return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as e:
        kind = "a whole number" if isinstance(like, int) else "a number"
        raise SettingsError(f"{name} must be {kind}, got {value!r}") from e
    return str(value)


def _numbers(name: str, value: object, n: int) -> tuple[float, ...]:
    """``"x,y"`` or ``[x, y]`` -> ``(x, y)`` (``n`` numbers)."""
    parts = value.replace(" ", "").split(",") if isinstance(value, str) else value
    try:
        vals = tuple(float(v) for v in parts)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        vals = ()
    if len(vals) != n:
        raise SettingsError(f"{name} expects {n} comma-separated numbers, got {value!r}")
    return vals


def build_settings(base: Settings | None = None, **options: object) -> Settings:
    """``base`` (default :class:`Settings`) with ``options`` set, validated: the one builder.

    ``options`` are named as in :data:`OPTIONS` (the CLI's flag names) and may
    come as strings (a CSV manifest, a form) or typed values; ``None`` leaves
    an option as it is, except ``background``, ``depth_model``, ``keep`` and
    ``keep_box``, whose ``None`` means "none". Setting ``keep`` clears
    ``keep_box`` and the other way round. Paths are kept as given
    (``blurcam.jobs.check_files`` checks that they exist).

    Raises:
        SettingsError: an unknown option, a value of the wrong type or out of range.
    """
    s = base or Settings()
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise SettingsError(
            f"unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(OPTIONS))})"
        )
    changes: dict[str, dict[str, object]] = {}
    nullable = {"background", "depth_model", "keep", "keep_box"}
    for name, value in options.items():
        section, fld = OPTIONS[name]
        if value is None and name not in nullable:
            continue
        if value is None:
            pass
        elif name in ("keep", "keep_box"):
            value = _numbers(f"--{name.replace('_', '-')}", value, 2 if name == "keep" else 4)
        elif name in ("background", "depth_model"):
            value = str(value)
        else:
            value = _coerce(name, value, getattr(getattr(s, section), fld))
        changes.setdefault(section, {})[fld] = value
    eff = changes.get("effect", {})
    if eff.get("keep_point") is not None and "keep_box" not in eff:
        eff["keep_box"] = None
    if eff.get("keep_box") is not None and "keep_point" not in eff:
        eff["keep_point"] = None
    return replace(s, **{k: replace(getattr(s, k), **v) for k, v in changes.items()})


def settings_digest(settings: Settings) -> str:
    """A short hash of everything that decides the frames (threads and device left out):
    a batch redoes an output when any mask, guard or effect setting changed."""
    d = asdict(settings)
    for name in SPEED_ONLY:
        section, fld = OPTIONS[name]
        d[section].pop(fld)
    blob = json.dumps(d, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
