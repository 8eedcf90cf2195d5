"""Write outputs so that a crash, Ctrl-C or full disk never leaves a half file behind.

An output is written to a hidden temporary beside it and renamed into place
when complete (:func:`atomic_output`). A run that is killed outright
(SIGKILL, a power cut, out of memory) cannot remove its temporary, so every
temporary's name says who owns it, ``PID@HOST``: ``.NAME.PID@HOST.XXXX.part.EXT``
for a file, ``.blurcam-parts-PID@HOST.XXXX/`` for the parts of a split video.
The next run that writes into that folder removes those whose owner is gone
(:func:`remove_leftovers`) and leaves a concurrent run's live ones alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from ..errors import SinkError, SourceError

__all__ = [
    "PARTS_PREFIX",
    "STALE_AFTER",
    "KeepOrDiscard",
    "atomic_output",
    "check_input_file",
    "check_output_path",
    "owner_tag",
    "remove_leftovers",
]

log = logging.getLogger(__name__)

PARTS_PREFIX = ".blurcam-parts-"  # + owner tag + "." + random: split parts of one video
# A temporary not written to for this long is left over whoever owns it: its owner is
# another machine (shared storage, a Ray node) or a reused PID. Live writers write
# every frame; a day covers the stitch of the longest file.
STALE_AFTER = 24 * 3600.0

_OWNER = r"(?P<pid>\d+)@(?P<host>[\w-]*)"
_TEMPORARY = re.compile(rf"^\..*\.{_OWNER}\.\w+\.part(\.[^.]*)?$")
_PARTS = re.compile(rf"^{re.escape(PARTS_PREFIX)}{_OWNER}\.\w+$")

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


def _host() -> str:
    """This machine's name as it goes into a temporary's name (letters, digits, - and _)."""
    name = socket.gethostname().split(".")[0]
    return re.sub(r"[^A-Za-z0-9_-]", "", name)[:32] or "host"


def owner_tag() -> str:
    """``PID@HOST`` of this process: what the next run reads to tell a killed run's
    temporaries from a live run's."""
    return f"{os.getpid()}@{_host()}"


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (always True where that cannot be
    asked safely: on Windows ``os.kill(pid, 0)`` would stop it).

    A zombie does not run: a killed worker stays one where nothing reaps
    orphans (a container without an init process).
    """
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it runs, as another user
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (macOS): it exists, so it runs
        return True
    return stat[stat.rindex(")") + 2 :][:1] != "Z"


def _last_write(path: Path) -> float:
    """Newest mtime of ``path`` and, for a folder, of what it holds."""
    times = [path.stat().st_mtime]
    if path.is_dir():
        times += [p.stat().st_mtime for p in path.iterdir()]
    return max(times)


def _left_over(path: Path, pid: int, host: str) -> bool:
    if host == _host() and not _running(pid):
        return True
    return time.time() - _last_write(path) > STALE_AFTER


def remove_leftovers(folder: Path) -> list[Path]:
    """Remove what killed runs left in ``folder``; returns what was removed.

    Only blurcam's own temporaries (named by :func:`atomic_output` and the
    split path, with their owner's ``PID@HOST``) are looked at, and one is
    removed when its owner is gone: that process no longer runs on this
    machine, or nothing was written to it for :data:`STALE_AFTER` seconds (an
    owner on another machine, or a PID reused since). A concurrent run's
    live temporaries are kept. A missing folder, and a file another run
    removes first, are fine.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMPORARY.match(entry.name) or _PARTS.match(entry.name)
        if m is None:
            continue
        path = Path(entry.path)
        try:
            if not _left_over(path, int(m["pid"]), m["host"]):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:  # gone already, or not ours to remove
            continue
        log.info("removed %s, left by a run that was killed", path)
        removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_output(output: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``output``; rename it over ``output`` only on success.

    The temporary (``.NAME.PID@HOST.XXXX.part.EXT``) keeps the output's suffix
    so that encoders pick the right container, and names its owner for
    :func:`remove_leftovers`. On any exception (KeyboardInterrupt included) it is removed.
    Before the rename the data is flushed to disk (a power cut cannot leave an
    empty file under the final name) and the mode is set as a plain ``open``
    would (``mkstemp`` makes 0600 files), or kept from the file it replaces.

    Raises:
        SinkError: the temporary cannot be created, or writing/renaming failed.
    """
    output = output.expanduser()
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{output.stem}.{owner_tag()}.",
            suffix=f".part{output.suffix}",
            dir=output.parent or ".",
        )
    except OSError as e:
        raise SinkError(f"cannot write in {output.parent}: {e.strerror}") from e
    tmp_path = Path(tmp)
    try:
        os.close(fd)
        yield tmp_path
        _finish(tmp_path, output)
        os.replace(tmp_path, output)
    except OSError as e:
        tmp_path.unlink(missing_ok=True)
        raise SinkError(f"cannot write {output}: {e.strerror or e}") from e
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
