"""End to end in real headless Chromium: camera (a .y4m file) -> WebRTC -> server -> page.

The fake camera shows a textured disc ("person") on a striped background, with
the frame number drawn as 8 black/white blocks above it. The server gets a
segmenter that answers the known layout (disc + code strip), so the test can
check numerically that the page's output video has the background blurred and
the person sharp, and can read the frame number on both videos to measure the
round trip. Numbers go to ``test-artifacts/web-e2e.json`` with a screenshot.

Skips cleanly without ``/usr/bin/chromium`` or Playwright (``.ci/run``
installs both). Never runs ``playwright install``: it drives Debian's Chromium.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from blurcam.testing import FakeSegmenter

CHROMIUM = Path(os.environ.get("BLURCAM_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
W, H, N_FRAMES = 640, 480, 60
DISC = (320, 280, 150)  # cx, cy, r

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed"),
]
playwright_api = pytest.importorskip("playwright.async_api")
pytest.importorskip("aiortc")


@dataclass(frozen=True)
class Layout:
    """What the fake camera shows and where: the tests know the truth.

    ``base`` is frame 0 without its number; ``person`` is 255 on the person;
    ``blocks`` are the 8 frame-number squares (x, y, size), most significant
    bit first, on a neutral grey ``code`` area.
    """

    base: NDArray[np.uint8]
    person: NDArray[np.uint8]
    blocks: tuple[tuple[int, int, int], ...]
    code: tuple[int, int, int, int]  # x0, y0, x1, y1 of the grey area

    def code_mask(self) -> NDArray[np.uint8]:
        m = np.zeros((H, W), np.uint8)
        x0, y0, x1, y1 = self.code
        m[y0:y1, x0:x1] = 255
        return m

    def frame(self, i: int) -> NDArray[np.uint8]:
        img = self.base.copy()
        for b, (x, y, n) in enumerate(self.blocks):
            img[y : y + n, x : x + n] = 255 if (i >> (7 - b)) & 1 else 0
        return img


def textured_background() -> NDArray[np.uint8]:
    """Fine stripes and bands: lots of detail for the Laplacian to lose when blurred."""
    x = np.arange(W)
    y = np.arange(H)[:, None]
    img = np.empty((H, W, 3), np.uint8)
    img[..., 0] = ((x // 4) % 2 * 170 + 40).astype(np.uint8)[None, :]
    img[..., 1] = (((y // 6) % 2) * 120 + 60).astype(np.uint8)
    img[..., 2] = (x * 200 // W).astype(np.uint8)[None, :]
    return img


def _with_code(img: NDArray[np.uint8], code: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = code
    img[y0:y1, x0:x1] = 128


def disc_layout() -> Layout:
    """A checkered disc "person" under a row of 32 px number blocks."""
    img = textured_background()
    x = np.arange(W)
    y = np.arange(H)[:, None]
    cx, cy, r = DISC
    checker = ((((x // 10) + (y // 10)) % 2) * 180 + 40).astype(np.uint8)
    inside = (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    for c, k in enumerate((0.5, 0.8, 1.0)):
        img[..., c] = np.where(inside, (checker * k).astype(np.uint8), img[..., c])
    person = inside.astype(np.uint8) * 255
    code = (184, 8, 184 + 8 * 32 + 16, 8 + 32 + 16)
    _with_code(img, code)
    blocks = tuple((192 + 32 * b, 16, 32) for b in range(8))
    return Layout(img, person, blocks, code)


def cartoon_layout() -> Layout:
    """A drawn head-and-shoulders person (hair, face, checkered shirt) that the
    bundled selfie model finds (IoU 0.93 on the clean frame), under 56 px
    number blocks in the top-left background (readable through the blur).
    """
    img = textured_background()
    person = np.zeros((H, W), np.uint8)
    cx = 400
    torso = np.array(
        [[cx - 150, 480], [cx - 100, 370], [cx - 30, 340], [cx + 30, 340], [cx + 100, 370],
         [cx + 150, 480]],
        np.int32,
    )  # fmt: skip
    cv2.fillPoly(person, [torso], 255)
    cv2.rectangle(person, (cx - 25, 290), (cx + 25, 350), 255, -1)  # neck
    cv2.ellipse(person, (cx, 215), (78, 100), 0, 0, 360, 255, -1)  # head
    cv2.ellipse(person, (cx, 160), (82, 60), 0, 180, 360, 255, -1)  # hair
    img[person > 0] = (120, 160, 210)  # skin
    shirt = np.zeros((H, W), np.uint8)
    cv2.fillPoly(shirt, [torso], 255)
    x = np.arange(W)
    y = np.arange(H)[:, None]
    checker = (((x // 10) + (y // 10)) % 2).astype(bool)
    img[(shirt > 0) & checker] = (150, 60, 40)
    img[(shirt > 0) & ~checker] = (210, 140, 90)
    cv2.ellipse(img, (cx, 160), (82, 60), 0, 180, 360, (30, 40, 60), -1)
    for ex in (cx - 30, cx + 30):
        cv2.ellipse(img, (ex, 210), (12, 7), 0, 0, 360, (255, 255, 255), -1)
        cv2.circle(img, (ex, 210), 5, (40, 30, 20), -1)
    cv2.ellipse(img, (cx, 265), (22, 8), 0, 0, 180, (60, 60, 170), 3)
    cv2.line(img, (cx, 220), (cx - 5, 248), (90, 120, 170), 2)
    code = (8, 8, 8 + 4 * 56 + 16, 8 + 2 * 56 + 16)
    _with_code(img, code)
    blocks = tuple((16 + 56 * (b % 4), 16 + 56 * (b // 4), 56) for b in range(8))
    return Layout(img, person, blocks, code)


def portrait_layout(image: Path, mask: Path) -> Layout:
    """A real portrait (scaled to 360x480) on the right of the textured background.

    The number blocks are large (56 px, two rows) and sit in the background,
    so they stay readable after the blur.
    """
    img = textured_background()
    p = cv2.resize(cv2.imread(str(image)), (360, 480), interpolation=cv2.INTER_AREA)
    m = cv2.resize(cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE), (360, 480))
    person = np.zeros((H, W), np.uint8)
    person[:, W - 360 :] = np.where(m > 127, 255, 0)
    img[person > 0] = p[m > 127]
    code = (8, 8, 8 + 4 * 56 + 16, 8 + 2 * 56 + 16)
    _with_code(img, code)
    blocks = tuple((16 + 56 * (b % 4), 16 + 56 * (b // 4), 56) for b in range(8))
    return Layout(img, person, blocks, code)


def write_y4m(path: Path, layout: Layout, frames: int = N_FRAMES) -> Path:
    """A looping fake camera for ``--use-file-for-fake-video-capture``.

    Only the number blocks change, and they sit on neutral grey, so each frame
    is frame 0's I420 with its Y plane patched (fast).
    """
    base = cv2.cvtColor(layout.base, cv2.COLOR_BGR2YUV_I420)
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{W} H{H} F30:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            yuv = base.copy()
            for b, (x, y, n) in enumerate(layout.blocks):
                yuv[y : y + n, x : x + n] = 255 if (i >> (7 - b)) & 1 else 0
            f.write(b"FRAME\n")
            f.write(yuv.tobytes())
    return path


def lap_var(img: NDArray[np.uint8], region: NDArray[np.bool_]) -> float:
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(g, cv2.CV_64F)[region].var())


def regions(layout: Layout, w: int, h: int) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(person core, background far from person and numbers) at the grabbed size."""
    k = max(3, int(40 * w / W)) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    person = cv2.resize(layout.person, (w, h), interpolation=cv2.INTER_NEAREST)
    code = cv2.resize(layout.code_mask(), (w, h), interpolation=cv2.INTER_NEAREST)
    core = (cv2.erode(person, kernel) > 0) & (cv2.dilate(code, kernel) == 0)
    far = cv2.dilate(person | code, kernel) == 0
    return core, far


FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
]

GRAB_JS = """(id) => {
  const v = document.getElementById(id);
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  c.getContext('2d').drawImage(v, 0, 0);
  return c.toDataURL('image/png');
}"""

# Reads the frame number on both videos whenever the output shows a new frame.
LAG_JS = """([n, centres, w0, h0]) => new Promise((resolve) => {
  const loc = document.getElementById('local'), rem = document.getElementById('remote');
  const read = (v) => {
    const c = document.createElement('canvas');
    c.width = v.videoWidth; c.height = v.videoHeight;
    const g = c.getContext('2d', {willReadFrequently: true});
    g.drawImage(v, 0, 0);
    const sx = v.videoWidth / w0, sy = v.videoHeight / h0;
    let k = 0;
    for (const [x, y] of centres) {
      const p = g.getImageData(Math.round(x * sx), Math.round(y * sy), 1, 1).data;
      k = (k << 1) | ((p[0] + p[1] + p[2]) / 3 > 128 ? 1 : 0);
    }
    return k;
  };
  const out = [];
  const step = () => {
    out.push([read(loc), read(rem)]);
    if (out.length >= n) resolve(out); else rem.requestVideoFrameCallback(step);
  };
  rem.requestVideoFrameCallback(step);
})"""

STATS_JS = """async () => {
  const r = await window.blurcam.pc.getStats();
  const o = {};
  r.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') o.inbound = s;
    if (s.type === 'remote-inbound-rtp' && s.kind === 'video') o.remote = s;
  });
  return JSON.parse(JSON.stringify(o));
}"""


def decode_png(data_url: str) -> NDArray[np.uint8]:
    raw = base64.b64decode(data_url.split(",", 1)[1])
    img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


async def measure_lag(page: Any, layout: Layout, n: int = 20) -> list[int]:
    centres = [[x + b // 2, y + b // 2] for x, y, b in layout.blocks]
    pairs = await page.evaluate(LAG_JS, [n, centres, W, H])
    return [(a - b) % N_FRAMES for a, b in pairs if a < N_FRAMES and b < N_FRAMES]


async def drive_controls(page: Any, server: Any, tmp: Path) -> dict[str, Any]:
    """Use the page's controls as a person would; return what the server's peer then holds."""
    (peer,) = server.peers.values()
    await page.click("#enabled")  # back on
    await page.select_option("#effect", "bokeh")
    await page.fill("#strength", "0.4")
    img = tmp / "beach.png"
    cv2.imwrite(str(img), np.full((60, 80, 3), (200, 160, 40), np.uint8))
    info = await page.evaluate("() => window.blurcam.info")
    if info["background"]:
        await page.set_input_files("#background", str(img))
    if info["keep"]:
        await page.click("#remote", position={"x": 100, "y": 100})
    await page.wait_for_timeout(300)
    t = peer.track
    return {
        "enabled": t.enabled,
        "effect": t.settings.effect.kind,
        "strength": t.settings.effect.strength,
        "background": peer.background,
        "keep": peer.keep,
        "info": info,
        "page_error": await page.evaluate("() => window.blurcam.error"),
    }


async def run_e2e(y4m: Path, layout: Layout, factory: Any, shot: Path, tmp: Path) -> dict[str, Any]:
    from aiohttp import web

    from blurcam.web.server import SERVER, create_app

    app = create_app(segmenter_factory=factory, ice_addresses=["127.0.0.1"], max_clients=1)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    result: dict[str, Any] = {}
    try:
        async with playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=str(CHROMIUM),
                headless=True,
                args=[*FLAGS, f"--use-file-for-fake-video-capture={y4m}"],
            )
            try:
                page = await browser.new_page(viewport={"width": 1340, "height": 720})
                js_errors: list[str] = []
                page.on("pageerror", lambda e: js_errors.append(str(e)))
                t0 = time.perf_counter()
                await page.goto(f"http://127.0.0.1:{port}/")
                await page.wait_for_function(
                    "() => { const v = document.getElementById('remote');"
                    " return v.videoWidth > 0 && v.currentTime > 0.5; }",
                    timeout=10000,
                )
                result["first_frame_s"] = round(time.perf_counter() - t0, 2)
                phases = result.setdefault("phases", {})
                await page.wait_for_timeout(500)  # let the jitter buffer settle
                local = decode_png(await page.evaluate(GRAB_JS, "local"))
                remote = decode_png(await page.evaluate(GRAB_JS, "remote"))
                phases["grab"] = time.perf_counter() - t0
                lag_on = await measure_lag(page, layout)
                phases["lag_on"] = time.perf_counter() - t0
                stats = await page.evaluate(STATS_JS)
                server = await page.evaluate(
                    "async () => (await fetch(`/peer/${window.blurcam.id}/stats`)).json()"
                )
                await page.screenshot(path=str(shot))
                # the same round trip with processing off: what the server adds
                await page.click("#enabled")
                await page.wait_for_timeout(500)
                lag_off = await measure_lag(page, layout)
                phases["lag_off"] = time.perf_counter() - t0
                passthrough = decode_png(await page.evaluate(GRAB_JS, "remote"))
                result["controls"] = await drive_controls(page, app[SERVER], tmp)
                # a second page beyond --max-clients 1 is told the server is busy
                other = await browser.new_page()
                await other.goto(f"http://127.0.0.1:{port}/")
                await other.wait_for_function(
                    "() => document.getElementById('status').textContent.includes('busy')",
                    timeout=10000,
                )
                result["busy_text"] = await other.text_content("#status")
                await other.close()
                result.update(
                    local=local,
                    remote=remote,
                    passthrough=passthrough,
                    lag_on=lag_on,
                    lag_off=lag_off,
                    stats=stats,
                    server=server,
                    peers_open=len(app[SERVER].peers),
                    js_errors=js_errors,
                )
                await page.close()  # the page leaves: sendBeacon closes the peer
            finally:
                await browser.close()
        t_left = time.perf_counter()
        while app[SERVER].peers and time.perf_counter() - t_left < 20:
            await asyncio.sleep(0.1)
        result["peers_after"] = len(app[SERVER].peers)
        result["phases"]["peer_closed_after_s"] = round(time.perf_counter() - t_left, 2)
    finally:
        await runner.cleanup()
    return result


def check_page(name: str, layout: Layout, factory: Any, tmp_path: Path) -> dict[str, Any]:
    """Run the page on ``layout``; save grabs, screenshot and figures under test-artifacts/."""
    y4m = write_y4m(tmp_path / f"{name}.y4m", layout)
    ARTIFACTS.mkdir(exist_ok=True)
    before = {t.name for t in threading.enumerate()}

    r = asyncio.run(run_e2e(y4m, layout, factory, ARTIFACTS / f"{name}.png", tmp_path))

    local, remote = r["local"], r["remote"]
    cv2.imwrite(str(ARTIFACTS / f"{name}-local.png"), local)
    cv2.imwrite(str(ARTIFACTS / f"{name}-remote.png"), remote)
    h, w = remote.shape[:2]
    core, far = regions(layout, w, h)
    lh, lw = local.shape[:2]
    lcore, lfar = regions(layout, lw, lh)
    inbound = r["stats"].get("inbound", {})
    figures = {
        "remote_size": [w, h],
        "lapvar_bg_in": lap_var(local, lfar),
        "lapvar_bg_out": lap_var(remote, far),
        "lapvar_person_in": lap_var(local, lcore),
        "lapvar_person_out": lap_var(remote, core),
        "lapvar_bg_passthrough": lap_var(r["passthrough"], far),
        "lag_frames_on_median": statistics.median(r["lag_on"]) if r["lag_on"] else None,
        "lag_frames_off_median": statistics.median(r["lag_off"]) if r["lag_off"] else None,
        "lag_on": r["lag_on"],
        "lag_off": r["lag_off"],
        "fps_in_page": inbound.get("framesPerSecond"),
        "jitter_buffer_ms": 1000
        * inbound.get("jitterBufferDelay", 0.0)
        / max(1, inbound.get("jitterBufferEmittedCount", 0)),
        "rtt_ms": 1000 * r["stats"].get("remote", {}).get("roundTripTime", float("nan")),
        "server": r["server"],
        "first_frame_s": r["first_frame_s"],
        "phases_s": r["phases"],
    }
    (ARTIFACTS / f"{name}.json").write_text(json.dumps(figures, indent=2))

    # background blurred: far from the person, detail is mostly gone
    assert figures["lapvar_bg_out"] < 0.2 * figures["lapvar_bg_in"], figures
    # ... and it is the processing that removed it (off = detail back)
    assert figures["lapvar_bg_passthrough"] > 3 * figures["lapvar_bg_out"], figures
    # person sharp: it keeps its detail
    assert figures["lapvar_person_out"] > 0.5 * figures["lapvar_person_in"], figures
    assert r["lag_on"] and r["lag_off"], "frame numbers unreadable"
    assert r["js_errors"] == [], r["js_errors"]
    assert "limit is 1" in r["busy_text"], r["busy_text"]
    c = r["controls"]
    assert c["page_error"] is None, c
    assert c["enabled"] is True, c
    if c["info"]["background"]:  # the upload switches to replace
        assert (c["effect"], c["background"]) == ("replace", (80, 60)), c
    else:
        assert c["effect"] == "bokeh", c
    assert c["strength"] == 0.4, c
    if c["info"]["keep"]:
        assert c["keep"] is not None and all(0 < v < 1 for v in c["keep"]), c
    assert r["server"]["frames_out"] > 0 and r["server"]["error"] is None
    assert r["peers_open"] == 1 and r["peers_after"] == 0, "peer not closed when the page left"
    leaked = {t.name for t in threading.enumerate()} - before
    assert not {n for n in leaked if "blurcam" in n or "decoder" in n}, leaked
    return figures


def test_page_blurs_background_keeps_person_sharp(tmp_path: Path) -> None:
    """The real pipeline (bundled selfie model) on a drawn person: background blurred,
    person sharp, in the page's output video."""
    check_page("web-e2e", cartoon_layout(), None, tmp_path)


@pytest.mark.slow
def test_page_model_free_disc(tmp_path: Path) -> None:
    """Model-free (the segmenter answers the known disc): transport and page only.

    Opt-in (``-m slow`` or ``BLURCAM_SLOW=1``, see conftest), like the portrait run below.
    """
    layout = disc_layout()
    keep = layout.person | layout.code_mask()
    check_page("web-e2e-disc", layout, lambda s, size: FakeSegmenter(mask=keep), tmp_path)


@pytest.mark.slow
def test_page_real_model_on_a_portrait(tmp_path: Path, shared_dir: Path) -> None:
    """The real pipeline on a real portrait pasted on the stripes (slow, needs shared)."""
    d = shared_dir / "data" / "portraits"
    layout = portrait_layout(d / "images" / "00002.jpg", d / "masks" / "00002.png")
    check_page("web-e2e-portrait", layout, None, tmp_path)
