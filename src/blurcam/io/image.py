"""Still images and image folders.

A file is checked before it is decoded: its pixel count is read from the
header (:func:`image_header`) and refused above :func:`max_pixels`, so a
small file that would inflate to gigabytes (a decompression bomb: a 2.6 MB
PNG declaring 30000x30000 took 6.4 GB and 30 s) costs nothing.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from ..errors import SettingsError, SinkError, SourceError
from ..frame import as_bgr
from .atomic import atomic_output, check_input_file

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTS",
    "VIDEO_EXTS",
    "check_pixels",
    "image_header",
    "is_image_path",
    "list_images",
    "max_pixels",
    "read_image",
    "write_image",
]

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")


# 100 megapixels: every camera and 8K video (33 MP) fits; a 30000x30000 bomb does not
DEFAULT_MAX_PIXELS = 100_000_000


def max_pixels() -> int:
    """The largest image or video frame blurcam decodes, in pixels.

    ``$BLURCAM_MAX_PIXELS`` when set (a positive integer), else
    :data:`DEFAULT_MAX_PIXELS`.

    Raises:
        SettingsError: ``$BLURCAM_MAX_PIXELS`` is not a positive integer.
    """
    raw = os.environ.get("BLURCAM_MAX_PIXELS")
    if raw is None:
        return DEFAULT_MAX_PIXELS
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n <= 0:
        raise SettingsError(f"BLURCAM_MAX_PIXELS must be a positive integer, got {raw!r}")
    return n


def check_pixels(path: Path, width: int, height: int, limit: int | None = None) -> None:
    """Refuse a picture of ``width`` x ``height`` above the pixel limit, before decoding it.

    Raises:
        SourceError: too many pixels (the message says how to raise the limit).
    """
    limit = max_pixels() if limit is None else limit
    if width * height > limit:
        raise SourceError(
            f"{path}: {width}x{height} is {width * height / 1e6:.0f} megapixels, above the "
            f"limit of {limit / 1e6:g} (set BLURCAM_MAX_PIXELS to allow more)"
        )


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int]:
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise SourceError("corrupt JPEG: bad marker")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if length < 2:
            raise SourceError("corrupt JPEG: bad segment length")
        if marker in _SOF:
            if i + 9 > n:
                break
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + length
    raise SourceError("corrupt JPEG: no frame header")


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        b = data[21:25]
        w = 1 + (((b[1] & 0x3F) << 8) | b[0])
        h = 1 + (((b[3] & 0x0F) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
        return w, h
    if chunk == b"VP8X" and len(data) >= 30:
        w = 1 + int.from_bytes(data[24:27], "little")
        h = 1 + int.from_bytes(data[27:30], "little")
        return w, h
    raise SourceError("corrupt WebP: unknown chunk")


def _tiff_size(data: bytes) -> tuple[int, int]:
    """ImageWidth and ImageLength of the first IFD of a TIFF."""
    e = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(e + "I", data[4:8])
    if ifd + 2 > len(data):
        raise SourceError("corrupt TIFF: no image directory")
    (n,) = struct.unpack(e + "H", data[ifd : ifd + 2])
    size: dict[int, int] = {}
    for k in range(n):
        entry = data[ifd + 2 + 12 * k : ifd + 14 + 12 * k]
        if len(entry) < 12:
            break
        tag, kind = struct.unpack(e + "HH", entry[:4])
        if tag in (256, 257):
            fmt = e + ("H" if kind == 3 else "I")
            (size[tag],) = struct.unpack(fmt, entry[8 : 8 + struct.calcsize(fmt)])
    if 256 not in size or 257 not in size:
        raise SourceError("corrupt TIFF: no image size")
    return size[256], size[257]


def image_header(data: bytes) -> tuple[str, int, int]:
    """``(format, width, height)`` from the header only; nothing is decoded.

    Knows PNG, JPEG and WebP (what the web page accepts) and, for files,
    BMP and TIFF.

    Raises:
        SourceError: another format, or a corrupt header.
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise SourceError("corrupt PNG: no IHDR")
        w, h = struct.unpack(">II", data[16:24])
        return "png", w, h
    if data[:3] == b"\xff\xd8\xff":
        w, h = _jpeg_size(data)
        return "jpeg", w, h
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        w, h = _webp_size(data)
        return "webp", w, h
    if data[:2] == b"BM" and len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        return "bmp", abs(w), abs(h)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        w, h = _tiff_size(data)
        return "tiff", w, h
    raise SourceError("not a PNG, JPEG, WebP, BMP or TIFF image")


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def read_image(path: Path) -> NDArray[np.uint8]:
    """Read an image file as uint8 HxWx3 BGR, upright.

    Grayscale becomes three equal channels, 16-bit keeps its top 8 bits, an
    alpha channel is dropped (the colour is kept as stored) and the EXIF
    orientation of phone photos is applied, so the model sees people upright.

    The pixel count is read from the header first and refused above
    :func:`max_pixels` (a format whose header is not known here is left to
    OpenCV's own limit).

    Raises:
        SourceError: missing, empty, too many pixels, or not a decodable image.
    """
    check_input_file(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror or e}") from e
    try:
        _fmt, w, h = image_header(data[:65536].tobytes())
    except SourceError:
        pass  # not a header we read (or damaged): OpenCV decides, and says why
    else:
        check_pixels(path, w, h)
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
