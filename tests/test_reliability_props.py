"""Property tests: any valid frame, strength and effect -> no exception, same shape, person kept.

Hypothesis draws frame shapes (1x1 up to odd sizes), dtypes (uint8, uint16,
float, bool), channel counts (grey, 1, 3, 4) and strengths for every effect in
``blurcam.settings.EFFECTS``. A model-free segmenter keeps it fast; a few
examples run the real bundled model.

Invariants (docs/RELIABILITY.md):
- ``process`` never raises for a valid image array;
- a uint8 HxWx3 input gives a uint8 HxWx3 output, anything else a uint8 HxWx3
  output of the same HxW (grey, alpha and 16-bit are converted);
- where ``last_alpha`` is 255 the output pixel equals the (converted) input.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from blurcam import BackgroundBlur
from blurcam.errors import BlurcamError
from blurcam.frame import as_bgr
from blurcam.settings import EFFECTS, EffectSettings, GuardSettings, Settings
from blurcam.testing import synthetic_frame

# odd dtypes are drawn on purpose: as_bgr's guesses about them warn (tests/test_frame.py)
pytestmark = pytest.mark.filterwarnings("ignore::blurcam.errors.InputWarning")

PROPS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class BlockSegmenter:
    """Person probability from a fixed low-res pattern: exact 1s, exact 0s and a soft band."""

    name = "blocks"

    def __init__(self, pattern: NDArray[np.float32]) -> None:
        self.pattern = pattern
        self.input_size = (pattern.shape[1], pattern.shape[0])

    def __call__(self, frame: NDArray[np.uint8]) -> NDArray[np.float32]:
        return self.pattern.copy()

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


def _pattern(seed: int) -> NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    p = np.zeros((24, 32), np.float32)
    x0, y0 = rng.integers(0, 16), rng.integers(0, 12)
    p[y0 : y0 + 12, x0 : x0 + 16] = 1.0
    p[rng.random(p.shape) < 0.05] = 0.5  # a few unsure pixels
    return p


@pytest.fixture(scope="module")
def background_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("bg") / "bg.png"
    cv2.imwrite(str(p), synthetic_frame(96, 64, cx=0.8))
    return p


def effect_settings(kind: str, strength: float, background: Path) -> EffectSettings | None:
    """EffectSettings for ``kind``, with a background file where one is needed."""
    fields = {f.name for f in dataclasses.fields(EffectSettings)}
    kw: dict[str, Any] = {"kind": kind, "strength": strength}
    if kind == "replace" and "background" in fields:
        kw["background"] = str(background)
    try:
        return EffectSettings(**kw)
    except BlurcamError:
        return None  # a kind that needs something this test cannot make


def make_image(seed: int, h: int, w: int, layout: str, dtype: str) -> NDArray[Any]:
    rng = np.random.default_rng(seed)
    shape: tuple[int, ...] = {
        "grey": (h, w),
        "1": (h, w, 1),
        "3": (h, w, 3),
        "4": (h, w, 4),
    }[layout]
    if dtype == "uint8":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if dtype == "uint16":
        return rng.integers(0, 65536, shape, dtype=np.uint16)
    if dtype == "float32":
        return rng.random(shape, dtype=np.float32)
    if dtype == "float64":
        return rng.random(shape) * 1.2 - 0.1  # slightly out of 0..1: clipped
    return rng.random(shape) < 0.5  # bool


# small sizes mostly; some above the 480 px working width, where frames are downscaled
side = st.one_of(*[st.integers(1, 90)] * 4, st.integers(400, 700))
frames = st.tuples(
    st.integers(0, 2**31 - 1),
    side,
    side,
    st.sampled_from(["grey", "1", "3", "4"]),
    st.sampled_from(["uint8", "uint16", "float32", "float64", "bool"]),
)


def check_invariants(bb: BackgroundBlur, img: NDArray[Any]) -> None:
    out = bb.process(img)
    h, w = img.shape[:2]
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    if img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3:
        assert out.shape == img.shape
    alpha = bb.last_alpha
    assert alpha is not None and alpha.shape == (h, w) and alpha.dtype == np.uint8
    person = alpha == 255
    ref = as_bgr(img)
    assert np.array_equal(out[person], ref[person]), "a person pixel (alpha 255) was changed"


@PROPS
@given(
    frame=frames,
    strength=st.floats(0.0, 1.0),
    kind=st.sampled_from(EFFECTS),
    mask_seed=st.integers(0, 1000),
)
def test_process_any_frame_any_effect(
    background_file: Path,
    frame: tuple[int, int, int, str, str],
    strength: float,
    kind: str,
    mask_seed: int,
) -> None:
    eff = effect_settings(kind, strength, background_file)
    if eff is None:
        pytest.skip(f"effect {kind} needs inputs this test cannot make")
    s = Settings(effect=eff, guards=GuardSettings(face=False))
    with BackgroundBlur(settings=s, segmenter=BlockSegmenter(_pattern(mask_seed))) as bb:
        check_invariants(bb, make_image(*frame))


@settings(PROPS, max_examples=25)
@given(
    shapes=st.lists(frames, min_size=2, max_size=4),
    kind=st.sampled_from(EFFECTS),
    strength=st.floats(0.0, 1.0),
)
def test_one_stream_survives_size_and_format_changes(
    background_file: Path, shapes: list[tuple[int, int, int, str, str]], kind: str, strength: float
) -> None:
    """A live source may change resolution or format between frames: state must follow."""
    eff = effect_settings(kind, strength, background_file)
    if eff is None:
        pytest.skip(f"effect {kind} needs inputs this test cannot make")
    s = Settings(effect=eff, guards=GuardSettings(face=False))
    with BackgroundBlur(settings=s, segmenter=BlockSegmenter(_pattern(7))) as bb:
        for f in shapes:
            check_invariants(bb, make_image(*f))


@pytest.mark.parametrize("kind", EFFECTS)
def test_all_person_frame_is_returned_unchanged(background_file: Path, kind: str) -> None:
    """Alpha 255 everywhere: every effect must hand the input back bit for bit."""
    eff = effect_settings(kind, 1.0, background_file)
    if eff is None:
        pytest.skip(f"effect {kind} needs inputs this test cannot make")
    s = Settings(effect=eff, guards=GuardSettings(face=False))
    img = synthetic_frame(97, 55)
    with BackgroundBlur(settings=s, segmenter=BlockSegmenter(np.ones((24, 32), np.float32))) as bb:
        for _ in range(3):
            out = bb.process(img)
            assert bb.last_alpha is not None and (bb.last_alpha == 255).all()
            assert np.array_equal(out, img)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    frame=st.tuples(
        st.integers(0, 2**31 - 1),
        st.integers(1, 200),
        st.integers(1, 200),
        st.sampled_from(["grey", "3", "4"]),
        st.sampled_from(["uint8", "uint16", "float32"]),
    ),
    strength=st.floats(0.0, 1.0),
)
def test_real_model_any_frame(frame: tuple[int, int, int, str, str], strength: float) -> None:
    """The bundled model (and the default guards, face detector included) on odd frames."""
    with BackgroundBlur(strength=strength) as bb:
        check_invariants(bb, make_image(*frame))
