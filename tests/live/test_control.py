"""The local control API: validation, what it changes, and what it refuses."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator

import pytest

from blurcam.errors import SettingsError
from blurcam.live.control import MAX_BODY, ControlServer, apply_controls
from blurcam.live.runner import LiveRunner
from blurcam.live.sinks import NullSink, PreviewSink
from blurcam.live.sources import Frame
from blurcam.testing import FakeSegmenter, synthetic_frame


class IdleSource:
    size = (64, 48)
    fps = 30.0
    status = "ok"
    skipped = 0

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(synthetic_frame(64, 48), time.monotonic(), 0)

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def runner() -> LiveRunner:
    return LiveRunner(IdleSource(), [NullSink()], segmenter=FakeSegmenter())


def test_apply_controls_builds_new_settings(runner: LiveRunner) -> None:
    before = runner.settings
    state = apply_controls(runner, {"strength": 0.2, "effect": "none", "enabled": False})
    assert runner.settings.effect.strength == 0.2 and runner.settings.effect.kind == "none"
    assert before.effect.strength == 0.7, "settings are replaced, never mutated"
    assert state["enabled"] is False and state["strength"] == 0.2
    assert runner.applied.effect.kind == "none"  # handed to the stream
    apply_controls(runner, {"model": "selfie"})
    assert runner.settings.segment.model == "selfie"


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"strength": 2.0}, "strength"),
        ({"strength": "lots"}, "number"),
        ({"effect": "sparkles"}, "effect"),
        ({"model": "/etc/passwd"}, "model must be one of"),
        ({"enabled": "yes"}, "true or false"),
        ({"volume": 11}, "unknown control"),
    ],
)
def test_apply_controls_refuses_bad_values(
    runner: LiveRunner, changes: dict[str, object], needle: str
) -> None:
    before = runner.settings
    with pytest.raises(SettingsError, match=needle):
        apply_controls(runner, changes)
    assert runner.settings == before and runner.enabled


def _request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def test_http_api_state_and_settings(runner: LiveRunner) -> None:
    with ControlServer(runner, port=0) as server:
        code, body = _request(server.port, "GET", "/api/state")
        assert code == 200 and json.loads(body)["strength"] == 0.7
        payload = json.dumps({"strength": 0.3, "enabled": False}).encode()
        code, body = _request(
            server.port, "POST", "/api/settings", payload, {"Content-Type": "application/json"}
        )
        assert code == 200 and json.loads(body)["enabled"] is False
        assert runner.settings.effect.strength == 0.3 and not runner.enabled
        code, body = _request(
            server.port,
            "POST",
            "/api/settings",
            b'{"strength": 9}',
            {"Content-Type": "application/json"},
        )
        assert code == 400 and "strength" in json.loads(body)["error"]
        code, page = _request(server.port, "GET", "/")
        assert code == 200 and b"/api/settings" in page


def test_http_api_refuses_what_a_web_page_could_abuse(runner: LiveRunner) -> None:
    with ControlServer(runner, port=0) as server:
        p = server.port
        # a cross-site form post cannot set a JSON content type
        code, _ = _request(
            p, "POST", "/api/settings", b"strength=0", {"Content-Type": "text/plain"}
        )
        assert code == 415
        # DNS rebinding: a foreign host name pointing at 127.0.0.1
        code, _ = _request(p, "GET", "/api/state", headers={"Host": "evil.example:80"})
        assert code == 403
        code, _ = _request(
            p,
            "POST",
            "/api/settings",
            b'{"enabled": false}',
            {"Content-Type": "application/json", "Origin": "https://evil.example"},
        )
        assert code == 403
        big = b'{"x": "' + b"a" * MAX_BODY + b'"}'
        code, _ = _request(p, "POST", "/api/settings", big, {"Content-Type": "application/json"})
        assert code == 413
        code, _ = _request(p, "GET", "/../../etc/passwd")
        assert code == 404
    assert runner.enabled and runner.settings.effect.strength == 0.7


def test_server_binds_loopback_only(runner: LiveRunner) -> None:
    with ControlServer(runner, port=0) as server:
        assert server._httpd.server_address[0] == "127.0.0.1"


def test_mjpeg_preview_stream(runner: LiveRunner) -> None:
    pv = PreviewSink()
    with ControlServer(runner, port=0, preview=pv) as server:
        feeder = threading.Timer(0.2, lambda: pv.write(synthetic_frame(64, 48), 0.0))
        feeder.start()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/stream.mjpg")
        r = conn.getresponse()
        assert r.status == 200 and "multipart/x-mixed-replace" in r.getheader("Content-Type", "")
        head = r.read(200)
        assert b"--frame" in head and b"\xff\xd8" in head
        conn.close()
        feeder.join()


def test_port_taken_is_a_clear_error(runner: LiveRunner) -> None:
    from blurcam.errors import DeviceUnavailableError

    with (
        ControlServer(runner, port=0) as first,
        pytest.raises(DeviceUnavailableError, match="--control-port"),
    ):
        ControlServer(runner, port=first.port)
