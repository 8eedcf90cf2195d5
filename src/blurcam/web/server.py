"""``blurcam serve``: an aiohttp app with one page that blurs the browser's camera.

The browser sends its camera over WebRTC (``POST /offer``), the server answers
with a :class:`~blurcam.web.track.BlurTrack` on the same transceiver, and the
page shows both streams side by side. Controls are small JSON posts addressed
by the peer id that ``/offer`` returned (an unguessable token)::

    GET  /                       the page            GET /static/<file>  its JS/CSS
    POST /offer                  {sdp, type} -> {sdp, type, id}
    POST /peer/<id>/settings     {effect, strength, model, enabled}
    POST /peer/<id>/background   raw PNG/JPEG/WebP bytes (or empty + ?clear=1)
    POST /peer/<id>/keep         {x, y} in 0..1 of the frame, or {"clear": true}
    GET  /peer/<id>/stats        fps, processing time, dropped frames
    POST /peer/<id>/close        the page leaves (sent with sendBeacon)

Security, because this opens a port on the user's machine: it binds to
localhost by default (the CLI warns otherwise) and then also restricts ICE to
127.0.0.1 and refuses foreign ``Host`` headers (DNS rebinding); a request with
a foreign ``Origin`` is refused (other sites cannot drive it); every body has a
size cap; the number of peers is bounded and a peer that never connects is
dropped; static files come from a fixed list read from the package (no path
from the URL ever reaches the file system); models are chosen from a fixed
list (a path would let the page load any file); uploads are decoded in memory
(:mod:`blurcam.web.upload`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaBlackhole
from aiortc.mediastreams import MediaStreamTrack

from ..errors import BlurcamError, SettingsError
from ..pipeline import Stream
from ..segment import SegmenterFactory
from ..segment.registry import BUNDLED
from ..settings import EFFECTS, Settings, build_settings
from .track import BlurTrack, has_effect_field
from .upload import MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS, decode_upload

__all__ = [
    "LOOPBACK_HOSTS",
    "MAX_SDP_BYTES",
    "SERVER",
    "BlurServer",
    "Peer",
    "create_app",
    "is_loopback",
    "run",
]

log = logging.getLogger(__name__)

MAX_SDP_BYTES = 64 * 1024
MAX_JSON_BYTES = 4 * 1024
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
STATIC_TYPES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "style.css": "text/css",
}
_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.x.x.x and ::1 (what the CLI binds by default)."""
    h = host.strip("[]").lower()
    return h == "localhost" or h == "::1" or h.startswith("127.")


@dataclass
class Peer:
    """One browser connection: its peer connection and the processed track."""

    id: str
    pc: RTCPeerConnection
    created: float = field(default_factory=time.monotonic)
    track: BlurTrack | None = None
    sinks: list[MediaBlackhole] = field(default_factory=list)
    closing: bool = False
    keep: tuple[float, float] | None = None
    background: tuple[int, int] | None = None  # (w, h) of the uploaded image


class BlurServer:
    """Peers and request handlers of one app (see the module docstring).

    ``segmenter_factory`` replaces model loading (tests inject a fake model);
    ``models`` is the list the page may choose from.
    """

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        max_clients: int = 4,
        segmenter_factory: SegmenterFactory | None = None,
        models: Iterable[str] | None = None,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        max_upload_pixels: int = MAX_UPLOAD_PIXELS,
        connect_timeout: float = 30.0,
    ) -> None:
        if max_clients < 1:
            raise SettingsError(f"max_clients must be >= 1, got {max_clients}")
        self.settings = settings or Settings()
        self.max_clients = max_clients
        self.segmenter_factory = segmenter_factory
        self.models = tuple(models) if models is not None else ("auto", *BUNDLED)
        if self.settings.segment.model not in self.models:  # the operator's own model
            self.models = (*self.models, self.settings.segment.model)
        self.max_upload_bytes = max_upload_bytes
        self.max_upload_pixels = max_upload_pixels
        self.connect_timeout = connect_timeout
        self.peers: dict[str, Peer] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._static = _load_static()

    # ------------------------------------------------------------- helpers
    def _peer(self, request: web.Request) -> Peer:
        peer = self.peers.get(request.match_info["pid"])
        if peer is None or peer.closing:
            raise _error(web.HTTPNotFound, "no such peer (closed or never opened)")
        return peer

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close_peer(self, peer: Peer, why: str = "") -> None:
        """Close the connection, stop the track and wait for its thread; idempotent."""
        if peer.closing:
            return
        peer.closing = True
        log.info("peer %s closing%s", peer.id[:6], f" ({why})" if why else "")
        try:
            if peer.track is not None:
                peer.track.stop()
            for sink in peer.sinks:
                await sink.stop()
            await peer.pc.close()
            if peer.track is not None:
                await peer.track.wait_closed()
        finally:
            self.peers.pop(peer.id, None)

    async def close_all(self) -> None:
        await asyncio.gather(
            *(self.close_peer(p, "shutdown") for p in list(self.peers.values())),
            return_exceptions=True,
        )
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _expire(self, peer: Peer) -> None:
        """Drop a peer that has not connected within ``connect_timeout``."""
        await asyncio.sleep(self.connect_timeout)
        if not peer.closing and peer.pc.connectionState != "connected":
            await self.close_peer(peer, "never connected")

    # ------------------------------------------------------------ handlers
    async def index(self, request: web.Request) -> web.Response:
        return self._file("index.html")

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self._static:  # a fixed list: no path reaches the disk
            raise _error(web.HTTPNotFound, "no such file")
        return self._file(name)

    def _file(self, name: str) -> web.Response:
        return web.Response(
            body=self._static[name],
            content_type=STATIC_TYPES[name],
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    async def offer(self, request: web.Request) -> web.Response:
        body = await _read_json(request, MAX_SDP_BYTES, what="SDP offer")
        sdp, kind = body.get("sdp"), body.get("type")
        if kind != "offer" or not isinstance(sdp, str):
            raise _error(web.HTTPBadRequest, 'expected {"sdp": "...", "type": "offer"}')
        if not sdp.startswith("v=0") or "m=video" not in sdp:
            raise _error(web.HTTPBadRequest, "bad SDP offer: not SDP, or no video")
        if len(self.peers) >= self.max_clients:
            raise _error(
                web.HTTPServiceUnavailable,
                f"busy: {len(self.peers)} client(s) connected, the limit is {self.max_clients}",
                headers={"Retry-After": "5"},
            )
        wanted = body.get("settings") or {}
        if not isinstance(wanted, dict):
            raise _error(web.HTTPBadRequest, "settings must be a JSON object")
        try:
            settings = _settings_from(self.settings, wanted, self.models)
        except SettingsError as e:
            raise _error(web.HTTPBadRequest, str(e)) from e
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        peer = Peer(id=secrets.token_urlsafe(16), pc=pc)
        self.peers[peer.id] = peer  # reserve the slot before any await

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video" and peer.track is None:
                peer.track = BlurTrack(
                    track,
                    settings=settings,
                    segmenter_factory=self.segmenter_factory,
                    enabled=bool(wanted.get("enabled", True)),
                )
                pc.addTrack(peer.track)
            else:  # audio or a second video: drain it, aiortc queues without bound
                sink = MediaBlackhole()
                sink.addTrack(track)
                peer.sinks.append(sink)
                self._spawn(sink.start())

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            log.debug("peer %s %s", peer.id[:6], pc.connectionState)
            if pc.connectionState in ("failed", "closed"):
                await self.close_peer(peer, pc.connectionState)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            if peer.track is None:
                raise ValueError("the offer has no video track")
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as e:  # aiortc raises many kinds on a malformed offer
            log.debug("bad offer", exc_info=True)
            await self.close_peer(peer, "bad offer")
            raise _error(web.HTTPBadRequest, f"bad SDP offer: {e or type(e).__name__}") from e
        except BaseException:  # cancelled: the client went away mid-offer
            await self.close_peer(peer, "cancelled")
            raise
        self._spawn(self._expire(peer))
        log.info("peer %s answered (%d/%d)", peer.id[:6], len(self.peers), self.max_clients)
        desc = pc.localDescription
        return web.json_response({"sdp": desc.sdp, "type": desc.type, "id": peer.id})

    async def update_settings(self, request: web.Request) -> web.Response:
        peer = self._peer(request)
        body = await _read_json(request, MAX_JSON_BYTES, what="settings")
        track = peer.track
        assert track is not None
        try:
            new = _settings_from(track.settings, body, self.models)
        except SettingsError as e:
            raise _error(web.HTTPBadRequest, str(e)) from e
        if "enabled" in body:
            track.enabled = bool(body["enabled"])
        track.settings = new
        return web.json_response(_describe(peer))

    async def background(self, request: web.Request) -> web.Response:
        peer = self._peer(request)
        track = peer.track
        assert track is not None
        if request.query.get("clear"):
            img = None
        else:
            data = await _read_limited(request, self.max_upload_bytes, what="image")
            try:
                img = decode_upload(
                    data, max_bytes=self.max_upload_bytes, max_pixels=self.max_upload_pixels
                )
            except BlurcamError as e:
                raise _error(web.HTTPBadRequest, str(e)) from e
        try:
            track.set_background(img)
        except SettingsError as e:
            raise _error(web.HTTPNotImplemented, str(e)) from e
        peer.background = None if img is None else (img.shape[1], img.shape[0])
        kind = "replace" if img is not None else "blur"
        if track.settings.effect.kind != kind:
            track.settings = replace(
                track.settings, effect=replace(track.settings.effect, kind=kind)
            )
        return web.json_response(_describe(peer))

    async def keep(self, request: web.Request) -> web.Response:
        peer = self._peer(request)
        track = peer.track
        assert track is not None
        body = await _read_json(request, MAX_JSON_BYTES, what="keep point")
        if body.get("clear"):
            point = None
        else:
            try:
                point = (float(body["x"]), float(body["y"]))
            except (KeyError, TypeError, ValueError) as e:
                raise _error(web.HTTPBadRequest, 'expected {"x": 0..1, "y": 0..1}') from e
        if not has_effect_field("keep_point"):
            raise _error(web.HTTPNotImplemented, "click-to-keep-sharp is not available")
        try:
            track.keep_at(point)
        except SettingsError as e:
            raise _error(web.HTTPBadRequest, str(e)) from e
        peer.keep = point
        return web.json_response(_describe(peer))

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(_describe(self._peer(request)))

    async def close(self, request: web.Request) -> web.Response:
        peer = self.peers.get(request.match_info["pid"])
        if peer is not None:
            await self.close_peer(peer, "page left")
        return web.json_response({"closed": True})

    async def info(self, request: web.Request) -> web.Response:
        """What the page needs to build its controls."""
        s = self.settings
        return web.json_response(
            {
                "effects": [e for e in EFFECTS if e != "none"],
                "models": list(self.models),
                "effect": s.effect.kind,
                "strength": s.effect.strength,
                "model": s.segment.model,
                "background": hasattr(Stream, "set_background"),
                "keep": has_effect_field("keep_point"),
                "max_upload_bytes": self.max_upload_bytes,
            }
        )


# ------------------------------------------------------------------ settings
# what the page may change: never a path (a browser must not make the server read files)
PAGE_OPTIONS = (
    "effect",
    "strength",
    "model",
    "light_wrap",
    "harmonize",
    "bokeh_shape",
    "highlights",
    "face_guard",
    "people",
)


def _settings_from(base: Settings, body: dict[str, Any], models: tuple[str, ...]) -> Settings:
    """Page controls -> validated settings (``settings.build_settings``; other keys ignored).

    Raises:
        SettingsError: a value out of range, or a model not offered to the page.
    """
    options = {k: body[k] for k in PAGE_OPTIONS if body.get(k) is not None}
    if "model" in options and options["model"] not in models:
        raise SettingsError(f"model must be one of {', '.join(models)}, got {options['model']!r}")
    return build_settings(base, **options)


def _describe(peer: Peer) -> dict[str, Any]:
    t = peer.track
    if t is None:
        return {"id": peer.id, "state": peer.pc.connectionState}
    s = t.settings
    return {
        "id": peer.id,
        "state": peer.pc.connectionState,
        "effect": s.effect.kind,
        "strength": s.effect.strength,
        "model": s.segment.model,
        "enabled": t.enabled,
        "keep": peer.keep,
        "background": peer.background,
        **t.stats.as_dict(),
    }


# ------------------------------------------------------------------ requests
def _error(cls: type[web.HTTPException], message: str, **kw: Any) -> web.HTTPException:
    """An HTTP error whose body is ``{"error": message}`` (the page shows it)."""
    return cls(text=json.dumps({"error": message}), content_type="application/json", **kw)


async def _read_limited(request: web.Request, limit: int, *, what: str) -> bytes:
    """The body, refused with 400/413 as soon as it passes ``limit`` bytes."""

    def too_large(size: int) -> web.HTTPException:
        msg = f"{what} too large: {size} bytes or more (max {limit})"
        if what == "SDP offer":  # the issue asks for a plain 400 on offers
            return _error(web.HTTPBadRequest, msg)
        return _error(web.HTTPRequestEntityTooLarge, msg, max_size=limit, actual_size=size)

    n = request.content_length
    if n is not None and n > limit:
        raise too_large(n)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_large(size)
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_json(request: web.Request, limit: int, *, what: str) -> dict[str, Any]:
    data = await _read_limited(request, limit, what=what)
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise _error(web.HTTPBadRequest, f"{what}: body is not JSON") from e
    if not isinstance(body, dict):
        raise _error(web.HTTPBadRequest, f"{what}: expected a JSON object")
    return body


def _host_of(value: str) -> str:
    """``host[:port]`` -> host (IPv6 brackets kept off)."""
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _guard(allowed_hosts: frozenset[str] | None) -> Callable[..., Any]:
    """Middleware: Host and Origin checks, security headers, JSON errors."""

    @web.middleware
    async def guard(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        if allowed_hosts is not None and _host_of(host).lower() not in allowed_hosts:
            raise _error(web.HTTPForbidden, f"host {host!r} not allowed (DNS rebinding guard)")
        origin = request.headers.get("Origin")
        if request.method != "GET" and origin is not None and origin != "null":
            same = origin.split("://", 1)[-1].rstrip("/").lower() == host.lower()
            if not same:
                raise _error(web.HTTPForbidden, f"cross-origin request from {origin} refused")
        resp: web.StreamResponse = await handler(request)
        resp.headers.setdefault("Content-Security-Policy", _CSP)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        return resp

    return guard


def _load_static() -> dict[str, bytes]:
    root = resources.files("blurcam.web") / "static"
    return {name: (root / name).read_bytes() for name in STATIC_TYPES}


# ----------------------------------------------------------------------- ICE
def _ice_only(addresses: list[str]) -> Callable[[web.Application], AsyncIterator[None]]:
    """Restrict ICE host candidates to ``addresses`` while the app runs.

    aioice never offers 127.0.0.1, so on a loopback-only machine no candidate
    exists and the call hangs; with a network card the media would leave
    through it although HTTP is bound to localhost. aioice has no per-call
    option, hence the module attribute (restored on cleanup).
    """

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        import aioice.ice

        orig = aioice.ice.get_host_addresses
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: list(addresses)
        try:
            yield
        finally:
            aioice.ice.get_host_addresses = orig

    return ctx


SERVER = web.AppKey("blurcam_server", BlurServer)


def create_app(
    *,
    settings: Settings | None = None,
    max_clients: int = 4,
    segmenter_factory: SegmenterFactory | None = None,
    models: Iterable[str] | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    ice_addresses: list[str] | None = None,
    allowed_hosts: Iterable[str] | None = LOOPBACK_HOSTS,
    connect_timeout: float = 30.0,
) -> web.Application:
    """The aiohttp app of ``blurcam serve``; ``app[SERVER]`` holds the peers.

    ``ice_addresses`` (e.g. ``["127.0.0.1"]``) restricts WebRTC host
    candidates; ``allowed_hosts`` lists the accepted ``Host`` names (None: any,
    for a server bound to a public address). Peers are closed on shutdown.
    """
    server = BlurServer(
        settings=settings,
        max_clients=max_clients,
        segmenter_factory=segmenter_factory,
        models=models,
        max_upload_bytes=max_upload_bytes,
        connect_timeout=connect_timeout,
    )
    hosts = None if allowed_hosts is None else frozenset(h.lower() for h in allowed_hosts)
    app = web.Application(
        middlewares=[_guard(hosts)],
        client_max_size=max(max_upload_bytes, MAX_SDP_BYTES) + 1024,
    )
    app[SERVER] = server
    r = app.router
    r.add_get("/", server.index)
    r.add_get("/static/{name}", server.static)
    r.add_get("/info", server.info)
    r.add_post("/offer", server.offer)
    r.add_post("/peer/{pid}/settings", server.update_settings)
    r.add_post("/peer/{pid}/background", server.background)
    r.add_post("/peer/{pid}/keep", server.keep)
    r.add_get("/peer/{pid}/stats", server.stats)
    r.add_post("/peer/{pid}/close", server.close)
    if ice_addresses:
        app.cleanup_ctx.append(_ice_only(ice_addresses))

    async def on_shutdown(app: web.Application) -> None:
        await server.close_all()

    app.on_shutdown.append(on_shutdown)
    return app


def run(
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    max_clients: int = 4,
    settings: Settings | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until interrupted (the CLI's ``blurcam serve``): the first ``KeyboardInterrupt``
    (Ctrl-C, or SIGTERM as the CLI delivers it) closes every peer and returns."""
    loop_host = is_loopback(host)
    app = create_app(
        settings=settings,
        max_clients=max_clients,
        ice_addresses=["127.0.0.1"] if loop_host else None,
        allowed_hosts=LOOPBACK_HOSTS if loop_host else None,
    )
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    async def ready(app: web.Application) -> None:
        if on_ready is not None:
            on_ready(url)

    app.on_startup.append(ready)
    # aiohttp's own SIGINT/SIGTERM handlers would replace the CLI's (blurcam.cli.signals)
    # and leave SIGTERM at its default, killing, action after the first: instead, the
    # first KeyboardInterrupt (Ctrl-C or SIGTERM) stops the server cleanly (peers closed)
    # and returns; a second one during that shutdown propagates.
    web.run_app(app, host=host, port=port, print=None, shutdown_timeout=5.0, handle_signals=False)
