"""Find evaluation sets under a folder laid out like ``../shared/data``.

Two kinds of set, found anywhere below the root:

* an **image set**: a folder with ``images/`` and ``masks/`` (independent
  photos; ``NNNNN.jpg`` <-> ``NNNNN.png``);
* a **video set**: a folder whose sub-folders ``<seq>/`` each hold
  ``frames/`` and ``masks/`` (consecutive frames of one sequence).

Images and masks are paired by file stem. Frames without a mask stay in a
sequence (the predictor must see every frame for its temporal state) but are
not scored. Nothing is loaded here: a set is a list of paths.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from ..errors import SourceError

__all__ = ["IMAGE_EXTS", "Dataset", "Item", "Sequence", "discover", "read_frame", "read_mask"]

log = logging.getLogger(__name__)

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
_SKIP_DIRS = {"__pycache__", ".git"}


@dataclass(frozen=True, slots=True)
class Item:
    """One frame and its ground-truth mask (``None``: not annotated, not scored)."""

    frame: Path
    mask: Path | None


@dataclass(frozen=True, slots=True)
class Sequence:
    """Frames a predictor sees in order with its temporal state carried (one photo = one)."""

    name: str
    items: tuple[Item, ...]

    @property
    def scored(self) -> int:
        return sum(1 for i in self.items if i.mask is not None)


@dataclass(frozen=True, slots=True)
class Dataset:
    """A named set: ``kind`` is ``images`` (each photo alone) or ``video`` (sequences)."""

    name: str
    kind: str
    root: Path
    sequences: tuple[Sequence, ...] = field(default_factory=tuple)

    @property
    def frames(self) -> int:
        return sum(len(s.items) for s in self.sequences)

    def limited(self, limit: int | None) -> Dataset:
        """The first ``limit`` photos of an image set, or first ``limit`` frames per sequence."""
        if limit is None:
            return self
        if self.kind == "images":
            seqs = self.sequences[:limit]
        else:
            seqs = tuple(Sequence(s.name, s.items[:limit]) for s in self.sequences)
        return Dataset(self.name, self.kind, self.root, seqs)


def _images(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."):
            out.setdefault(p.stem, p)
    return out


def _pairs(frames_dir: Path, masks_dir: Path, *, keep_unmasked: bool) -> list[Item]:
    frames, masks = _images(frames_dir), _images(masks_dir)
    orphans = sorted(set(masks) - set(frames))
    if orphans:
        log.warning("%s: %d masks without a frame (e.g. %s)", masks_dir, len(orphans), orphans[0])
    items = [Item(p, masks.get(stem)) for stem, p in sorted(frames.items())]
    return items if keep_unmasked else [i for i in items if i.mask is not None]


def _is_seq(d: Path) -> bool:
    return (d / "frames").is_dir() and (d / "masks").is_dir()


def _is_image_set(d: Path) -> bool:
    return (d / "images").is_dir() and (d / "masks").is_dir()


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        yield Path(dirpath)


def _name(d: Path, root: Path) -> str:
    rel = d.relative_to(root).as_posix()
    return root.resolve().name if rel == "." else rel


def discover(root: Path | str) -> list[Dataset]:
    """Every image set and video set under ``root``, sorted by name.

    ``root`` may itself be one set or one sequence folder.

    Raises:
        SourceError: ``root`` is missing or holds no set.
    """
    root = Path(root)
    if root.is_file():
        raise SourceError(
            f"{root} is a file: give the folder that holds images/+masks/ sets or "
            "<sequence>/frames/+<sequence>/masks/ sequences"
        )
    if not root.is_dir():
        raise SourceError(f"dataset folder not found: {root}")
    image_sets: list[Dataset] = []
    video: dict[Path, list[Sequence]] = {}
    for d in _walk(root):
        if _is_image_set(d):
            items = _pairs(d / "images", d / "masks", keep_unmasked=False)
            if items:
                seqs = tuple(Sequence(i.frame.stem, (i,)) for i in items)
                image_sets.append(Dataset(_name(d, root), "images", d, seqs))
        if _is_seq(d):
            items = _pairs(d / "frames", d / "masks", keep_unmasked=True)
            if any(i.mask is not None for i in items):
                parent = d.parent if d != root else d
                video.setdefault(parent, []).append(Sequence(d.name, tuple(items)))
    sets = image_sets + [
        Dataset(_name(parent, root), "video", parent, tuple(sorted(seqs, key=lambda s: s.name)))
        for parent, seqs in video.items()
    ]
    if not sets:
        raise SourceError(
            f"no evaluation set in {root}: expected <set>/images/ + <set>/masks/ "
            "or <set>/<sequence>/frames/ + <set>/<sequence>/masks/"
        )
    return sorted(sets, key=lambda s: s.name)


def read_frame(path: Path) -> NDArray[np.uint8]:
    """uint8 HxWx3 BGR (raises ``SourceError`` when unreadable)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise SourceError(f"cannot read image {path}")
    return img.astype(np.uint8, copy=False)


def read_mask(path: Path) -> NDArray[np.uint8]:
    """uint8 HxW, 255 = person (a colour or 16-bit mask is reduced to one 8-bit channel)."""
    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise SourceError(f"cannot read mask {path}")
    return m.astype(np.uint8, copy=False)
