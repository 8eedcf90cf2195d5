"""The ONNX backend on a tiny graph the test builds: 'person' = red channel above a threshold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from blurcam import BackgroundBlur, ModelError, open_segmenter  # noqa: E402
from blurcam.segment.onnx import select_providers  # noqa: E402
from blurcam.testing import synthetic_frame  # noqa: E402


def make_red_model(path: Path, layout: str = "nchw", size: tuple[int, int] = (64, 48)) -> Path:
    """A graph whose output is sigmoid(40 * (R - 0.5)) on an RGB 0..1 input."""
    w, h = size
    if layout == "nchw":
        shape, axes_start = [1, 3, h, w], 1
    else:
        shape, axes_start = [1, h, w, 3], 3
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)
    out_shape = [1, 1, h, w] if layout == "nchw" else [1, h, w, 1]
    y = helper.make_tensor_value_info("mask", TensorProto.FLOAT, out_shape)
    inits = [
        helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
        helper.make_tensor("ends", TensorProto.INT64, [1], [1]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [axes_start]),
        helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
        helper.make_tensor("gain", TensorProto.FLOAT, [], [40.0]),
    ]
    nodes = [
        helper.make_node("Slice", ["image", "starts", "ends", "axes"], ["red"]),
        helper.make_node("Sub", ["red", "half"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["mask"]),
    ]
    graph = helper.make_graph(nodes, "red", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def red_person_frame(w: int = 320, h: int = 240) -> np.ndarray:
    f = synthetic_frame(w, h)
    f[..., 2] = np.minimum(f[..., 2], 60)  # background: little red
    f[60:180, 100:220] = (30, 60, 250)  # person: strong red, BGR
    return f


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_onnx_segmenter_layouts(tmp_path: Path, layout: str) -> None:
    seg = open_segmenter(str(make_red_model(tmp_path / "m.onnx", layout)))
    assert seg.input_size == (64, 48)
    prob = seg(red_person_frame())
    assert prob.shape == (48, 64)
    assert prob[24, 32] > 0.99 and prob[2, 2] < 0.01


def test_onnx_pipeline_keeps_person_exact(tmp_path: Path) -> None:
    model = make_red_model(tmp_path / "m.onnx")
    frame = red_person_frame()
    bb = BackgroundBlur(strength=1.0, model=str(model))
    out = bb.process(frame)
    person = bb.last_alpha == 255
    assert person[80:160, 120:200].all()
    assert np.array_equal(out[person], frame[person])
    back = bb.last_alpha == 0
    assert back.mean() > 0.5
    assert np.abs(out.astype(int) - frame.astype(int))[back].mean() > 5


def test_onnx_two_inputs_refused(tmp_path: Path) -> None:
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 3, 8, 8])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    g = helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"])], "two", [a, b], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    p = tmp_path / "two.onnx"
    onnx.save(m, str(p))
    with pytest.raises(ModelError, match="one image input"):
        open_segmenter(str(p))


def test_onnx_corrupt_file(tmp_path: Path) -> None:
    p = tmp_path / "bad.onnx"
    p.write_bytes(b"\x00garbage" * 64)
    with pytest.raises(ModelError):
        open_segmenter(str(p))


def test_provider_selection_falls_back() -> None:
    assert select_providers("cpu", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        "CPUExecutionProvider"
    ]
    assert select_providers("gpu", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert select_providers("gpu", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert select_providers("auto", ["OpenVINOExecutionProvider", "CPUExecutionProvider"])[0] == (
        "OpenVINOExecutionProvider"
    )
