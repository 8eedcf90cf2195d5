from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blurcam.upscale import upscale_linear


@settings(max_examples=80, deadline=None)
@given(
    sh=st.integers(1, 30),
    sw=st.integers(1, 30),
    h=st.integers(1, 90),
    w=st.integers(1, 90),
    ch=st.sampled_from([0, 1, 3]),
    seed=st.integers(0, 2**16),
)
def test_within_one_level_of_opencv(sh: int, sw: int, h: int, w: int, ch: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    src = rng.integers(0, 256, (sh, sw) + ((ch,) if ch else ()), dtype=np.uint8)
    got = upscale_linear(src, (w, h))
    ref = cv2.resize(src, (w, h), interpolation=cv2.INTER_LINEAR)
    assert got.shape == (h, w) + ((ch,) if ch else ())
    # random noise (neighbours up to 255 apart) is the worst case for the
    # rounding of the two passes; smooth images stay within one level
    assert np.abs(got.astype(int) - ref.reshape(got.shape)).max() <= 2
    smooth = cv2.GaussianBlur(src, (0, 0), 2).reshape(src.shape)
    ref_s = cv2.resize(smooth, (w, h), interpolation=cv2.INTER_LINEAR).reshape(got.shape)
    assert np.abs(upscale_linear(smooth, (w, h)).astype(int) - ref_s).max() <= 1


def test_writes_into_out_and_keeps_flat_regions_exact() -> None:
    src = np.full((9, 16, 3), 200, np.uint8)
    src[:, 8:] = 10
    out = np.zeros((90, 160, 3), np.uint8)
    assert upscale_linear(src, (160, 90), out) is out
    assert (out[:, :70] == 200).all() and (out[:, 90:] == 10).all()  # constant runs stay exact
    assert np.abs(out.astype(int) - cv2.resize(src, (160, 90)).astype(int)).max() <= 1


@pytest.mark.parametrize("out_shape", [(90, 160), (45, 80, 3)])
def test_unusable_out_is_replaced(out_shape: tuple[int, ...]) -> None:
    src = np.zeros((9, 16, 3), np.uint8)
    out = np.zeros(out_shape, np.uint8)
    got = upscale_linear(src, (160, 90), out)
    assert got is not out and got.shape == (90, 160, 3)


def test_non_contiguous_out_is_not_written_blindly() -> None:
    src = np.arange(9 * 16, dtype=np.uint8).reshape(9, 16)
    big = np.zeros((90, 320), np.uint8)
    view = big[:, ::2]  # right shape, but not contiguous
    got = upscale_linear(src, (160, 90), view)
    assert np.abs(got.astype(int) - cv2.resize(src, (160, 90)).astype(int)).max() <= 1
