"""Short soak in the suite (the long run is ``benchmarks/soak.py``, documented in RELIABILITY.md).

Memory is asserted with a wide margin (a per-frame leak of even one small
frame buffer shows up as tens of MiB); time is only reported, never asserted.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

SOAK = Path(__file__).resolve().parents[1] / "benchmarks" / "soak.py"


def load_soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("blurcam_soak", SOAK)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["blurcam_soak"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_short_soak_model_free() -> None:
    soak = load_soak()
    r = soak.soak(1000, size=(96, 64), fake=True, sample=50)
    assert r.frames == 1000
    # 900 leaked 96x64x3 frames after warm-up would be ~16 MiB; allow allocator noise only.
    assert r.rss_end_mib - r.rss_warm_mib < 8, r
    assert len(r.window_median_ms) == 10 and all(v > 0 for v in r.window_median_ms)


def test_short_soak_real_model_and_cli(tmp_path: Path) -> None:
    soak = load_soak()
    out = tmp_path / "soak.json"
    args = ["--frames", "150", "--size", "64x48", "--sample", "25", "--json", str(out)]
    assert soak.main(args) == 0

    r = json.loads(out.read_text())
    assert r["frames"] == 150 and r["rss_max_mib"] > 0


@pytest.mark.slow
def test_long_soak(request: pytest.FixtureRequest) -> None:
    """The documented run: 100k frames, real model (opt in with -m slow; ~10-20 minutes)."""
    if "slow" not in (request.config.getoption("-m") or "") and not os.environ.get("BLURCAM_SLOW"):
        pytest.skip("long soak: opt in with -m slow")
    soak = load_soak()
    r = soak.soak(100_000, size=(160, 96))
    assert abs(r.rss_slope_mib_per_10k) < 1.0, r
