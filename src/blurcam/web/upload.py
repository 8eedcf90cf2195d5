"""Background images uploaded from the page: decoded in memory, size-capped.

Why so strict: the upload control is the one place where a remote page hands
the server bytes to parse. Nothing is written to disk and no path is ever
accepted (so no file can be read through it); only PNG, JPEG and WebP are
recognised, by their magic bytes, so OpenCV's rarer decoders (TIFF, EXR, ...)
are never reached; and the pixel size is read from the header *before*
decoding, so a small file that inflates to gigabytes (a decompression bomb)
is refused without allocating anything.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np
from numpy.typing import NDArray

from ..errors import SourceError

__all__ = ["MAX_UPLOAD_BYTES", "MAX_UPLOAD_PIXELS", "decode_upload", "image_header"]

MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_UPLOAD_PIXELS = 4096 * 4096

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


def image_header(data: bytes) -> tuple[str, int, int]:
    """``(format, width, height)`` from the header only; nothing is decoded.

    Raises:
        SourceError: not PNG/JPEG/WebP, or a corrupt header.
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
    raise SourceError("not a PNG, JPEG or WebP image")


def decode_upload(
    data: bytes,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_UPLOAD_PIXELS,
) -> NDArray[np.uint8]:
    """Uploaded bytes -> uint8 HxWx3 BGR, checked before and after decoding.

    Raises:
        SourceError: empty, too large (bytes or pixels), not PNG/JPEG/WebP, or
            not decodable.
    """
    if not data:
        raise SourceError("empty upload")
    if len(data) > max_bytes:
        raise SourceError(f"image too large: {len(data)} bytes (max {max_bytes})")
    fmt, w, h = image_header(data)
    if w <= 0 or h <= 0:
        raise SourceError(f"{fmt} header says {w}x{h}")
    if w * h > max_pixels:
        raise SourceError(f"image too large: {w}x{h} pixels (max {max_pixels})")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise SourceError(f"cannot decode the {fmt} image")
    if img.shape[0] * img.shape[1] > max_pixels:  # header lied
        raise SourceError(f"image too large: {img.shape[1]}x{img.shape[0]} pixels")
    return np.ascontiguousarray(img, dtype=np.uint8)
