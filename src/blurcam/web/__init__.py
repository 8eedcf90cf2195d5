"""WebRTC: a blurring video track for aiortc apps, and the ``blurcam serve`` page.

Needs the ``web`` extra (``pip install 'blurcam[web]'``: aiortc, aiohttp).

>>> from blurcam.web import BlurTrack            # doctest: +SKIP
>>> pc.addTrack(BlurTrack(remote_video, strength=0.8))  # doctest: +SKIP
"""

from __future__ import annotations

try:
    import aiohttp  # noqa: F401
    import aiortc  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the install
    from ..errors import SettingsError

    raise SettingsError("the web features need the 'web' extra: pip install 'blurcam[web]'") from e

from .server import create_app, run
from .track import BlurTrack, TrackStats

__all__ = ["BlurTrack", "TrackStats", "create_app", "run"]
