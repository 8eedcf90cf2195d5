from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blurcam.composite import blend, blend_reference


def _layers(h: int, w: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    fg = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    bg = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    # mostly 0 / 255 with a random band of mixed values, like a real matte
    alpha = np.where(rng.random((h, w)) < 0.5, 0, 255).astype(np.uint8)
    band = rng.random((h, w)) < 0.2
    alpha[band] = rng.integers(1, 255, int(band.sum()), dtype=np.uint8)
    return fg, bg, alpha


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_blend_matches_reference(h: int, w: int, seed: int) -> None:
    fg, bg, alpha = _layers(h, w, seed)
    expected = blend_reference(fg, bg, alpha)
    assert np.array_equal(blend(fg, bg, alpha), expected)
    out = np.empty_like(fg)
    assert np.array_equal(blend(fg, bg, alpha, out=out), expected)
    bg2 = bg.copy()
    assert np.array_equal(blend(fg, bg2, alpha, out=bg2), expected)  # in place


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 70), seed=st.integers(0, 2**16))
def test_runs_of_background_and_person_match_reference(h: int, w: int, seed: int) -> None:
    """Real mattes are long runs of 0 and 255 (the kernel skips or copies eight
    pixels at a time there) with a few mixed pixels; rows of any width and
    offset, including a view whose rows do not start on a word boundary."""
    rng = np.random.default_rng(seed)
    fg, bg, _ = _layers(h, w + 3, seed)
    cuts = np.sort(rng.integers(0, w + 3, 4))
    alpha = np.zeros((h, w + 3), np.uint8)
    alpha[:, cuts[0] : cuts[1]] = 255
    alpha[:, cuts[2] : cuts[3]] = 255
    alpha[:, cuts[1] : cuts[1] + 2] = rng.integers(1, 255, (h, 1), dtype=np.uint8)
    for a, f, b in ((alpha, fg, bg), (alpha[:, 3:], fg[:, 3:], bg[:, 3:])):
        assert np.array_equal(blend(f, b, a), blend_reference(f, b, a))


def test_split_across_a_thread_matches_reference() -> None:
    from concurrent.futures import ThreadPoolExecutor

    fg, bg, alpha = _layers(401, 723, 7)  # odd height: halves of different sizes
    with ThreadPoolExecutor(1) as pool:
        got = blend(fg, bg, alpha, pool=pool)
    assert np.array_equal(got, blend_reference(fg, bg, alpha))


def test_reference_is_exact_at_the_ends() -> None:
    fg, bg, _ = _layers(16, 16, 1)
    assert np.array_equal(blend(fg, bg, np.full((16, 16), 255, np.uint8)), fg)
    assert np.array_equal(blend(fg, bg, np.zeros((16, 16), np.uint8)), bg)


def test_reference_within_one_of_exact_division() -> None:
    f, b, a = np.meshgrid(np.arange(0, 256, 5), np.arange(0, 256, 7), np.arange(256), indexing="ij")
    fg = f.reshape(-1, 1, 1).astype(np.uint8).repeat(3, axis=2)
    bg = b.reshape(-1, 1, 1).astype(np.uint8).repeat(3, axis=2)
    al = a.reshape(-1, 1).astype(np.uint8)
    exact = np.round((f * a + b * (255 - a)) / 255.0).reshape(-1)
    got = blend_reference(fg, bg, al)[:, 0, 0].astype(int)
    assert np.abs(got - exact).max() <= 1


def test_unwritable_kernel_cache_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """numba raises OSError when its on-disk cache cannot be written (full disk):
    the blend must still happen, compiled in memory."""
    from blurcam import composite

    def no_disk(*args: object) -> None:
        raise OSError(27, "File too large")

    monkeypatch.setattr(composite._blend_inplace, "cached", no_disk)
    fg, bg, alpha = _layers(16, 24, 3)
    assert np.array_equal(blend(fg, bg, alpha), blend_reference(fg, bg, alpha))


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 60),
    w=st.integers(1, 90),
    ka=st.integers(1, 4),
    kb=st.integers(1, 12),
    seed=st.integers(0, 2**16),
)
def test_render_is_upsample_then_blend_in_one_pass(
    h: int, w: int, ka: int, kb: int, seed: int
) -> None:
    """render() == upscale_linear of the alpha and the layer, then blend(), exactly: the
    one-pass kernel only avoids writing the full-resolution alpha and background."""
    from blurcam.composite import render, render_reference

    rng = np.random.default_rng(seed)
    fg, _, _ = _layers(h, w, seed)
    alpha = np.where(rng.random((max(1, h // ka), max(1, w // ka))) < 0.5, 0, 255).astype(np.uint8)
    alpha[rng.random(alpha.shape) < 0.2] = 77
    small = rng.integers(0, 256, (max(1, h // kb), max(1, w // kb), 3), dtype=np.uint8)
    for layer in (small, rng.integers(0, 256, (h, w, 3), dtype=np.uint8)):
        assert np.array_equal(render(fg, alpha, layer), render_reference(fg, alpha, layer))


def test_render_split_across_a_thread_matches_one_thread() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from blurcam.composite import render, render_reference

    fg, _, alpha = _layers(721, 1283, 3)  # odd sizes: halves of different sizes
    small_alpha = alpha[::3, ::3].copy()
    layer = fg[::11, ::11].copy()
    with ThreadPoolExecutor(1) as pool:
        got = render(fg, small_alpha, layer, pool=pool)
    assert np.array_equal(got, render_reference(fg, small_alpha, layer))
