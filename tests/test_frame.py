"""blurcam.frame.as_bgr: every dtype a caller may hand in, read as it is meant or refused."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from blurcam import BackgroundBlur, InputWarning, SettingsError
from blurcam.frame import as_bgr
from blurcam.testing import FakeSegmenter, synthetic_frame


def _quiet(img: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning where nothing was guessed
        return as_bgr(img)


def test_every_dtype_in_its_own_range_is_read_without_a_word() -> None:
    ref = synthetic_frame(16, 12)
    assert np.array_equal(_quiet(ref), ref)
    assert np.array_equal(_quiet(ref.astype(np.uint16) * 257), ref)  # 16-bit range
    back = _quiet(ref.astype(np.float64) / 255.0)  # float 0..1
    assert np.abs(back.astype(int) - ref).max() <= 1
    assert np.array_equal(_quiet(np.ones((4, 4), bool)), np.full((4, 4, 3), 255, np.uint8))


def test_float_frame_holding_0_255_is_read_as_such_with_a_warning() -> None:
    """Issue 15 item 8: a float64 frame holding 0..255 came out half white, silently."""
    ref = synthetic_frame(16, 12)
    with pytest.warns(InputWarning, match="read as 0..255"):
        got = as_bgr(ref.astype(np.float64))
    assert np.array_equal(got, ref)


def test_uint16_frame_holding_0_255_is_read_as_8_bit_with_a_warning() -> None:
    """Issue 15 item 8: a uint16 frame holding 0..255 came out black, silently."""
    ref = synthetic_frame(16, 12)
    with pytest.warns(InputWarning, match="8-bit"):
        got = as_bgr(ref.astype(np.uint16))
    assert np.array_equal(got, ref)


def test_nan_and_out_of_range_floats_are_refused_in_one_line() -> None:
    """Issue 15 item 8: NaN printed a numpy RuntimeWarning; now a clear error, no warning."""
    nan = np.full((4, 4, 3), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(SettingsError, match="NaN or infinite"):
            as_bgr(nan)
        with pytest.raises(SettingsError, match=r"must hold 0\.\.1"):
            as_bgr(np.full((4, 4, 3), 1000.0))
        with pytest.raises(SettingsError, match="unsupported image dtype"):
            as_bgr(np.zeros((4, 4, 3), np.complex64))
    with pytest.raises(SettingsError):
        BackgroundBlur(segmenter=FakeSegmenter()).process(nan)


def test_wide_integers_are_clipped_with_a_warning() -> None:
    with pytest.warns(InputWarning, match="clipped"):
        got = as_bgr(np.full((4, 4, 3), 300, np.int32))
    assert (got == 255).all()
