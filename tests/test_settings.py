"""settings.build_settings (the one builder every front end uses) and settings_digest."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from blurcam.errors import SettingsError
from blurcam.settings import (
    OPTIONS,
    SPEED_ONLY,
    Settings,
    build_settings,
    settings_digest,
)


def test_options_come_as_strings_or_typed_values() -> None:
    s = build_settings(
        strength="0.25",
        face_guard="false",
        depth_every="4",
        keep_box="10, 20,30,40",
        effect="bokeh",
        highlights=0.1,
    )
    assert s.effect.strength == 0.25 and s.effect.kind == "bokeh"
    assert s.guards.face is False and s.effect.depth_every == 4
    assert s.effect.keep_box == (10.0, 20.0, 30.0, 40.0) and s.effect.keep_point is None
    assert s.effect.highlights == 0.1
    assert build_settings(keep=[5, 6]).effect.keep_point == (5.0, 6.0)


def test_none_leaves_a_value_or_means_none_for_paths() -> None:
    base = build_settings(strength=0.3, background="bg.png", keep="1,2")
    s = build_settings(base, strength=None, background=None, keep=None)
    assert s.effect.strength == 0.3
    assert s.effect.background is None and s.effect.keep_point is None


def test_keep_and_keep_box_replace_each_other() -> None:
    s = build_settings(keep="1,2")
    s = build_settings(s, keep_box="1,2,3,4")
    assert s.effect.keep_point is None and s.effect.keep_box == (1.0, 2.0, 3.0, 4.0)
    with pytest.raises(SettingsError, match="not both"):
        build_settings(keep="1,2", keep_box="1,2,3,4")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"colour": "red"}, "unknown option"),
        ({"strength": "lots"}, "strength must be a number"),
        ({"strength": True}, "strength must be a number"),
        ({"strength": 1.5}, r"strength must be in \[0.0, 1.0\]"),
        ({"threads": "2.5"}, "threads must be a whole number"),
        ({"face_guard": "maybe"}, "face_guard must be true or false"),
        ({"keep": "1"}, "--keep expects 2"),
        ({"effect": "sparkles"}, "effect must be one of"),
        ({"people": "some"}, "people must be"),
    ],
)
def test_bad_values_say_what_is_wrong(options: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        build_settings(**options)


def test_every_option_reaches_its_field() -> None:
    for name, (section, fld) in OPTIONS.items():
        assert hasattr(getattr(Settings(), section), fld), name


def _changed(value: object) -> object:
    """Another valid value of the same kind (for the digest test)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 if value else 0.5
    return value


def test_digest_follows_every_setting_but_threads_and_device() -> None:
    base = Settings()
    seen = {settings_digest(base)}
    for section in ("segment", "mask", "guards", "effect"):
        sec = getattr(base, section)
        for f in dataclasses.fields(sec):
            value = getattr(sec, f.name)
            new = _changed(value)
            if new == value:
                continue  # strings and optional paths: covered below
            try:
                changed = dataclasses.replace(
                    base, **{section: dataclasses.replace(sec, **{f.name: new})}
                )
            except SettingsError:
                continue  # a paired bound (edge_low < edge_high ...): its twin moves instead
            speed_only = any(OPTIONS[o] == (section, f.name) for o in SPEED_ONLY)
            digest = settings_digest(changed)
            if speed_only:
                assert digest == settings_digest(base), f.name
            else:
                assert digest not in seen, f"{section}.{f.name} does not change the digest"
                seen.add(digest)
    for options in ({"model": "selfie"}, {"background": "x.png"}, {"people": "main"}):
        assert settings_digest(build_settings(**options)) not in seen
