"""Still images and image folders."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from ..errors import SinkError, SourceError
from ..frame import as_bgr
from .atomic import atomic_output, check_input_file

__all__ = ["IMAGE_EXTS", "VIDEO_EXTS", "is_image_path", "list_images", "read_image", "write_image"]

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def read_image(path: Path) -> NDArray[np.uint8]:
    """Read an image file as uint8 HxWx3 BGR, upright.

    Grayscale becomes three equal channels, 16-bit keeps its top 8 bits, an
    alpha channel is dropped (the colour is kept as stored) and the EXIF
    orientation of phone photos is applied, so the model sees people upright.

    Raises:
        SourceError: missing, empty, or not a decodable image.
    """
    check_input_file(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror or e}") from e
    # ANYDEPTH|ANYCOLOR keeps 16-bit and grayscale and, unlike UNCHANGED,
    # applies the EXIF orientation.
    try:
        img = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    except cv2.error as e:
        raise SourceError(f"cannot decode {path} as an image: {e}") from e
    if img is None or img.size == 0:
        raise SourceError(f"cannot decode {path} as an image (corrupt or not an image?)")
    return as_bgr(img)


def write_image(path: Path, image: NDArray[np.uint8]) -> None:
    """Encode by the file extension and write atomically (temp file + rename).

    Raises:
        SinkError: unknown extension or the write failed.
    """
    ext = path.suffix.lower()
    if ext not in IMAGE_EXTS:
        raise SinkError(f"unknown image extension {ext!r} for {path}")
    try:
        ok, buf = cv2.imencode(ext, image)
    except cv2.error as e:
        raise SinkError(f"cannot encode {path} as {ext}: {e}") from e
    if not ok:
        raise SinkError(f"cannot encode {path} as {ext}")
    with atomic_output(path) as tmp:
        buf.tofile(tmp)


def list_images(folder: Path) -> list[Path]:
    """Image files in ``folder`` sorted by name (the order of a sequence)."""
    if not folder.is_dir():
        raise SourceError(f"not a folder: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_path(p))
    if not files:
        raise SourceError(f"no images ({', '.join(IMAGE_EXTS)}) in {folder}")
    return files
