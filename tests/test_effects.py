"""Effects: halo-free blur, bokeh, replacement (+ light wrap, harmonise), depth blur."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blurcam import Settings, SettingsError, effects
from blurcam.errors import ModelError, SourceError
from blurcam.io.background import BackgroundSource, cover, cover_geometry, studio_backdrop
from blurcam.pipeline import Stream
from blurcam.segment.depth import DepthEstimator
from blurcam.settings import EffectSettings
from blurcam.testing import FakeSegmenter, disc_mask, synthetic_frame

RED, GREEN = (0, 0, 255), (0, 200, 0)


def red_on_green(w: int = 320, h: int = 240) -> tuple[np.ndarray, np.ndarray]:
    """A red disc 'person' on a flat green background, and its soft alpha."""
    frame = np.empty((h, w, 3), np.uint8)
    frame[:] = GREEN
    hard = disc_mask(w, h)
    frame[hard > 0] = RED
    alpha = cv2.GaussianBlur(hard, (0, 0), 1.5)  # a soft edge, as the refined mask has
    return frame, alpha


def near_edge(alpha: np.ndarray, px: int = 12) -> np.ndarray:
    """Pure background pixels within ``px`` of the person."""
    grown = cv2.dilate((alpha > 0).astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8))
    return (alpha == 0) & (grown > 0)


# ------------------------------------------------------------------------ halo
def test_plain_blur_has_a_halo() -> None:
    """The control: without the mask the person's red bleeds into the background."""
    frame, alpha = red_on_green()
    bg = effects.blur_background(frame, frame, 0.7)
    assert bg[near_edge(alpha)][:, 2].max() > 30


@pytest.mark.parametrize("kind", ["blur", "bokeh", "depth"])
@pytest.mark.parametrize("strength", [0.3, 1.0])
def test_background_next_to_the_edge_takes_no_person_colour(kind: str, strength: float) -> None:
    frame, alpha = red_on_green()
    if kind == "blur":
        bg = effects.blur_background(frame, frame, strength, alpha)
    elif kind == "bokeh":
        bg = effects.bokeh_background(frame, frame, alpha, strength)
    else:
        bg = effects.depth_background(frame, frame, alpha, strength)
    ring = near_edge(alpha)
    assert bg[ring][:, 2].max() <= 2  # no red at all
    assert np.abs(bg[ring].astype(int) - GREEN).max() <= 3  # just the green


def test_pipeline_output_has_no_halo() -> None:
    """End to end at 1280x720: blurred background pixels beside the person stay green."""
    frame, _ = red_on_green(1280, 720)
    seg = FakeSegmenter(mask=disc_mask(1280, 720))
    st = Stream(Settings(effect=EffectSettings(kind="blur", strength=1.0)), seg)
    out = st.process(frame)
    assert st.last_alpha is not None
    ring = near_edge(st.last_alpha, 40)
    assert out[ring][:, 2].max() <= 2


def test_masked_blur_still_blurs() -> None:
    frame = synthetic_frame()
    alpha = disc_mask()
    bg = effects.blur_background(frame, frame, 0.8, alpha)
    back = alpha == 0
    lap = lambda im: np.abs(cv2.Laplacian(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY), cv2.CV_32F))  # noqa: E731
    assert lap(bg)[back].mean() < 0.3 * lap(frame)[back].mean()


def test_all_person_frame_does_not_fail() -> None:
    frame = synthetic_frame()
    alpha = np.full(frame.shape[:2], 255, np.uint8)
    for bg in (
        effects.blur_background(frame, frame, 0.7, alpha),
        effects.bokeh_background(frame, frame, alpha, 0.7),
        effects.depth_background(frame, frame, alpha, 0.7),
    ):
        assert bg.shape == frame.shape and bg.dtype == np.uint8


# ----------------------------------------------------------------------- bokeh
def _dot_image(v: int = 255) -> np.ndarray:
    img = np.full((240, 320, 3), 20, np.uint8)
    cv2.circle(img, (160, 120), 3, (v, v, v), -1)
    return img


def test_bokeh_highlights_bloom() -> None:
    img = _dot_image()
    none = effects.bokeh_background(img, img, None, 1.0, highlights=0.0)
    full = effects.bokeh_background(img, img, None, 1.0, highlights=1.0)
    assert int(full[120, 160].max()) > int(none[120, 160].max()) + 20


def test_bokeh_is_a_flat_disc_not_a_gaussian() -> None:
    """A bright point becomes a disc: flat inside, then a sharp fall (unlike a Gaussian)."""
    img = _dot_image()
    bok = effects.bokeh_background(img, img, None, 1.0, highlights=1.0)[120, :, 1].astype(int)
    r = effects.bokeh_radius(1.0, (320, 240))
    inner = bok[160 - int(0.5 * r) : 160 + int(0.5 * r)]
    assert inner.min() > 0.75 * inner.max()  # flat top
    assert bok[160 + int(1.4 * r)] <= 25  # nothing far outside the disc


@pytest.mark.parametrize("shape", ["disc", "hex"])
def test_aperture_kernels_sum_to_one(shape: str) -> None:
    k = effects._aperture(7, shape)
    assert k.dtype == np.float32 and abs(float(k.sum()) - 1.0) < 1e-5


# ----------------------------------------------------------------- replacement
def _new_background(w: int = 320, h: int = 240) -> np.ndarray:
    bg = np.zeros((h, w, 3), np.uint8)
    bg[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]  # a blue ramp
    bg[..., 1] = 60
    bg[..., 2] = np.linspace(255, 0, h, dtype=np.uint8)[:, None]
    return bg


@pytest.mark.parametrize("wrap", [0.0, 0.3])
def test_replacement_keeps_person_and_uses_background_elsewhere(wrap: float) -> None:
    frame = synthetic_frame()
    new = _new_background()
    st = Stream(Settings(effect=EffectSettings(kind="replace", light_wrap=wrap)), FakeSegmenter())
    st.set_background(new)
    out = st.process(frame)
    truth = disc_mask()
    person = cv2.erode(truth, np.ones((21, 21), np.uint8)) > 0  # away from the wrapped edge
    back = cv2.dilate(truth, np.ones((9, 9), np.uint8)) == 0
    assert np.array_equal(out[person], frame[person])
    assert np.array_equal(out[back], new[back])


def test_replacement_from_a_file_is_scaled_to_cover(tmp_path: Path) -> None:
    new = _new_background(100, 50)  # 2:1, frame is 4:3 -> sides cropped
    path = tmp_path / "bg.png"
    cv2.imwrite(str(path), new)
    frame = synthetic_frame()
    s = Settings(effect=EffectSettings(kind="replace", background=str(path), light_wrap=0))
    out = Stream(s, FakeSegmenter()).process(frame)
    expect = cover(new, (320, 240))
    back = cv2.dilate(disc_mask(), np.ones((9, 9), np.uint8)) == 0
    assert np.array_equal(out[back], expect[back])


def test_replace_without_background_uses_the_built_in_backdrop() -> None:
    st = Stream(Settings(effect=EffectSettings(kind="replace", light_wrap=0)), FakeSegmenter())
    out = st.process(synthetic_frame())
    expect = cover(studio_backdrop(), (320, 240))
    back = cv2.dilate(disc_mask(), np.ones((9, 9), np.uint8)) == 0
    assert np.array_equal(out[back], expect[back])


def test_missing_background_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        BackgroundSource(tmp_path / "nope.jpg")
    with pytest.raises(SourceError):
        BackgroundSource(tmp_path / "nope.mp4")
    with pytest.raises(SourceError, match="extension"):
        BackgroundSource(tmp_path / "bg.txt")


def test_video_background_loops_and_covers(tmp_path: Path) -> None:
    from media import make_video

    path = make_video(tmp_path / "bg.mp4", frames=5, size=(160, 96), audio=False)
    with BackgroundSource(path) as src:
        assert src.is_video
        frames = [src.frame((120, 90)).copy() for _ in range(12)]
    assert all(f.shape == (90, 120, 3) and f.dtype == np.uint8 for f in frames)
    # the disc moves within one pass, and the 6th frame is the first again (looped)
    assert np.abs(frames[0].astype(int) - frames[4].astype(int)).mean() > 1
    assert np.abs(frames[0].astype(int) - frames[5].astype(int)).mean() < 2


@settings(max_examples=40, deadline=None)
@given(
    sw=st.integers(1, 400), sh=st.integers(1, 400), dw=st.integers(1, 300), dh=st.integers(1, 300)
)
def test_cover_geometry_fills_exactly(sw: int, sh: int, dw: int, dh: int) -> None:
    tw, th, x0, y0 = cover_geometry((sw, sh), (dw, dh))
    assert tw >= dw and th >= dh and x0 >= 0 and y0 >= 0
    assert x0 + dw <= tw and y0 + dh <= th
    # aspect kept (within a pixel of rounding)
    assert abs(tw * sh - th * sw) <= max(sw, sh) + max(tw, th)
    img = np.zeros((sh, sw, 3), np.uint8)
    assert cover(img, (dw, dh)).shape == (dh, dw, 3)


def test_light_wrap_touches_only_the_person_edge() -> None:
    frame, alpha = red_on_green()
    bg = np.empty_like(frame)
    bg[:] = (255, 0, 0)  # blue new background
    a2, bg2 = alpha.copy(), bg.copy()
    effects.light_wrap(bg2, a2, 0.5)
    outside = alpha == 0
    assert np.array_equal(a2[outside], alpha[outside])
    assert np.array_equal(bg2[outside], bg[outside])
    core = cv2.erode(alpha, np.ones((41, 41), np.uint8)) == 255
    assert np.array_equal(a2[core], alpha[core])  # deep inside: untouched
    rim = (alpha == 255) & (cv2.dilate((alpha < 255).astype(np.uint8), np.ones((7, 7))) > 0)
    assert (a2[rim] < 255).mean() > 0.9  # the rim is lowered...
    assert a2.min() >= alpha.min() and (a2 <= alpha).all()  # ...never raised
    assert (bg2[rim][:, 0] > 200).all()  # ...and shows the blue light


def test_harmonize_moves_colours_toward_the_camera() -> None:
    new = _new_background()
    warm = np.full((60, 80, 3), (40, 120, 220), np.uint8)
    moved = effects.harmonize_background(new, warm, 0.5)
    d0 = np.abs(new.reshape(-1, 3).mean(0) - warm.reshape(-1, 3).mean(0))
    d1 = np.abs(moved.reshape(-1, 3).mean(0) - warm.reshape(-1, 3).mean(0))
    assert (d1 < d0 - 5).all()
    assert np.array_equal(effects.harmonize_background(new, warm, 0.0), new)


# ----------------------------------------------------------------------- depth
def _texture(w: int = 320, h: int = 120) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _detail(img: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return np.abs(cv2.Laplacian(g, cv2.CV_32F))


@pytest.mark.parametrize("strength", [0.4, 1.0])
def test_depth_blur_grows_monotonically_with_depth(strength: float) -> None:
    img = _texture()
    ramp = np.tile(np.linspace(0.0, 1.0, 320, dtype=np.float32), (120, 1))
    bg = effects.depth_background(img, img, None, strength, ramp)
    det = _detail(bg)
    bands = [float(det[:, i : i + 40].mean()) for i in range(0, 320, 40)]
    assert all(a > b for a, b in itertools.pairwise(bands)), bands
    # the near end keeps much more detail than the far end
    assert bands[0] > 3 * bands[-1]


def test_depth_from_mask_increases_away_from_the_person() -> None:
    a = disc_mask(160, 120, cx=0.5, r=0.25).astype(np.float32) / 255
    d = effects.depth_from_mask(a)
    assert d.dtype == np.float32 and d.min() >= 0 and d.max() <= 1
    row = d[60, 110:]  # from the disc's right edge to the frame's
    assert (np.diff(row) >= -1e-4).all() and row[-1] > row[0] + 0.2
    assert (d[a >= 0.5] == 0).all()


def test_normalize_depth_takes_the_person_as_focus_whatever_the_sign() -> None:
    alpha = disc_mask(160, 120)
    far = np.tile(np.linspace(0.0, 1.0, 160, dtype=np.float32), (120, 1))  # farther to the right
    far[alpha > 0] = 0.1  # the person is near
    for raw in (far, -far * 3.0 + 7.0):  # depth-like and disparity-like answers
        d = effects.normalize_depth(raw, alpha)
        assert (d[alpha > 0] == 0).all()
        assert d[60, -1] > d[60, 120] > 0  # farther right -> more blur


def _tiny_depth_onnx(path: Path) -> Path:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    # depth = mean of the input channels (a stand-in with the TCMonoDepth I/O)
    node = helper.make_node("ReduceMean", ["input", "axes"], ["output"], keepdims=1)
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(
        [node],
        "depth",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 24, 32])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 24, 32])],
        initializer=[axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_depth_model_from_a_user_path(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    path = _tiny_depth_onnx(tmp_path / "depth.onnx")
    est = DepthEstimator(path)
    assert est.input_size == (32, 24)
    raw = est(synthetic_frame())
    assert raw.shape == (24, 32) and raw.dtype == np.float32
    s = Settings(effect=EffectSettings(kind="depth", depth_model=str(path), depth_every=2))
    st = Stream(s, FakeSegmenter())
    for _ in range(3):
        out = st.process(synthetic_frame())
    assert out.shape == (240, 320, 3)


def test_missing_depth_model_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError):
        DepthEstimator(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    pytest.importorskip("onnxruntime")
    with pytest.raises(ModelError):
        DepthEstimator(bad)


# -------------------------------------------------------------------- pipeline
@pytest.mark.parametrize("kind", ["blur", "bokeh", "replace", "depth", "none"])
@pytest.mark.parametrize("size", [(320, 240), (97, 61), (1280, 720)])
def test_every_effect_through_the_stream(kind: str, size: tuple[int, int]) -> None:
    w, h = size
    frame = synthetic_frame(w, h)
    e = EffectSettings(kind=kind, harmonize=0.3, bokeh_shape="hex", keep_point=(5, 5))
    st = Stream(Settings(effect=e), FakeSegmenter(mask=disc_mask(w, h)))
    st.set_background(_new_background())
    for _ in range(2):
        out = st.process(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8
    a = st.last_alpha
    assert a is not None
    # where the stream's alpha is solid (away from any light wrap) the person is untouched
    k = 3 + 2 * (w // 200)
    person = cv2.erode((a == 255).astype(np.uint8), np.ones((k, k), np.uint8)) > 0
    assert person.mean() > 0.02
    assert np.array_equal(out[person], frame[person])


def test_stronger_bokeh_and_depth_remove_more_detail() -> None:
    frame = synthetic_frame()
    back = cv2.dilate(disc_mask(), np.ones((15, 15), np.uint8)) == 0
    for kind in ("bokeh", "depth"):
        det = []
        for s in (0.2, 0.5, 1.0):
            st = Stream(
                Settings(effect=EffectSettings(kind=kind, strength=s, highlights=0)),
                FakeSegmenter(),
            )
            det.append(float(_detail(st.process(frame))[back].mean()))
        assert det[0] > det[1] > det[2], (kind, det)


def test_effect_settings_validation() -> None:
    for bad in (
        {"light_wrap": 1.5},
        {"harmonize": -0.1},
        {"bokeh_shape": "star"},
        {"depth_norm": "zscore"},
        {"depth_every": 0},
        {"keep_point": (1, 2), "keep_box": (0, 0, 4, 4)},
        {"keep_box": (0, 0, 0, 4)},
        {"keep_point": (-1, 2)},
        {"keep_size": 0.0},
    ):
        with pytest.raises(SettingsError):
            EffectSettings(**bad)  # type: ignore[arg-type]
    e = replace(EffectSettings(), kind="bokeh", highlights=1.0)
    assert e.kind == "bokeh"


# ------------------------------------------------------------------------- CLI
def test_cli_blur_effect_options(tmp_path: Path) -> None:
    from blurcam.cli.app import main

    img = tmp_path / "in.png"
    cv2.imwrite(str(img), synthetic_frame())
    bgp = tmp_path / "bg.png"
    cv2.imwrite(str(bgp), _new_background())
    ok = [
        ["-e", "bokeh", "--keep", "100,100"],
        ["-e", "replace", "-b", str(bgp), "--light-wrap", "0.5", "--harmonize", "0.2"],
        ["-e", "depth", "--keep-box", "10,10,40,30"],
    ]
    for i, opts in enumerate(ok):
        out = tmp_path / f"out{i}.png"
        assert main(["blur", str(img), str(out), *opts]) == 0
        assert cv2.imread(str(out)).shape == (240, 320, 3)
    bad = tmp_path / "bad.png"
    assert main(["blur", str(img), str(bad), "--keep", "1,2,3"]) == 2
    assert main(["blur", str(img), str(bad), "-e", "sparkles"]) == 2
    assert main(["blur", str(img), str(bad), "-e", "replace", "-b", "nope.jpg"]) == 4
    assert not bad.exists()
