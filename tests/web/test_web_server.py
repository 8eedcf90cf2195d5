"""``blurcam serve``'s app without a browser: limits, bad offers, cleanup, security.

A Python aiortc peer plays the browser (a synthetic camera track), so these
run wherever aiortc is installed; the real-Chromium test is test_web_e2e.py.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import cv2
import numpy as np
import pytest

pytest.importorskip("aiortc")
pytest.importorskip("aiohttp")

import av
from aiohttp.test_utils import TestClient, TestServer
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError

from blurcam.testing import FakeSegmenter, synthetic_frame
from blurcam.web.server import MAX_SDP_BYTES, SERVER, create_app


class Camera(VideoStreamTrack):
    """A synthetic 320x240 camera at 30 fps."""

    def __init__(self) -> None:
        super().__init__()
        self.img = synthetic_frame(320, 240)

    async def recv(self) -> av.VideoFrame:
        pts, tb = await self.next_timestamp()
        f = av.VideoFrame.from_ndarray(self.img, format="bgr24")
        f.pts, f.time_base = pts, tb
        return f


def assert_background_blurred(img: np.ndarray) -> None:
    """The synthetic camera's background stripes (columns of 8 px in green) are smoothed:
    the output has far less horizontal detail there than the camera frame."""
    src = synthetic_frame(320, 240)
    top = (slice(0, 30), slice(0, 320), 1)
    assert (
        np.abs(np.diff(img[top].astype(int), axis=1)).mean()
        < 0.5 * np.abs(np.diff(src[top].astype(int), axis=1)).mean()
    )


def our_threads() -> set[str]:
    """Threads a peer starts: our worker and aiortc's decoder."""
    return {t.name for t in threading.enumerate() if "blurcam" in t.name or "decoder" in t.name}


@asynccontextmanager
async def served(**kw: Any) -> AsyncIterator[TestClient]:
    kw.setdefault("segmenter_factory", lambda s, size: FakeSegmenter())
    kw.setdefault("ice_addresses", ["127.0.0.1"])
    app = create_app(**kw)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


class Browser:
    """The Python stand-in for a page: sends a camera, counts what comes back."""

    def __init__(self, audio: bool = False, video: bool = True) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        if video:
            self.pc.addTrack(Camera())
        if audio:
            self.pc.addTrack(AudioStreamTrack())
        self.frames: list[av.VideoFrame] = []
        self._tasks: list[asyncio.Task[None]] = []

        @self.pc.on("track")
        def on_track(track: Any) -> None:
            self._tasks.append(asyncio.ensure_future(self._pull(track)))

    async def _pull(self, track: Any) -> None:
        try:
            while True:
                self.frames.append(await track.recv())
        except MediaStreamError:
            pass

    async def offer(self) -> dict[str, Any]:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return {"sdp": self.pc.localDescription.sdp, "type": "offer"}

    async def connect(self, client: TestClient) -> tuple[int, dict[str, Any]]:
        resp = await client.post("/offer", json=await self.offer())
        body = await resp.json()
        if resp.status == 200:
            await self.pc.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))
        return resp.status, body

    async def close(self) -> None:
        await self.pc.close()
        for t in self._tasks:
            t.cancel()


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            return False
        await asyncio.sleep(0.05)
    return True


def run(coro: Awaitable[None]) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


# ------------------------------------------------------------------ peers
def test_stream_flows_and_busy_beyond_max_clients() -> None:
    async def main() -> None:
        async with served(max_clients=1) as client:
            server = client.app[SERVER]
            a, b = Browser(), Browser()
            status, body = await a.connect(client)
            assert status == 200 and body["id"] in server.peers
            assert await until(lambda: len(a.frames) >= 3), "no processed frames came back"
            status, body = await b.connect(client)
            assert status == 503
            assert "busy" in body["error"] and "limit is 1" in body["error"]
            assert len(server.peers) == 1
            # the first leaves (the page's sendBeacon): the slot is free again
            (a_id,) = server.peers
            assert (await client.post(f"/peer/{a_id}/close")).status == 200
            assert not server.peers
            b2 = Browser()
            status, _ = await b2.connect(client)
            assert status == 200
            assert await until(lambda: len(b2.frames) >= 1)
            for p in (a, b, b2):
                await p.close()
            assert await until(lambda: not server.peers)

    run(main())


def test_processed_frames_keep_timestamps_and_are_blurred() -> None:
    async def main() -> None:
        async with served() as client:
            br = Browser()
            assert (await br.connect(client))[0] == 200
            assert await until(lambda: len(br.frames) >= 5)
            pts = [f.pts for f in br.frames]
            assert pts == sorted(pts)
            assert_background_blurred(br.frames[-1].to_ndarray(format="bgr24"))
            await br.close()

    run(main())


def test_cleanup_after_disconnect_and_on_shutdown() -> None:
    before = our_threads()
    refs: list[weakref.ref[Any]] = []

    async def main() -> None:
        async with served() as client:
            server = client.app[SERVER]
            a, b = Browser(), Browser()
            assert (await a.connect(client))[0] == 200
            assert (await b.connect(client))[0] == 200
            assert await until(lambda: len(a.frames) >= 2 and len(b.frames) >= 2)
            assert len(server.peers) == 2
            for p in server.peers.values():
                assert p.track is not None
                refs.extend(weakref.ref(o) for o in (p.track, p.track._stream, p.pc))
            await a.close()  # the browser goes away without saying goodbye
            assert await until(lambda: len(server.peers) == 1), "peer not closed on disconnect"
            # b stays connected until the server stops
        # leaving `served` shut the app down: every peer closed
        assert not server.peers
        await b.close()

    run(main())
    time.sleep(0.2)
    assert our_threads() - before == set()
    # nothing of the peers stays reachable (their frames, buffers, models)
    gc.collect()
    assert [r for r in refs if r() is not None] == []


# -------------------------------------------------------------- bad offers
@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"sdp": "v=0", "type": "answer"}).encode(), "expected"),
        (json.dumps({"sdp": "hello", "type": "offer"}).encode(), "bad SDP"),
        (json.dumps({"sdp": "v=0\r\nm=video 9 UDP\r\n", "type": "offer"}).encode(), "bad SDP"),
        (
            json.dumps({"sdp": "v=0 m=video" + "a" * MAX_SDP_BYTES, "type": "offer"}).encode(),
            "large",
        ),
    ],
)
def test_bad_offers_get_400_with_a_message(body: bytes, needle: str) -> None:
    async def main() -> None:
        async with served() as client:
            resp = await client.post(
                "/offer", data=body, headers={"Content-Type": "application/json"}
            )
            assert resp.status == 400
            assert needle in (await resp.json())["error"]
            assert not client.app[SERVER].peers

    run(main())


def test_offer_without_video_is_refused() -> None:
    async def main() -> None:
        async with served() as client:
            br = Browser(audio=True, video=False)
            status, body = await br.connect(client)
            assert status == 400 and "video" in body["error"]
            assert not client.app[SERVER].peers
            await br.close()

    run(main())


def test_bad_settings_in_offer_are_refused() -> None:
    async def main() -> None:
        async with served() as client:
            br = Browser()
            offer = await br.offer()
            for bad in ({"model": "/etc/passwd"}, {"strength": 5}, {"effect": "sparkle"}, [1]):
                resp = await client.post("/offer", json={**offer, "settings": bad})
                assert resp.status == 400, bad
            assert not client.app[SERVER].peers
            await br.close()

    run(main())


# --------------------------------------------------------------- controls
def test_live_controls_change_the_track() -> None:
    async def main() -> None:
        async with served() as client:
            server = client.app[SERVER]
            br = Browser()
            _, body = await br.connect(client)
            pid = body["id"]
            resp = await client.post(
                f"/peer/{pid}/settings",
                json={"effect": "blur", "strength": 0.3, "model": "selfie", "enabled": False},
            )
            got = await resp.json()
            assert resp.status == 200
            assert (got["strength"], got["model"], got["enabled"]) == (0.3, "selfie", False)
            track = server.peers[pid].track
            assert track is not None and track.settings.effect.strength == 0.3
            for bad in ({"model": "../../etc/passwd"}, {"strength": "x"}, {"effect": "nope"}):
                resp = await client.post(f"/peer/{pid}/settings", json=bad)
                assert resp.status == 400, bad
            resp = await client.post(f"/peer/{pid}/settings", data=b"{" * 10_000)
            assert resp.status == 413
            resp = await client.get(f"/peer/{pid}/stats")
            assert (await resp.json())["id"] == pid
            assert (await client.get("/peer/nope/stats")).status == 404
            await br.close()

    run(main())


# --------------------------------------------------------------- security
def test_static_files_are_a_fixed_list() -> None:
    async def main() -> None:
        async with served() as client:
            resp = await client.get("/")
            assert resp.status == 200 and "blurcam" in await resp.text()
            assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
            for name in ("app.js", "style.css", "index.html"):
                assert (await client.get(f"/static/{name}")).status == 200
            for bad in (
                "/static/../server.py",
                "/static/%2e%2e/server.py",
                "/static/..%2fserver.py",
                "/static/%2e%2e%2f%2e%2e%2fsettings.py",
                "/static/__init__.py",
                "/static/",
                "/static//etc/passwd",
                "/static/%2fetc%2fpasswd",
            ):
                resp = await client.get(bad)
                assert resp.status == 404, bad
                assert "import" not in await resp.text()

    run(main())


def test_page_loads_nothing_from_outside() -> None:
    from importlib import resources

    root = resources.files("blurcam.web") / "static"
    for name in ("index.html", "app.js", "style.css"):
        text = (root / name).read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, name


def test_foreign_host_and_origin_are_refused() -> None:
    async def main() -> None:
        async with served() as client:
            resp = await client.get("/", headers={"Host": "evil.example:8080"})
            assert resp.status == 403  # DNS rebinding
            resp = await client.post(
                "/offer",
                json={"sdp": "v=0", "type": "offer"},
                headers={"Origin": "https://evil.example"},
            )
            assert resp.status == 403
            host = f"127.0.0.1:{client.port}"
            resp = await client.get("/info", headers={"Origin": f"http://{host}"})
            assert resp.status == 200

    run(main())


def test_open_host_list_for_public_bind() -> None:
    async def main() -> None:
        async with served(allowed_hosts=None) as client:
            resp = await client.get("/", headers={"Host": "192.168.1.20:8080"})
            assert resp.status == 200

    run(main())


def test_upload_limits() -> None:
    async def main() -> None:
        async with served(max_upload_bytes=50_000) as client:
            br = Browser()
            _, body = await br.connect(client)
            pid = body["id"]
            resp = await client.post(f"/peer/{pid}/background", data=b"\0" * 60_000)
            assert resp.status == 413
            resp = await client.post(f"/peer/{pid}/background", data=b"/etc/passwd")
            assert resp.status == 400 and "PNG" in (await resp.json())["error"]
            await br.close()

    run(main())


def test_never_connected_peer_is_dropped() -> None:
    async def main() -> None:
        async with served(connect_timeout=0.3) as client:
            br = Browser()
            resp = await client.post("/offer", json=await br.offer())  # answer never applied
            assert resp.status == 200
            assert await until(lambda: not client.app[SERVER].peers, 5.0)
            await br.close()

    run(main())


def test_serve_warns_off_localhost(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from blurcam.cli.app import main
    from blurcam.web import server

    calls: list[tuple[str, int, int]] = []
    monkeypatch.setattr(
        server, "run", lambda host, port, max_clients, **kw: calls.append((host, port, max_clients))
    )
    assert main(["serve", "--host", "0.0.0.0", "--port", "9", "--max-clients", "2"]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "0.0.0.0" in err
    assert calls == [("0.0.0.0", 9, 2)]
    assert main(["serve"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert calls[-1] == ("127.0.0.1", 8080, 4)


def test_serve_port_in_use_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from blurcam.cli.app import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err


def test_upload_decoding_in_memory() -> None:
    from blurcam.errors import SourceError
    from blurcam.io.image import image_header
    from blurcam.web.upload import decode_upload

    img = synthetic_frame(97, 61)
    for ext, fmt in ((".png", "png"), (".jpg", "jpeg"), (".webp", "webp")):
        ok, buf = cv2.imencode(ext, img)
        assert ok
        assert image_header(buf.tobytes()) == (fmt, 97, 61)
        assert decode_upload(buf.tobytes()).shape == (61, 97, 3)
    ok, buf = cv2.imencode(".webp", img, [cv2.IMWRITE_WEBP_QUALITY, 101])  # lossless: VP8L
    assert image_header(buf.tobytes()) == ("webp", 97, 61)
    # a PNG whose header claims 100000 x 100000: refused before any decoding
    ok, buf = cv2.imencode(".png", img)
    bomb = bytearray(buf.tobytes())
    bomb[16:24] = (100_000).to_bytes(4, "big") * 2
    for data, needle in (
        (bytes(bomb), "too large"),
        (b"", "empty"),
        (b"GIF89a....", "not a PNG"),
        (b"\x89PNG\r\n\x1a\n", "corrupt"),
        (buf.tobytes()[:100], "cannot decode"),
        (b"\xff\xd8\xff" + b"\x00" * 10, "JPEG"),
    ):
        with pytest.raises(SourceError, match=needle):
            decode_upload(data)
    with pytest.raises(SourceError, match="too large"):
        decode_upload(buf.tobytes(), max_bytes=10)


def test_background_upload_and_keep_controls() -> None:
    from blurcam.pipeline import Stream
    from blurcam.web.track import has_effect_field

    async def main() -> None:
        async with served() as client:
            info = await (await client.get("/info")).json()
            assert info["background"] == hasattr(Stream, "set_background")
            assert info["keep"] == has_effect_field("keep_point")
            br = Browser()
            _, body = await br.connect(client)
            pid = body["id"]
            server = client.app[SERVER]
            png = cv2.imencode(".png", np.full((30, 40, 3), (0, 255, 0), np.uint8))[1]
            resp = await client.post(
                f"/peer/{pid}/background", data=png.tobytes(), headers={"Content-Type": "image/png"}
            )
            if info["background"]:
                got = await resp.json()
                assert resp.status == 200 and got["effect"] == "replace", got
                assert got["background"] == [40, 30]
                n = len(br.frames)
                assert await until(lambda: len(br.frames) >= n + 6)
                corner = br.frames[-1].to_ndarray(format="bgr24")[:16, :16].reshape(-1, 3)
                assert corner.mean(axis=0)[1] > 180  # green background arrived
                resp = await client.post(f"/peer/{pid}/background?clear=1")
                assert (await resp.json())["effect"] == "blur"
            else:
                assert resp.status == 501
            resp = await client.post(f"/peer/{pid}/keep", json={"x": 0.5, "y": 0.25})
            if info["keep"]:
                assert resp.status == 200 and (await resp.json())["keep"] == [0.5, 0.25]
                track = server.peers[pid].track
                assert track is not None
                n = len(br.frames)
                assert await until(lambda: len(br.frames) >= n + 3)
                assert track._stream.settings.effect.keep_point == (160, 60)
                for bad in ({"x": 2, "y": 0}, {"x": "a"}, {}):
                    resp = await client.post(f"/peer/{pid}/keep", json=bad)
                    assert resp.status == 400, bad
                resp = await client.post(f"/peer/{pid}/keep", json={"clear": True})
                assert (await resp.json())["keep"] is None
            else:
                assert resp.status == 501
            await br.close()

    run(main())


def test_docs_example_app_blurs(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/examples/web_track.py (shown in docs/WEB.md) works as printed."""
    import importlib.util
    from pathlib import Path

    import aioice.ice

    import blurcam.segment.registry

    path = Path(__file__).resolve().parents[2] / "docs" / "examples" / "web_track.py"
    spec = importlib.util.spec_from_file_location("web_track_example", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    # loopback-only ICE (CI may have no network card) and no model file needed
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
    monkeypatch.setattr(blurcam.segment.registry, "open_segmenter", lambda *a, **k: FakeSegmenter())

    async def main() -> None:
        async with TestClient(TestServer(example.app, host="127.0.0.1")) as client:
            br = Browser()
            status, _ = await br.connect(client)
            assert status == 200
            assert await until(lambda: len(br.frames) >= 3)
            assert_background_blurred(br.frames[-1].to_ndarray(format="bgr24"))
            await br.close()

    run(main())


def test_mangled_offers_never_500_nor_leak() -> None:
    """Truncated, shuffled and bit-flipped copies of a real offer: 200 or 400, never 500."""
    import random

    async def main() -> None:
        rng = random.Random(7)
        async with served(max_clients=2) as client:
            server = client.app[SERVER]
            br = Browser()
            good = (await br.offer())["sdp"]
            await br.close()
            lines = good.split("\r\n")
            statuses = []
            for i in range(40):
                kind = i % 4
                if kind == 0:
                    sdp = good[: rng.randrange(len(good))]
                elif kind == 1:
                    ls = lines[:]
                    del ls[rng.randrange(1, len(ls))]
                    sdp = "\r\n".join(ls)
                elif kind == 2:
                    b = bytearray(good.encode())
                    for _ in range(5):
                        b[rng.randrange(len(b))] = rng.randrange(32, 127)
                    sdp = b.decode()
                else:
                    ls = lines[:]
                    rng.shuffle(ls)
                    sdp = "v=0\r\n" + "\r\n".join(ls)
                resp = await client.post("/offer", json={"sdp": sdp, "type": "offer"})
                statuses.append(resp.status)
                assert resp.status in (200, 400), (resp.status, await resp.text())
                if resp.status == 200:
                    pid = (await resp.json())["id"]
                    await client.post(f"/peer/{pid}/close")
                else:
                    assert "error" in await resp.json()
            assert not server.peers
            assert 400 in statuses

    run(main())
