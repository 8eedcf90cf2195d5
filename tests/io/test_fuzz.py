"""Fuzz the container/frame parsing path with hypothesis-mutated media files.

Seeds are small valid files the test makes (mp4 with its index at the end,
Matroska, WebM); hypothesis overwrites, inserts, deletes and truncates bytes,
biased toward the headers and indexes where parsers branch most. Every mutant
goes through :func:`blurcam.io.video.probe_video`, :func:`iter_frames` and
:func:`transcode` (identity processing: the parser is under test, not the
model). The only outcomes allowed are success, :class:`SourceError` or
:class:`SinkError`, within a time limit per example (a hang fails the test).

The short run (tens of examples per seed) is part of the suite; the long run
is opt-in: ``BLURCAM_FUZZ_EXAMPLES=3000 python -m pytest -m slow tests/test_fuzz.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blurcam.errors import SinkError, SourceError
from blurcam.io import read_image
from blurcam.io.video import iter_frames, probe_video, transcode
from blurcam.testing import synthetic_frame
from media import make_video

LIMIT_S = 30.0  # per example; generous for a loaded 2-core machine, a hang is minutes
ALLOWED = (SourceError, SinkError)


def slow_enabled(config: pytest.Config) -> bool:
    return "slow" in (config.getoption("-m") or "") or bool(os.environ.get("BLURCAM_SLOW"))


@pytest.fixture
def opt_in_slow(request: pytest.FixtureRequest) -> None:
    if not slow_enabled(request.config):
        pytest.skip("long fuzz run: opt in with -m slow")


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    d = tmp_path_factory.mktemp("seeds")
    return {
        "mp4": make_video(d / "s.mp4", frames=6, size=(48, 32), fps=6).read_bytes(),
        "mkv": make_video(d / "s.mkv", frames=6, size=(48, 32), fps=6).read_bytes(),
        "webm": make_video(
            d / "s.webm", frames=6, size=(48, 32), fps=6, audio=False, codec="libvpx-vp9"
        ).read_bytes(),
    }


# One mutation: (kind, where 0..1, length or byte value, payload)
_position = st.one_of(
    st.floats(0.0, 0.05),  # header
    st.floats(0.85, 1.0),  # index at the end (mp4 moov, mkv cues)
    st.floats(0.0, 1.0),
)
mutation = st.one_of(
    st.tuples(st.just("set"), _position, st.integers(0, 255), st.just(b"")),
    st.tuples(st.just("flip"), _position, st.integers(0, 7), st.just(b"")),
    st.tuples(st.just("insert"), _position, st.just(0), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), _position, st.integers(1, 64), st.just(b"")),
    st.tuples(st.just("cut"), st.floats(0.0, 1.0), st.just(0), st.just(b"")),
    st.tuples(
        st.just("int"),  # a 32-bit field set to an edge value (sizes, counts, time bases)
        _position,
        st.sampled_from([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]),
        st.just(b""),
    ),
)


def mutate(data: bytes, ops: list[tuple[str, float, int, bytes]]) -> bytes:
    b = bytearray(data)
    for kind, where, n, payload in ops:
        if not b:
            break
        i = min(len(b) - 1, int(where * len(b)))
        if kind == "set":
            b[i] = n
        elif kind == "flip":
            b[i] ^= 1 << n
        elif kind == "insert":
            b[i:i] = payload
        elif kind == "delete":
            del b[i : i + n]
        elif kind == "cut":
            del b[i:]
        elif kind == "int":
            b[i : i + 4] = n.to_bytes(4, "big")
    return bytes(b)


def within_limit(fn: Callable[[], Any]) -> None:
    """Run ``fn`` in a worker thread; fail on a hang, re-raise what it raised."""
    box: list[BaseException] = []

    def work() -> None:
        try:
            fn()
        except BaseException as e:
            box.append(e)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(LIMIT_S)
    assert not t.is_alive(), f"hang: still running after {LIMIT_S} s"
    if box:
        raise box[0]


def exercise(path: Path, out: Path) -> str:
    """Every parsing entry point; only SourceError/SinkError may escape.

    Returns how ``transcode`` ended: ``ok``, ``SourceError`` or ``SinkError: message``
    (a damaged input should be a SourceError, so SinkErrors are worth reading).
    """
    outcome = "ok"
    for step in (
        lambda: probe_video(path),
        lambda: sum(1 for _ in iter_frames(path)),
        lambda: transcode(path, out, lambda f: f, quality="draft"),
    ):
        outcome = "ok"
        try:
            within_limit(step)
        except SinkError as e:
            outcome = f"SinkError: {e}"
        except SourceError:
            outcome = "SourceError"
    assert not [p for p in out.parent.iterdir() if ".part" in p.name], "temporary left behind"
    return outcome


def _fuzz(seeds: dict[str, bytes], tmp: Path, seed: str, ops: list[Any]) -> str:
    src = tmp / f"in.{seed}"
    src.write_bytes(mutate(seeds[seed], ops))
    out = tmp / "out.mp4"
    out.unlink(missing_ok=True)
    return exercise(src, out)


FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(seed=st.sampled_from(["mp4", "mkv", "webm"]), ops=st.lists(mutation, min_size=1, max_size=6))
def test_fuzz_container_parsing(
    seeds: dict[str, bytes], tmp_path: Path, seed: str, ops: list[Any]
) -> None:
    _fuzz(seeds, tmp_path, seed, ops)


@FUZZ
@given(data=st.binary(min_size=1, max_size=2048))
def test_fuzz_random_bytes(tmp_path: Path, data: bytes) -> None:
    for ext in (".mp4", ".mkv"):
        src = tmp_path / f"rand{ext}"
        src.write_bytes(data)
        out = tmp_path / "out.mp4"
        out.unlink(missing_ok=True)
        exercise(src, out)


# Mutants the long run found; each once crashed with something other than
# SourceError/SinkError (docs/RELIABILITY.md lists the findings).
REGRESSIONS = [
    # unknown audio codec after a 1-byte insert into the mp4 index: AttributeError
    ("mp4", [("insert", 0.9453125, 0, b"\x00")]),
    # Matroska audio track left with sample rate 0 and no channels: the muxer refused
    # the output header (EINVAL), reported as a write error (exit 5) for a bad input
    (
        "mkv",
        [
            ("delete", 0.28806302490130653, 46, b""),
            ("insert", 0.9289182408400084, 0, b"\xa4\x03\xff\xc2\xe3\x99^\x9bJ\xdf\xc1v-"),
            ("insert", 0.04216949515345889, 0, b"\xa6h\xda\x05\r\x18\x83\xfe"),
            ("insert", 0.7734815948636726, 0, b'\xdc\xc7\xed\xb7\x14\xb3\xe7\x05"u2\xd1\xbf\xcd'),
        ],
    ),
]


@pytest.mark.parametrize("seed, ops", REGRESSIONS)
def test_fuzz_regressions(
    seeds: dict[str, bytes], tmp_path: Path, seed: str, ops: list[Any]
) -> None:
    # a damaged input is never reported as a failed write
    assert not _fuzz(seeds, tmp_path, seed, ops).startswith("SinkError")


@FUZZ
@given(
    ext=st.sampled_from([".png", ".jpg", ".webp", ".tif"]),
    ops=st.lists(mutation, min_size=1, max_size=6),
)
def test_fuzz_image_decoding(tmp_path: Path, ext: str, ops: list[Any]) -> None:
    """Mutated still images: read_image returns a BGR frame or raises SourceError."""
    ok, buf = cv2.imencode(ext, synthetic_frame(40, 24))
    assert ok
    src = tmp_path / f"in{ext}"
    src.write_bytes(mutate(buf.tobytes(), ops))

    def read() -> None:
        img = read_image(src)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3

    with contextlib.suppress(SourceError):
        within_limit(read)


def test_seeds_are_valid(seeds: dict[str, bytes], tmp_path: Path) -> None:
    """The unmutated seeds transcode fully (so mutants start from a working parse)."""
    for name, data in seeds.items():
        src = tmp_path / f"s.{name}"
        src.write_bytes(data)
        assert transcode(src, tmp_path / f"o{name}.mp4", lambda f: f) == 6
        assert [f.shape for f, _ in iter_frames(src)] == [(32, 48, 3)] * 6


def test_mutate_is_deterministic() -> None:
    data = bytes(range(256)) * 4
    ops = [("set", 0.0, 7, b""), ("insert", 0.5, 0, b"xy"), ("cut", 0.9, 0, b"")]
    assert mutate(data, ops) == mutate(data, ops)
    assert mutate(data, ops)[0] == 7 and len(mutate(data, ops)) < len(data)
    assert np.frombuffer(mutate(data, [("flip", 0.0, 0, b"")]), np.uint8)[0] == 1


@pytest.mark.slow
def test_fuzz_long(opt_in_slow: None, seeds: dict[str, bytes], tmp_path: Path) -> None:
    """The long run documented in docs/RELIABILITY.md (BLURCAM_FUZZ_EXAMPLES per seed kind)."""
    n = int(os.environ.get("BLURCAM_FUZZ_EXAMPLES", "2000"))

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        seed=st.sampled_from(["mp4", "mkv", "webm"]),
        ops=st.lists(mutation, min_size=1, max_size=8),
    )
    def run(seed: str, ops: list[Any]) -> None:
        key = f"{seed}:{_fuzz(seeds, tmp_path, seed, ops)}"
        tally[key] = tally.get(key, 0) + 1

    tally: dict[str, int] = {}
    t0 = time.perf_counter()
    run()
    report = {"examples": sum(tally.values()), "seconds": round(time.perf_counter() - t0)}
    report.update(sorted(tally.items()))
    print("fuzz tally (transcode outcome per seed):", json.dumps(report))
