"""Model files: bundled ones checked by sha256, user ones by format, shape and dtype.

A wrong or corrupt model is a :class:`ModelError` (CLI exit 3, one line),
never a crash inside a runtime or a silently wrong mask. Nothing is loaded
through pickle or any format that can run code.
"""

from __future__ import annotations

import pickle
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from blurcam.cli.app import main
from blurcam.errors import ModelError
from blurcam.segment import open_segmenter
from blurcam.segment.registry import BUNDLED, bundled_path
from blurcam.segment.spec import ModelSpec, check_io_shapes
from blurcam.testing import synthetic_frame

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src" / "blurcam"


def run(*args: object) -> int:
    return main([str(a) for a in args])


def onnx_model(
    path: Path,
    in_shape: list[int | str],
    out_shape: list[int | str],
    *,
    in_type: int = TensorProto.FLOAT,
    out_type: int = TensorProto.FLOAT,
    inputs: int = 1,
) -> Path:
    """A tiny ONNX graph: mean over channels then sigmoid (or a fixed-shape constant)."""
    ins = [helper.make_tensor_value_info(f"x{i}", in_type, in_shape) for i in range(inputs)]
    out = helper.make_tensor_value_info("y", out_type, out_shape)
    maps = len(out_shape) == 4 and out_shape[1] == 1 and out_shape[2:] == in_shape[2:]
    if in_type == TensorProto.FLOAT and out_type == TensorProto.FLOAT and maps:
        nodes = [
            helper.make_node("ReduceMean", ["x0"], ["m"], axes=[1], keepdims=1),
            helper.make_node("Sigmoid", ["m"], ["y"]),
        ]
    else:  # shape is what is under test: a constant of the declared shape
        shape = [d if isinstance(d, int) else 1 for d in out_shape]
        val = helper.make_tensor("c", out_type, shape, [0] * int(np.prod(shape)))
        nodes = [helper.make_node("Constant", [], ["y"], value=val)]
    graph = helper.make_graph(nodes, "g", ins, [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_good_user_onnx_model_runs(tmp_path: Path) -> None:
    p = onnx_model(tmp_path / "good.onnx", [1, 3, 32, 32], [1, 1, 32, 32])
    seg = open_segmenter(str(p))
    prob = seg(synthetic_frame(64, 48))
    assert prob.shape == (32, 32) and prob.dtype == np.float32
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), synthetic_frame(64, 48))
    assert run("blur", src, tmp_path / "out.png", "--model", p) == 0


WRONG_ONNX = [
    ("classifier", [1, 3, 32, 32], [1, 10], {}, "output shape"),
    ("three_channels_out", [1, 3, 32, 32], [1, 3, 32, 32], {}, "person map"),
    ("detector_boxes", [1, 3, 128, 128], [1, 896, 16], {}, "does not match"),
    ("uint8_input", [1, 3, 32, 32], [1, 1, 32, 32], {"in_type": TensorProto.UINT8}, "float32"),
    ("int_output", [1, 3, 32, 32], [1, 1, 32, 32], {"out_type": TensorProto.INT64}, "float32"),
    ("two_inputs", [1, 3, 32, 32], [1, 1, 32, 32], {"inputs": 2}, "one image input"),
    ("no_rgb_axis", [1, 5, 32, 32], [1, 1, 32, 32], {}, "3-channel"),
    ("huge_input", [1, 3, 100000, 100000], [1, 1, 8, 8], {}, "outside 8.."),
    ("tiny_output", [1, 3, 32, 32], [1, 1, 2, 2], {}, "too small"),
]


@pytest.mark.parametrize(
    "in_shape, out_shape, kw, needle", [c[1:] for c in WRONG_ONNX], ids=[c[0] for c in WRONG_ONNX]
)
def test_wrong_onnx_model_is_refused(
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    in_shape: list[int],
    out_shape: list[int],
    kw: dict[str, int],
    needle: str,
) -> None:
    p = onnx_model(tmp_path / "wrong.onnx", in_shape, out_shape, **kw)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match=needle):
        open_segmenter(str(p))
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), synthetic_frame(64, 48))
    assert run("blur", src, tmp_path / "out.png", "--model", p) == 3
    err = capfd.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()


def test_dynamic_onnx_dims_are_accepted(tmp_path: Path) -> None:
    p = onnx_model(tmp_path / "dyn.onnx", ["n", 3, "h", "w"], ["n", 1, "h", "w"])
    seg = open_segmenter(str(p))
    assert seg(synthetic_frame(64, 48)).shape == (256, 256)[::-1]


def _corrupt_files(tmp_path: Path) -> list[tuple[str, Path, str | None]]:
    good_onnx = onnx_model(tmp_path / "g.onnx", [1, 3, 32, 32], [1, 1, 32, 32]).read_bytes()
    tfl = bundled_path(BUNDLED["selfie"][0]).read_bytes()
    cases = {
        "truncated.onnx": good_onnx[: len(good_onnx) // 2],
        "text.onnx": b"<html>not found</html>" * 10,
        "pickle.onnx": pickle.dumps({"weights": [1, 2, 3]}),
        "truncated.tflite": tfl[: len(tfl) // 3],
        "text.tflite": b"hello world, not a model" * 10,
        "pickle.tflite": pickle.dumps([1, 2, 3]),
        "empty.tflite": b"",
    }
    out = []
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        out.append((name, p, "empty" if not data else None))
    return out


def test_corrupt_model_files_are_model_errors(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), synthetic_frame(64, 48))
    for name, p, needle in _corrupt_files(tmp_path):
        with pytest.raises(ModelError, match=needle):
            open_segmenter(str(p))
        assert run("blur", src, tmp_path / "out.png", "--model", p) == 3, name
        err = capfd.readouterr().err
        assert "error:" in err and "Traceback" not in err, (name, err)
        assert not (tmp_path / "out.png").exists()


def test_bundled_model_checked_by_sha256(tmp_path: Path) -> None:
    filename, size, digest = BUNDLED["selfie"]
    bad = tmp_path / filename
    shutil.copy(bundled_path(filename), bad)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped weight byte: still loads, must be refused
    bad.write_bytes(bytes(data))
    spec = ModelSpec(name="selfie", path=bad, input_size=size, sha256=digest)
    with pytest.raises(ModelError, match="corrupt or replaced"):
        spec.verify()
    ModelSpec(name="selfie", path=bundled_path(filename), input_size=size, sha256=digest).verify()


def test_missing_model_file(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), synthetic_frame(64, 48))
    assert run("blur", src, tmp_path / "out.png", "--model", tmp_path / "nope.onnx") == 3
    assert "not found" in capfd.readouterr().err


@pytest.mark.parametrize(
    "in_hw, out, ok",
    [
        ((256, 256), [1, 256, 256, 1], True),
        ((144, 256), [1, 144, 256, 2], True),
        ((320, 320), [1, 2, 320, 320], True),
        ((256, 256), [1, 256, 256], True),
        ((256, 256), [256, 256], True),
        ((None, None), [None, 1, None, None], True),
        ((128, 128), [1, 896, 16], False),
        ((128, 128), [1, 896, 1], False),
        ((32, 32), [1, 1000], False),
        ((32, 32), [2, 1, 32, 32], False),
        ((32, 32), [1, 32, 32, 3], False),
    ],
)
def test_check_io_shapes(in_hw: tuple[int, int], out: list[int], ok: bool) -> None:
    if ok:
        check_io_shapes(Path("m"), in_hw, out)
    else:
        with pytest.raises(ModelError):
            check_io_shapes(Path("m"), in_hw, out)


def test_reference_face_detector_is_not_a_segmenter(shared_dir: Path) -> None:
    p = shared_dir / "models" / "mediapipe_face" / "face_detection_short_range.tflite"
    with pytest.raises(ModelError, match="not a segmentation model"):
        open_segmenter(str(p))


def test_no_unsafe_loading_in_the_package() -> None:
    """No pickle-family loaders or eval anywhere in src/ (models are FlatBuffers/protobuf)."""
    bad = re.compile(
        r"\bimport (pickle|cPickle|dill|cloudpickle|marshal|shelve|joblib)\b"
        r"|allow_pickle\s*=\s*True|\btorch\.load\(|\byaml\.load\(|\beval\(|\bexec\("
        r"|\bnp\.load\(|\bnumpy\.load\("
    )
    hits = [
        f"{p.relative_to(SRC)}:{i}: {line.strip()}"
        for p in SRC.rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if bad.search(line)
    ]
    assert hits == []
