"""The one exception tree of blurcam.

Every error a user can cause (a bad file, a bad option, a missing device) is a
:class:`BlurcamError`; the CLI prints it as one line and exits with its
``exit_code``. Anything else is a bug and keeps its traceback.

::

    BlurcamError
    ├── SettingsError (also ValueError)   bad option value            exit 2
    ├── ModelError                         missing/corrupt/wrong model  exit 3
    ├── SourceError                        input cannot be read         exit 4
    │   └── DeviceUnavailableError         camera gone / no v4l2 device exit 6
    └── SinkError                          output cannot be written     exit 5

    InputWarning (UserWarning)              an input blurcam had to guess about
"""

from __future__ import annotations

__all__ = [
    "BlurcamError",
    "DeviceUnavailableError",
    "InputWarning",
    "ModelError",
    "SettingsError",
    "SinkError",
    "SourceError",
]


class BlurcamError(Exception):
    """Root of every error a user can cause; ``exit_code`` is what the CLI returns."""

    exit_code: int = 1


class SettingsError(BlurcamError, ValueError):
    """An option is out of range or inconsistent."""

    exit_code = 2


class ModelError(BlurcamError):
    """A model file is missing, corrupt, or has an unexpected shape."""

    exit_code = 3


class SourceError(BlurcamError):
    """An input (image, video, camera, folder) cannot be read."""

    exit_code = 4


class SinkError(BlurcamError):
    """An output (file, virtual camera) cannot be written."""

    exit_code = 5


class DeviceUnavailableError(SourceError):
    """A camera or virtual-camera device is absent or busy."""

    exit_code = 6


class InputWarning(UserWarning):
    """An input that was read by a guess (a 16-bit frame holding 8-bit values...).

    A warning, not an error: the guess is the likely intent, and a stream
    must go on; shown once per place in the caller's code, as warnings are.
    """
