"""A small local HTTP control API (and preview page) for a running :class:`LiveRunner`.

Localhost only. Endpoints::

    GET  /             the preview page: video (when a preview sink exists),
                       controls, and keys (space on/off, +/- strength,
                       e effect, m model)
    GET  /stream.mjpg  the preview as MJPEG (multipart/x-mixed-replace)
    GET  /api/state    JSON: settings, quality level, fps, drops, source status
    POST /api/settings JSON {"enabled", "strength", "effect", "model"} (any subset)

Settings change through :func:`apply_controls`, which builds a new frozen
:class:`~blurcam.settings.Settings` with :func:`dataclasses.replace` and hands
it to the runner between frames; the web page can reuse the same API later.

Guarding a port on the user's machine: the server binds 127.0.0.1 only,
answers only requests whose ``Host`` is a loopback name (no DNS rebinding),
takes POST bodies only as ``application/json`` (a cross-site form cannot send
that without a CORS preflight, which is never granted) and at most 4 KiB.
"""

from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..errors import BlurcamError, SettingsError
from ..settings import EFFECTS, build_settings
from .runner import LiveRunner
from .sinks import PreviewSink

__all__ = ["MAX_BODY", "MODELS", "ControlServer", "apply_controls"]

log = logging.getLogger(__name__)

MAX_BODY = 4096
MODELS = ("auto", "selfie", "landscape")
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def apply_controls(runner: LiveRunner, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply ``{"enabled", "strength", "effect", "model"}`` to ``runner``; returns its state.

    The values go through ``settings.build_settings``, as the CLI's do; the
    model is one of the bundled ones (the API never loads arbitrary paths).

    Raises:
        SettingsError: an unknown key or a value out of range (nothing is changed).
    """
    unknown = set(changes) - {"enabled", "strength", "effect", "model"}
    if unknown:
        raise SettingsError(f"unknown control(s): {', '.join(sorted(unknown))}")
    model = changes.get("model")
    if model is not None and model not in MODELS:
        raise SettingsError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    enabled = changes.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise SettingsError(f"enabled must be true or false, got {enabled!r}")
    s = runner.settings
    new = build_settings(s, **{k: v for k, v in changes.items() if k != "enabled"})
    runner.update(new if new != s else None, enabled=enabled)
    return runner.snapshot()


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>blurcam</title>
<style>
body{font-family:system-ui,sans-serif;margin:1em;background:#111;color:#eee}
img{max-width:100%;background:#000;display:block;margin-bottom:.6em}
label{margin-right:1em} #state{font-family:monospace;white-space:pre}
</style></head><body>
<img id="video" src="/stream.mjpg" alt="preview (start blurcam cam with --sink preview)">
<div>
<label><input type="checkbox" id="enabled" checked> blur on (space)</label>
<label>strength (+/-) <input type="range" id="strength" min="0" max="1" step="0.05"></label>
<label>effect (e) <select id="effect">__EFFECTS__</select></label>
<label>model (m) <select id="model">__MODELS__</select></label>
</div>
<div id="state"></div>
<script>
const $ = (id) => document.getElementById(id);
const effects = [...$("effect").options].map(o => o.value);
const models = [...$("model").options].map(o => o.value);
let st = {};
async function post(change) {
  const r = await fetch("/api/settings", {method: "POST",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify(change)});
  show(await r.json());
}
function show(s) {
  if (s.error) { $("state").textContent = "error: " + s.error; return; }
  st = s;
  $("enabled").checked = s.enabled; $("strength").value = s.strength;
  $("effect").value = s.effect; $("model").value = s.model_setting;
  $("state").textContent = `level ${s.level_text}\\nin ${(s.fps_in||0).toFixed(1)} fps, `
    + `out ${(s.fps_out||0).toFixed(1)} fps, dropped ${s.dropped}\\nsource: ${s.status}`
    + (s.model_error ? `\\n${s.model_error}` : "");
}
async function poll() { try { show(await (await fetch("/api/state")).json()); } catch (e) {} }
$("enabled").onchange = (e) => post({enabled: e.target.checked});
$("strength").onchange = (e) => post({strength: parseFloat(e.target.value)});
$("effect").onchange = (e) => post({effect: e.target.value});
$("model").onchange = (e) => post({model: e.target.value});
document.onkeydown = (e) => {
  if (e.target.tagName === "INPUT" && e.target.type === "range") return;
  const next = (list, v) => list[(list.indexOf(v) + 1) % list.length];
  if (e.key === " ") { post({enabled: !st.enabled}); e.preventDefault(); }
  else if (e.key === "+" || e.key === "=") post({strength: Math.min(1, st.strength + 0.1)});
  else if (e.key === "-") post({strength: Math.max(0, st.strength - 0.1)});
  else if (e.key === "e") post({effect: next(effects, st.effect)});
  else if (e.key === "m") post({model: next(models, st.model_setting)});
};
poll(); setInterval(poll, 1000);
</script></body></html>
"""


def _page() -> bytes:
    opts = "".join(f'<option value="{e}">{e}</option>' for e in EFFECTS)
    models = "".join(f'<option value="{m}">{m}</option>' for m in MODELS)
    return _PAGE.replace("__EFFECTS__", opts).replace("__MODELS__", models).encode()


class ControlServer:
    """Serves the control API (and the preview) on ``127.0.0.1:port`` in a daemon thread.

    ``port=0`` picks a free port (see :attr:`port`). ``live`` supplies the
    last live summary (fps, latency) to merge into ``/api/state``.

    Raises:
        DeviceUnavailableError: the port is taken.
    """

    def __init__(self, runner: LiveRunner, *, port: int = 8765, preview: PreviewSink | None = None):
        from ..errors import DeviceUnavailableError

        self.runner = runner
        self.preview = preview
        self.live: dict[str, Any] = {}
        self._stopping = threading.Event()
        handler = _make_handler(self)
        try:
            self._httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as e:
            raise DeviceUnavailableError(
                f"control port {port} on 127.0.0.1 is taken ({e.strerror}): pick another with "
                "--control-port"
            ) from None
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="blurcam-control", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> ControlServer:
        self._thread.start()
        log.info("control API on %s", self.url)
        return self

    def state(self) -> dict[str, Any]:
        snap = dict(self.live)
        snap.update(self.runner.snapshot())
        snap["model_setting"] = self.runner.settings.segment.model
        return snap

    def close(self) -> None:
        self._stopping.set()
        if self.preview is not None:
            self.preview.close()
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ControlServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _make_handler(server: ControlServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "blurcam"

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("control: " + fmt, *args)

        def _host_ok(self) -> bool:
            host = (self.headers.get("Host") or "").strip().lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in _LOOPBACK:
                self._json({"error": "only local requests"}, HTTPStatus.FORBIDDEN)
                return False
            origin = self.headers.get("Origin")
            if origin is not None:
                oname = origin.split("://", 1)[-1].rsplit(":", 1)[0].lower()
                if oname not in _LOOPBACK:
                    self._json({"error": "cross-origin request refused"}, HTTPStatus.FORBIDDEN)
                    return False
            return True

        def _send(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, data: dict[str, Any], code: int = HTTPStatus.OK) -> None:
            self._send(code, "application/json", json.dumps(data).encode())

        def do_GET(self) -> None:
            if not self._host_ok():
                return
            path = self.path.split("?", 1)[0]
            if path == "/":
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", _page())
            elif path == "/api/state":
                self._json(server.state())
            elif path == "/stream.mjpg":
                self._mjpeg()
            else:
                self._json({"error": "not found"}, HTTPStatus.NOT_FOUND)

        def do_POST(self) -> None:
            if not self._host_ok():
                return
            if self.path.split("?", 1)[0] != "/api/settings":
                self._json({"error": "not found"}, HTTPStatus.NOT_FOUND)
                return
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/json":
                self._json({"error": "send application/json"}, HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
                return
            try:
                n = int(self.headers.get("Content-Length") or "0")
            except ValueError:
                n = -1
            if not 0 < n <= MAX_BODY:
                self.close_connection = True
                self._json({"error": f"body must be 1..{MAX_BODY} bytes"}, 413)
                return
            try:
                changes = json.loads(self.rfile.read(n))
                if not isinstance(changes, dict):
                    raise SettingsError("send a JSON object")
                state = apply_controls(server.runner, changes)
            except (ValueError, BlurcamError) as e:  # JSONDecodeError is a ValueError
                self._json({"error": str(e)}, HTTPStatus.BAD_REQUEST)
                return
            state["model_setting"] = server.runner.settings.segment.model
            self._json(state)

        def _mjpeg(self) -> None:
            pv = server.preview
            if pv is None:
                self._json({"error": "no preview: run with --sink preview"}, 404)
                return
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.close_connection = True
            seq = 0
            try:
                while not server._stopping.is_set() and not pv.closed:
                    seq, jpg = pv.jpeg(seq, timeout=1.0)
                    if jpg is None:
                        continue
                    self.wfile.write(
                        b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                        + str(len(jpg)).encode()
                        + b"\r\n\r\n"
                        + jpg
                        + b"\r\n"
                    )
            except (BrokenPipeError, ConnectionResetError):
                return

    return Handler
