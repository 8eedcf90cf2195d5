"""Write outputs so that a crash, Ctrl-C or full disk never leaves a half file behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from ..errors import SinkError, SourceError

__all__ = ["KeepOrDiscard", "atomic_output", "check_input_file", "check_output_path"]

_T = TypeVar("_T", bound="KeepOrDiscard")


class KeepOrDiscard:
    """An output that ``close()`` keeps and ``abort()`` discards; a context manager.

    Leaving the ``with`` block normally closes, an exception (Ctrl-C
    included) aborts: a failed job never keeps a half output. Video writers
    and live sinks share this shape; subclasses override both methods.
    """

    def close(self) -> None:
        """Finish and keep the output."""

    def abort(self) -> None:
        """Stop and keep nothing half-written (by default: what close does)."""
        self.close()

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def check_input_file(path: Path) -> None:
    """Refuse, before opening it, an input that is missing, not a file, or empty.

    Raises:
        SourceError: with the reason, so every reader words it the same way.
    """
    if not path.exists():
        raise SourceError(f"input not found: {path}")
    if not path.is_file():
        raise SourceError(f"input is not a file: {path}")
    if path.stat().st_size == 0:
        raise SourceError(f"input is empty (0 bytes): {path}")


def check_output_path(output: Path, *, inputs: tuple[Path, ...] = (), force: bool = False) -> None:
    """Refuse outputs that would lose data or cannot be written, before any work starts.

    Raises:
        SinkError: output is an input, exists without ``force``, or its folder is
            missing or read-only.
    """
    out_r = output.expanduser().resolve()
    for i in inputs:
        if i.exists() and out_r == i.expanduser().resolve():
            raise SinkError(f"output {output} is the input: refusing to overwrite it")
    if out_r.is_dir():
        raise SinkError(f"output {output} is a folder; give a file name")
    if out_r.exists() and not force:
        raise SinkError(f"output {output} exists; pass --force to overwrite it")
    parent = out_r.parent
    if not parent.is_dir():
        raise SinkError(f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SinkError(f"output folder {parent} is not writable")


def _umask() -> int:
    """The process umask, read without changing it where /proc allows."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _finish(tmp: Path, output: Path) -> None:
    """fsync the finished temporary and give it the mode the output should have."""
    try:
        mode = output.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_umask()
    os.chmod(tmp, mode)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(output: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``output``; rename it over ``output`` only on success.

    The temporary keeps the output's suffix so that encoders pick the right
    container. On any exception (KeyboardInterrupt included) it is removed.
    Before the rename the data is flushed to disk (a power cut cannot leave an
    empty file under the final name) and the mode is set as a plain ``open``
    would (``mkstemp`` makes 0600 files), or kept from the file it replaces.

    Raises:
        SinkError: the temporary cannot be created, or writing/renaming failed.
    """
    output = output.expanduser()
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{output.stem}.", suffix=f".part{output.suffix}", dir=output.parent or "."
        )
    except OSError as e:
        raise SinkError(f"cannot write in {output.parent}: {e.strerror}") from e
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _finish(tmp_path, output)
        os.replace(tmp_path, output)
    except OSError as e:
        tmp_path.unlink(missing_ok=True)
        raise SinkError(f"cannot write {output}: {e.strerror or e}") from e
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
