"""Live video: camera (or a file played in real time) -> blur -> virtual camera/file/preview.

``sources`` yields timestamped frames, ``sinks`` takes them, ``runner`` runs
capture, segmentation and composite in three threads with drop-stale slots and
adaptive quality, ``control`` is the local HTTP control API and preview page.
"""

from __future__ import annotations

from ..adaptive import LEVELS, AdaptiveQuality, Level
from .runner import LatestSlot, LiveRunner, LiveStats
from .sinks import FileSink, NullSink, PreviewSink, VirtualCamSink
from .sources import CameraSource, FileSource, Frame, open_source

__all__ = [
    "LEVELS",
    "AdaptiveQuality",
    "CameraSource",
    "FileSink",
    "FileSource",
    "Frame",
    "LatestSlot",
    "Level",
    "LiveRunner",
    "LiveStats",
    "NullSink",
    "PreviewSink",
    "VirtualCamSink",
    "open_source",
]
