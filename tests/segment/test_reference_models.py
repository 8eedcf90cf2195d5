"""Reference models: loaded only from a user's path, by name=path or by known sha256."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from blurcam.errors import ModelError
from blurcam.segment import open_segmenter, spec_for
from blurcam.segment.registry import REFERENCE

OBS = "models/obs_models"
FILES = {
    "sinet": f"{OBS}/SINet_Softmax_simple.onnx",
    "meet": f"{OBS}/mediapipe.onnx",
    "selfie-onnx": f"{OBS}/selfie_segmentation.onnx",
    "rvm": "models/rvm/rvm_mobilenetv3_fp32.onnx",
}


def test_reference_names_need_a_path(tmp_path: Path) -> None:
    for name in REFERENCE:
        with pytest.raises(ModelError, match=f"{name}=/path"):
            spec_for(name)
    with pytest.raises(ModelError, match="not found"):
        spec_for(f"sinet={tmp_path / 'missing.onnx'}")
    with pytest.raises(ModelError, match="unknown reference model"):
        from blurcam.segment.registry import reference_spec

        reference_spec("nope", tmp_path)


def test_rvm_is_never_vendored() -> None:
    from blurcam.segment.registry import bundled_path

    models = bundled_path("x").parent
    assert not any("rvm" in p.name.lower() for p in models.iterdir())
    assert "GPL" in REFERENCE["rvm"].licence


def test_specs_carry_what_differs() -> None:
    s = REFERENCE["sinet"]
    assert (s.color, s.layout, s.output, s.input_size) == ("bgr", "nchw", "prob2", (320, 320))
    assert s.scale == 1.0 and s.std[0] == pytest.approx(62.93292 * 255)
    assert REFERENCE["meet"].output == "softmax2"


def _portrait(shared: Path) -> tuple[np.ndarray, np.ndarray]:
    img = cv2.imread(str(shared / "data/portraits/images/00002.jpg"))
    gt = cv2.imread(str(shared / "data/portraits/masks/00002.png"), 0) > 127
    return img, gt


@pytest.mark.parametrize("name", list(FILES))
def test_reference_model_segments_portrait(shared_dir: Path, name: str) -> None:
    path = shared_dir / FILES[name]
    img, gt = _portrait(shared_dir)
    h, w = gt.shape
    for model in (f"{name}={path}", str(path)):  # by name, and recognised by sha256
        assert spec_for(model).name == name
        seg = open_segmenter(model, frame_size=(w, h), threads=1)
        p = seg(img)
        assert p.dtype == np.float32 and p.min() >= 0.0 and p.max() <= 1.0
        a = cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) > 0.5
        assert (a & gt).sum() / (a | gt).sum() > 0.9
        seg.close()


def test_rvm_recurrent_state(shared_dir: Path) -> None:
    path = shared_dir / FILES["rvm"]
    img, _ = _portrait(shared_dir)
    seg = open_segmenter(f"rvm={path}", frame_size=(img.shape[1], img.shape[0]), threads=1)
    first = seg(img)
    second = seg(img)  # state fed back: not the same answer as from zeros
    assert np.abs(first - second).max() > 1e-4
    seg.reset()
    assert np.allclose(seg(img), first, atol=1e-5)
    seg.close()
