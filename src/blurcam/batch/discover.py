"""Find the work of a batch: a folder scanned recursively, or a CSV/JSON manifest.

A folder gives every image and video below it, in a stable (sorted) order,
with no per-file options. A manifest lists files one per row/object and may
give per-file options, named as ``blurcam blur``'s flags are
(:data:`blurcam.settings.OPTIONS`: ``effect``, ``strength``, ``model``,
``background``, ``keep_box``, ``face_guard``, ...; plus ``quality``) and an
``output`` path relative to the output folder; relative input, background,
depth-model and model paths are read relative to the manifest's own folder,
so a manifest can travel with its archive.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SettingsError, SourceError
from ..io import IMAGE_EXTS, VIDEO_EXTS
from ..settings import OPTIONS

__all__ = ["MANIFEST_EXTS", "OPTION_KEYS", "Item", "discover", "read_manifest", "scan_folder"]

log = logging.getLogger(__name__)

MANIFEST_EXTS = (".csv", ".json")
# per-file options a manifest may set; everything else is an error, so typos are not ignored
OPTION_KEYS = (*OPTIONS, "quality")
_FILE_KEYS = ("background", "depth_model")  # paths read relative to the manifest
_PATH_KEYS = ("path", "input", "src")


@dataclass(frozen=True, slots=True)
class Item:
    """One input file: where it is, where its output goes (relative), and its own options.

    ``rel`` is the output path relative to the output folder (the input's
    place in the scanned tree, so the layout is mirrored). ``options`` holds
    only what this file overrides; the batch defaults fill in the rest.
    """

    src: Path
    rel: Path
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "image" if self.src.suffix.lower() in IMAGE_EXTS else "video"


def _is_media(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS + VIDEO_EXTS


def scan_folder(root: Path, *, exclude: Path | None = None) -> list[Item]:
    """Every image and video under ``root`` (recursively, sorted), skipping hidden entries.

    Hidden files and folders are skipped because that is where temporary
    ``.part`` outputs and the batch's own ``.blurcam`` state live; ``exclude``
    (the output folder, when it sits inside the input) is skipped too, so a
    second run never takes its own outputs as inputs.
    """
    root = root.expanduser()
    if not root.is_dir():
        raise SourceError(f"input folder not found: {root}")
    excl = exclude.expanduser().resolve() if exclude is not None else None
    items: list[Item] = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if excl is not None and (p.resolve() == excl or excl in p.resolve().parents):
            continue
        if p.is_file() and _is_media(p):
            items.append(Item(src=p, rel=rel))
    return items


def _clean_options(raw: dict[str, Any], where: str) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _PATH_KEYS or key == "output":
            continue
        if key not in OPTION_KEYS:
            raise SettingsError(
                f"{where}: unknown option {key!r} (known: {', '.join((*OPTION_KEYS, 'output'))})"
            )
        if value is None or value == "":
            continue  # empty CSV cell = batch default
        opts[key] = value  # typed and checked by settings.build_settings when planned
    return opts


def _item_from_row(row: dict[str, Any], base: Path, where: str) -> Item:
    raw_path = next((row[k] for k in _PATH_KEYS if row.get(k)), None)
    if not raw_path:
        raise SettingsError(f"{where}: no 'path' given")
    src = Path(str(raw_path)).expanduser()
    if not src.is_absolute():
        src = base / src
    out = row.get("output")
    if out:
        rel = Path(str(out))
        if rel.is_absolute() or ".." in rel.parts:
            raise SettingsError(f"{where}: output must be relative to the output folder: {out}")
    else:
        try:
            rel = src.resolve().relative_to(base.resolve())
        except ValueError:
            rel = Path(src.name)  # outside the manifest's folder: flat in the output folder
    opts = _clean_options(row, where)
    for key in _FILE_KEYS:
        if key in opts and not Path(str(opts[key])).expanduser().is_absolute():
            opts[key] = str(base / str(opts[key]))  # relative to the manifest too
    model = str(opts.get("model", ""))
    name, eq, path = model.partition("=")
    if Path(path if eq else model).suffix.lower() in (".tflite", ".onnx"):
        p = Path(path if eq else model).expanduser()
        if not p.is_absolute():
            opts["model"] = f"{name}={base / p}" if eq else str(base / p)
    return Item(src=src, rel=rel, options=opts)


def read_manifest(path: Path) -> list[Item]:
    """Items of a CSV (header row, a ``path`` column) or JSON manifest.

    JSON is a list of objects, or ``{"files": [...]}``; a bare string in the
    list is a path with no options.

    Raises:
        SourceError: the manifest cannot be read or parsed.
        SettingsError: a row has no path, an unknown option or a bad value.
    """
    path = path.expanduser()
    base = path.parent
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise SourceError(f"cannot read manifest {path}: {e.strerror or e}") from e
    rows: list[tuple[dict[str, Any], str]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or not set(reader.fieldnames) & set(_PATH_KEYS):
            raise SourceError(f"{path}: a CSV manifest needs a header row with a 'path' column")
        for i, row in enumerate(reader, start=2):
            clean = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            rows.append((clean, f"{path.name} line {i}"))
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SourceError(f"{path}: not valid JSON: {e}") from e
        if isinstance(data, dict):
            data = data.get("files")
        if not isinstance(data, list):
            raise SourceError(f'{path}: expected a list of files or {{"files": [...]}}')
        for i, entry in enumerate(data):
            where = f"{path.name} entry {i}"
            if isinstance(entry, str):
                entry = {"path": entry}
            if not isinstance(entry, dict):
                raise SettingsError(f"{where}: expected an object or a path string")
            rows.append((entry, where))
    return [_item_from_row(row, base, where) for row, where in rows]


def discover(source: Path, *, exclude: Path | None = None) -> list[Item]:
    """A folder (scanned) or a manifest file (read) -> the items of the batch."""
    source = source.expanduser()
    if source.is_dir():
        items = scan_folder(source, exclude=exclude)
    elif source.is_file() and source.suffix.lower() in MANIFEST_EXTS:
        items = read_manifest(source)
    elif source.exists():
        raise SourceError(
            f"{source}: give a folder or a manifest ({', '.join(MANIFEST_EXTS)}); "
            "for one file use 'blurcam blur'"
        )
    else:
        raise SourceError(f"input not found: {source}")
    log.info("found %d file(s) in %s", len(items), source)
    return items
