"""Plan a batch: where each output goes, and which outputs are already complete.

The output folder mirrors the input layout. Beside the outputs, a hidden
``.blurcam/`` tree holds one small JSON *sidecar* per finished output that
records the input's size and mtime, a hash of the options and the output's
size. An output counts as complete only when its sidecar matches all four, so
a second run skips it (idempotent), a changed input or option redoes it, and
a file cut short by a crash or Ctrl-C (no sidecar: the sidecar is written
after the output is renamed into place) is done again (resumable). One file
per output means workers never share a state file, on one machine or many.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import SettingsError, SinkError
from ..io import VIDEO_EXTS, atomic_output, remove_leftovers
from ..io.video import QUALITY
from ..settings import Settings, build_settings, settings_digest
from .discover import Item

__all__ = [
    "STATE_DIR",
    "Job",
    "is_complete",
    "make_plan",
    "read_sidecar",
    "sidecar_path",
    "write_sidecar",
]

STATE_DIR = ".blurcam"
_SIDECAR_VERSION = 2  # bump when the output of the same options changes meaning


@dataclass(frozen=True, slots=True)
class Job:
    """One input -> one output, with everything a worker needs (picklable)."""

    src: Path
    dst: Path
    sidecar: Path
    settings: Settings  # everything the stream runs with (threads set per worker)
    quality: str  # encoder preset (io.video.QUALITY)
    kind: str  # image|video
    size: int  # input bytes at planning time
    mtime_ns: int
    done: bool = False  # a complete output already exists

    @property
    def digest(self) -> str:
        """What decides the output: every setting but threads and device, and the quality."""
        return f"{settings_digest(self.settings)}-{self.quality}"


def sidecar_path(out_dir: Path, rel: Path) -> Path:
    return out_dir / STATE_DIR / "done" / rel.parent / f"{rel.name}.json"


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """The sidecar's record, or None when missing or unreadable (= not complete)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_sidecar(job: Job, **facts: Any) -> None:
    """Record that ``job.dst`` is complete; call only after the output is in place."""
    try:
        out_size = job.dst.stat().st_size
    except OSError as e:
        raise SinkError(f"output {job.dst} vanished before it was recorded: {e}") from e
    record = {
        "version": _SIDECAR_VERSION,
        "input": str(job.src),
        "input_size": job.size,
        "input_mtime_ns": job.mtime_ns,
        "options": job.digest,
        "settings": asdict(job.settings),
        "quality": job.quality,
        "output": str(job.dst),
        "output_size": out_size,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **facts,
    }
    job.sidecar.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(job.sidecar) as tmp:
        tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")


def is_complete(job: Job) -> bool:
    """True when ``job.dst`` exists and its sidecar matches the input and options."""
    rec = read_sidecar(job.sidecar)
    if rec is None:
        return False
    try:
        out_size = job.dst.stat().st_size
    except OSError:
        return False
    return (
        rec.get("version") == _SIDECAR_VERSION
        and rec.get("input_size") == job.size
        and rec.get("input_mtime_ns") == job.mtime_ns
        and rec.get("options") == job.digest
        and rec.get("output_size") == out_size
    )


def _options(defaults: Settings, quality: str, row: dict[str, Any]) -> tuple[Settings, str]:
    """A row's options on top of the batch's: validated settings and quality; file paths
    made absolute (Ray workers do not share the driver's working directory)."""
    row = dict(row)
    q = str(row.pop("quality", quality))
    if q not in QUALITY:
        raise SettingsError(f"quality must be one of {', '.join(QUALITY)}, got {q!r}")
    s = build_settings(defaults, **row)
    e = s.effect
    absolute = {
        k: str(Path(v).expanduser().absolute())
        for k, v in (("background", e.background), ("depth_model", e.depth_model))
        if v is not None
    }
    return build_settings(s, **absolute), q


def make_plan(
    items: list[Item], out_dir: Path, defaults: Settings, quality: str = "fast"
) -> list[Job]:
    """Items -> jobs with output paths in ``out_dir``; complete outputs are marked ``done``.

    ``defaults`` and ``quality`` are the batch's; a manifest row's options
    (``Item.options``, named as :data:`blurcam.settings.OPTIONS`) go on top.

    Output folders are created here (in the driver), so workers only write
    files, and what a killed run left in them (temporaries whose owner is
    gone, :func:`~blurcam.io.remove_leftovers`) is removed, once per folder.
    An input that has vanished or that maps to the same output as another is
    an error before anything runs.

    Raises:
        SettingsError: two inputs map to one output, or a per-file option is invalid.
        SinkError: the output folder cannot be created.
    """
    # absolute paths: Ray workers do not share the driver's working directory
    out_dir = out_dir.expanduser().absolute()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SinkError(f"cannot create output folder {out_dir}: {e.strerror or e}") from e
    jobs: list[Job] = []
    seen: dict[Path, Path] = {}
    folders = {out_dir}  # where this run writes: outputs, sidecars, the report
    for it in items:
        src = it.src.expanduser().absolute()
        dst = out_dir / it.rel
        key = dst.resolve()
        if key in seen:
            raise SettingsError(f"{src} and {seen[key]} would both be written to {dst}")
        seen[key] = src
        if key == src.resolve():
            raise SettingsError(f"output {dst} is the input {src}: pick another output folder")
        try:
            settings, q = _options(defaults, quality, it.options)
        except SettingsError as e:
            raise SettingsError(f"{src}: {e}") from e
        kind = it.kind
        if kind == "video" and dst.suffix.lower() not in VIDEO_EXTS:
            raise SettingsError(f"{src} is a video but its output {dst} is not")
        try:
            st = os.stat(src)
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:
            size, mtime = -1, -1  # the worker reports the missing input
        job = Job(
            src=src,
            dst=dst,
            sidecar=sidecar_path(out_dir, it.rel),
            settings=settings,
            quality=q,
            kind=kind,
            size=size,
            mtime_ns=mtime,
        )
        done = size >= 0 and is_complete(job)
        if not done:
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise SinkError(f"cannot create {dst.parent}: {e.strerror or e}") from e
            folders |= {dst.parent, job.sidecar.parent}
        jobs.append(replace(job, done=done))
    for folder in folders:
        remove_leftovers(folder)
    return jobs
