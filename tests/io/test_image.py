"""io.image: headers read before decoding, the pixel limit (issue 15, item 4)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from blurcam.cli.app import main
from blurcam.errors import SettingsError, SourceError
from blurcam.io.image import DEFAULT_MAX_PIXELS, image_header, max_pixels, read_image
from blurcam.testing import synthetic_frame


def _bomb(path: Path, w: int = 30000, h: int = 30000) -> Path:
    """A PNG whose header declares ``w`` x ``h`` (a few KB of zeros follow)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 65536)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat))
    return path


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".bmp", ".tiff"])
def test_header_gives_the_size_of_every_format_read(tmp_path: Path, ext: str) -> None:
    ok, buf = cv2.imencode(ext, synthetic_frame(97, 61))
    assert ok
    fmt, w, h = image_header(buf.tobytes())
    assert (w, h) == (97, 61) and fmt == {".jpg": "jpeg"}.get(ext, ext[1:])


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    bomb = _bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 10_000
    with pytest.raises(SourceError, match="900 megapixels, above the limit of 100"):
        read_image(bomb)


def test_pixel_limit_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), synthetic_frame(64, 48))
    assert max_pixels() == DEFAULT_MAX_PIXELS
    monkeypatch.setenv("BLURCAM_MAX_PIXELS", "1000")
    with pytest.raises(SourceError, match="BLURCAM_MAX_PIXELS"):
        read_image(img)
    monkeypatch.setenv("BLURCAM_MAX_PIXELS", "4000")
    assert read_image(img).shape == (48, 64, 3)
    monkeypatch.setenv("BLURCAM_MAX_PIXELS", "lots")
    with pytest.raises(SettingsError, match="positive integer"):
        max_pixels()


def test_cli_refuses_a_bomb_in_one_line(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    bomb = _bomb(tmp_path / "bomb.png")
    assert main(["blur", str(bomb), str(tmp_path / "out.png")]) == 4
    err = capfd.readouterr().err
    assert "megapixels" in err and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()
    # a corrupt header is left to the decoder, which says it cannot decode
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    assert main(["blur", str(broken), str(tmp_path / "out2.png")]) == 4
    assert np.all([not p.name.startswith(".") for p in tmp_path.iterdir()])
