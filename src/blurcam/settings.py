"""Options of every stage, as frozen dataclasses validated once.

CLI, web page, eval and tests all build one :class:`Settings`. For live changes
build a new one with :func:`dataclasses.replace` and hand it to the stream
between frames; nothing here is mutated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import SettingsError

__all__ = [
    "EFFECTS",
    "EffectSettings",
    "GuardSettings",
    "MaskSettings",
    "SegmentSettings",
    "Settings",
]

EFFECTS = ("blur", "bokeh", "replace", "depth", "none")


def _check_range(name: str, value: float, lo: float, hi: float, *, hi_open: bool = False) -> None:
    ok = lo <= value < hi if hi_open else lo <= value <= hi
    if not ok:
        bracket = ")" if hi_open else "]"
        raise SettingsError(f"{name} must be in [{lo}, {hi}{bracket}, got {value}")


@dataclass(frozen=True, slots=True)
class SegmentSettings:
    """Which model runs and how.

    ``model`` is ``auto`` (landscape model for frames wider than 4:3, general
    model otherwise), a registry name (``selfie``, ``landscape``, ...) or a path
    to a ``.tflite``/``.onnx`` file.
    """

    model: str = "auto"
    threads: int = 2
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

    ``smoothing`` is the weight of the previous mask where the new one is
    unsure (0 = off); confident pixels follow the model at once, so the mask
    does not lag. ``scene_cut`` is the mean absolute mask change above which
    history is dropped. ``refine`` turns on the image-guided filter;
    ``refine_width`` is the working width it runs at (wider = finer edges,
    slower). ``edge_low``/``edge_high`` map model probability to alpha
    (below low -> 0, above high -> 1).
    """

    smoothing: float = 0.6
    scene_cut: float = 0.3
    refine: bool = True
    refine_width: int = 480
    refine_radius: int = 4
    refine_eps: float = 0.01
    edge_low: float = 0.3
    edge_high: float = 0.7

    def __post_init__(self) -> None:
        _check_range("smoothing", self.smoothing, 0.0, 1.0, hi_open=True)
        _check_range("scene_cut", self.scene_cut, 0.0, 1.0)
        if not 32 <= self.refine_width <= 4096:
            raise SettingsError(f"refine_width must be in [32, 4096], got {self.refine_width}")
        if not 1 <= self.refine_radius <= 64:
            raise SettingsError(f"refine_radius must be in [1, 64], got {self.refine_radius}")
        if not 0.0 < self.refine_eps <= 1.0:
            raise SettingsError(f"refine_eps must be in (0, 1], got {self.refine_eps}")
        if not 0.0 <= self.edge_low < self.edge_high <= 1.0:
            raise SettingsError(
                f"need 0 <= edge_low < edge_high <= 1, got {self.edge_low}, {self.edge_high}"
            )


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """Protection against the known failures (face blurred, hands dropped)."""

    face: bool = False
    people: str = "all"  # all|main

    def __post_init__(self) -> None:
        if self.people not in ("all", "main"):
            raise SettingsError(f"people must be 'all' or 'main', got {self.people!r}")


@dataclass(frozen=True, slots=True)
class EffectSettings:
    """What happens to the background. ``strength`` 0 = off, 1 = heaviest."""

    kind: str = "blur"
    strength: float = 0.7

    def __post_init__(self) -> None:
        if self.kind not in EFFECTS:
            raise SettingsError(f"effect must be one of {', '.join(EFFECTS)}, got {self.kind!r}")
        _check_range("strength", self.strength, 0.0, 1.0)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every option of one stream."""

    segment: SegmentSettings = field(default_factory=SegmentSettings)
    mask: MaskSettings = field(default_factory=MaskSettings)
    guards: GuardSettings = field(default_factory=GuardSettings)
    effect: EffectSettings = field(default_factory=EffectSettings)
