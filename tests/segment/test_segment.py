from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from blurcam import ModelError, open_segmenter
from blurcam.segment import BUNDLED, bundled_path, resolve_model, spec_for
from blurcam.segment.litert import LiteRTSegmenter
from blurcam.testing import synthetic_frame


@pytest.mark.parametrize("name", ["selfie", "landscape"])
def test_bundled_tflite_runs(name: str) -> None:
    seg = open_segmenter(name)
    w, h = BUNDLED[name][1]
    prob = seg(synthetic_frame(640, 360))
    assert prob.shape == (h, w) and prob.dtype == np.float32
    assert prob.min() >= 0.0 and prob.max() <= 1.0
    seg.close()


def test_auto_picks_by_aspect() -> None:
    assert resolve_model("auto", (1920, 1080)) == "landscape"
    assert resolve_model("auto", (600, 800)) == "selfie"
    assert resolve_model("auto", (640, 480)) == "selfie"
    assert resolve_model("selfie", (1920, 1080)) == "selfie"


def test_corrupt_bundled_model_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "selfie_segmentation.tflite"
    data = bytearray(bundled_path("selfie_segmentation.tflite").read_bytes())
    data[1000] ^= 0xFF
    bad.write_bytes(bytes(data))
    from dataclasses import replace

    spec = replace(spec_for("selfie"), path=bad)
    with pytest.raises(ModelError, match="corrupt"):
        LiteRTSegmenter(spec)


def test_unknown_model_name() -> None:
    with pytest.raises(ModelError, match="unknown model"):
        open_segmenter("nonexistent")
    with pytest.raises(ModelError, match="not found"):
        open_segmenter("/nope/model.onnx")


def test_garbage_model_file(tmp_path: Path) -> None:
    p = tmp_path / "junk.tflite"
    p.write_bytes(b"not a model" * 100)
    with pytest.raises(ModelError):
        open_segmenter(str(p))


def test_user_tflite_by_path(tmp_path: Path) -> None:
    p = tmp_path / "mine.tflite"
    shutil.copy(bundled_path("selfie_segmentation.tflite"), p)
    seg = open_segmenter(str(p))
    assert seg(synthetic_frame()).shape == (256, 256)
