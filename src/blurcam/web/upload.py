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

import cv2
import numpy as np
from numpy.typing import NDArray

from ..errors import SourceError
from ..io.image import image_header

__all__ = ["MAX_UPLOAD_BYTES", "MAX_UPLOAD_PIXELS", "decode_upload"]

MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_UPLOAD_PIXELS = 4096 * 4096


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
    if fmt not in ("png", "jpeg", "webp"):
        raise SourceError("not a PNG, JPEG or WebP image")
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
