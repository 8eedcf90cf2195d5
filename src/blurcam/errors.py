"""The one exception tree of blurcam.

Every error a user can cause (a bad file, a bad option, a missing device) is a
:class:`BlurcamError`; the CLI prints it as one line and exits with its
``exit_code``. Anything else is a bug and keeps its traceback.

::

    BlurcamError
    ├── SettingsError (also ValueError)   bad option value            exit 2
    ├── ModelError                         missing/corrupt/wrong model  exit 3
    ├── SourceError                        input cannot be read         exit 4
    │   └── DeviceUnavailableError         no camera, v4l2 device, Ray  exit 6
    ├── SinkError                          output cannot be written     exit 5
    └── WorkerStopped                      a worker process was stopped exit 1

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
    "WorkerStopped",
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
    """A device or service blurcam needs is absent or busy: a camera, a virtual camera,
    a Ray cluster."""

    exit_code = 6


class WorkerStopped(BlurcamError):
    """A worker process was stopped by a signal (SIGTERM, SIGINT) while its driver ran on.

    Raised in the driver in place of the worker's ``KeyboardInterrupt``, which
    the driver would otherwise take for its own Ctrl-C; a batch retries the
    file, as for a worker that died.
    """


class InputWarning(UserWarning):
    """An input that was read by a guess (a 16-bit frame holding 8-bit values...).

    A warning, not an error: the guess is the likely intent, and a stream
    must go on; shown once per place in the caller's code, as warnings are.
    """
