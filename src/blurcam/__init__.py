"""blurcam: real-time background blur and replacement for people in video, on a CPU.

>>> from blurcam import BackgroundBlur
>>> bb = BackgroundBlur(strength=0.7)          # doctest: +SKIP
>>> out = bb.process(frame)                     # doctest: +SKIP
"""

from __future__ import annotations

from .errors import (
    BlurcamError,
    DeviceUnavailableError,
    InputWarning,
    ModelError,
    SettingsError,
    SinkError,
    SourceError,
)
from .pipeline import BackgroundBlur, Stream
from .segment import Segmenter, open_segmenter
from .settings import EffectSettings, GuardSettings, MaskSettings, SegmentSettings, Settings

__version__ = "0.1.0"

__all__ = [
    "BackgroundBlur",
    "BlurcamError",
    "DeviceUnavailableError",
    "EffectSettings",
    "GuardSettings",
    "InputWarning",
    "MaskSettings",
    "ModelError",
    "SegmentSettings",
    "Segmenter",
    "Settings",
    "SettingsError",
    "SinkError",
    "SourceError",
    "Stream",
    "__version__",
    "open_segmenter",
]
