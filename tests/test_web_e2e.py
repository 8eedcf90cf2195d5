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
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from conftest import FakeSegmenter

CHROMIUM = Path(os.environ.get("BLURCAM_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
W, H, N_FRAMES = 640, 480, 60
CODE_X, CODE_Y, CODE_B = 192, 16, 32  # 8 blocks of 32 px: the frame number
DISC = (320, 280, 150)  # cx, cy, r

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed"),
]
playwright_api = pytest.importorskip("playwright.async_api")
pytest.importorskip("aiortc")


def person_mask() -> NDArray[np.uint8]:
    """255 on the person disc and on the frame-number strip (kept sharp so it stays readable)."""
    m = np.zeros((H, W), np.uint8)
    cx, cy, r = DISC
    cv2.circle(m, (cx, cy), r, 255, -1)
    m[CODE_Y - 8 : CODE_Y + CODE_B + 8, CODE_X - 8 : CODE_X + 8 * CODE_B + 8] = 255
    return m


def camera_frame(i: int) -> NDArray[np.uint8]:
    """Frame ``i`` of the fake camera: stripes + checkered disc + frame-number blocks."""
    x = np.arange(W)
    y = np.arange(H)[:, None]
    img = np.empty((H, W, 3), np.uint8)
    stripes = ((x // 4) % 2 * 170 + 40).astype(np.uint8)
    img[..., 0] = stripes[None, :]
    img[..., 1] = (((y // 6) % 2) * 120 + 60).astype(np.uint8)
    img[..., 2] = (x * 200 // W).astype(np.uint8)[None, :]
    cx, cy, r = DISC
    checker = ((((x // 10) + (y // 10)) % 2) * 180 + 40).astype(np.uint8)
    inside = (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    for c, k in enumerate((0.5, 0.8, 1.0)):
        img[..., c] = np.where(inside, (checker * k).astype(np.uint8), img[..., c])
    img[CODE_Y - 8 : CODE_Y + CODE_B + 8, CODE_X - 8 : CODE_X + 8 * CODE_B + 8] = 128
    for b in range(8):
        v = 255 if (i >> (7 - b)) & 1 else 0
        img[CODE_Y : CODE_Y + CODE_B, CODE_X + b * CODE_B : CODE_X + (b + 1) * CODE_B] = v
    return img


def write_y4m(path: Path, frames: int = N_FRAMES) -> Path:
    """A looping fake camera for ``--use-file-for-fake-video-capture``.

    Only the frame-number blocks change, and they sit on neutral grey, so each
    frame is the first frame's I420 with its Y plane patched (fast).
    """
    base = cv2.cvtColor(camera_frame(0), cv2.COLOR_BGR2YUV_I420)
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{W} H{H} F30:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            yuv = base.copy()
            for b in range(8):
                v = 255 if (i >> (7 - b)) & 1 else 0
                x0 = CODE_X + b * CODE_B
                yuv[CODE_Y : CODE_Y + CODE_B, x0 : x0 + CODE_B] = v
            f.write(b"FRAME\n")
            f.write(yuv.tobytes())
    return path


def lap_var(img: NDArray[np.uint8], region: NDArray[np.bool_]) -> float:
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(g, cv2.CV_64F)[region].var())


def regions(w: int, h: int) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(person core, background far from the person) at the grabbed size."""
    m = cv2.resize(person_mask(), (w, h), interpolation=cv2.INTER_NEAREST)
    k = max(3, int(40 * w / W)) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    core = cv2.erode(m, kernel) > 0
    core[: int((CODE_Y + CODE_B + 20) * h / H)] = False  # the disc only, not the strip
    far = cv2.dilate(m, kernel) == 0
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
LAG_JS = """([n, bx, by, bs, w0, h0]) => new Promise((resolve) => {
  const loc = document.getElementById('local'), rem = document.getElementById('remote');
  const read = (v) => {
    const c = document.createElement('canvas');
    c.width = v.videoWidth; c.height = v.videoHeight;
    const g = c.getContext('2d', {willReadFrequently: true});
    g.drawImage(v, 0, 0);
    const sx = v.videoWidth / w0, sy = v.videoHeight / h0;
    let k = 0;
    for (let b = 0; b < 8; b++) {
      const p = g.getImageData(Math.round((bx + b * bs + bs / 2) * sx),
                               Math.round((by + bs / 2) * sy), 1, 1).data;
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


async def measure_lag(page: Any, n: int = 20) -> list[int]:
    pairs = await page.evaluate(LAG_JS, [n, CODE_X, CODE_Y, CODE_B, W, H])
    return [(a - b) % N_FRAMES for a, b in pairs if a < N_FRAMES and b < N_FRAMES]


async def run_e2e(y4m: Path, factory: Any, out: Path) -> dict[str, Any]:
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
                lag_on = await measure_lag(page)
                phases["lag_on"] = time.perf_counter() - t0
                stats = await page.evaluate(STATS_JS)
                server = await page.evaluate(
                    "async () => (await fetch(`/peer/${window.blurcam.id}/stats`)).json()"
                )
                await page.screenshot(path=str(out / "web.png"))
                # the same round trip with processing off: what the server adds
                await page.click("#enabled")
                await page.wait_for_timeout(500)
                lag_off = await measure_lag(page)
                phases["lag_off"] = time.perf_counter() - t0
                passthrough = decode_png(await page.evaluate(GRAB_JS, "remote"))
                result.update(
                    local=local,
                    remote=remote,
                    passthrough=passthrough,
                    lag_on=lag_on,
                    lag_off=lag_off,
                    stats=stats,
                    server=server,
                    peers_open=len(app[SERVER].peers),
                )
                await page.close()  # the page leaves: sendBeacon closes the peer
            finally:
                await browser.close()
        for _ in range(50):
            if not app[SERVER].peers:
                break
            await asyncio.sleep(0.1)
        result["peers_after"] = len(app[SERVER].peers)
    finally:
        await runner.cleanup()
    return result


def test_page_blurs_background_keeps_person_sharp(tmp_path: Path) -> None:
    y4m = write_y4m(tmp_path / "person.y4m")
    ARTIFACTS.mkdir(exist_ok=True)
    mask = person_mask()
    before = {t.name for t in threading.enumerate()}

    r = asyncio.run(run_e2e(y4m, lambda s, size: FakeSegmenter(mask=mask), ARTIFACTS))

    local, remote = r["local"], r["remote"]
    cv2.imwrite(str(ARTIFACTS / "web-local.png"), local)
    cv2.imwrite(str(ARTIFACTS / "web-remote.png"), remote)
    h, w = remote.shape[:2]
    core, far = regions(w, h)
    lh, lw = local.shape[:2]
    lcore, lfar = regions(lw, lh)
    figures = {
        "remote_size": [w, h],
        "lapvar_bg_in": lap_var(local, lfar),
        "lapvar_bg_out": lap_var(remote, far),
        "lapvar_person_in": lap_var(local, lcore),
        "lapvar_person_out": lap_var(remote, core),
        "lapvar_bg_passthrough": lap_var(r["passthrough"], far),
        "lag_frames_on_median": statistics.median(r["lag_on"]),
        "lag_frames_off_median": statistics.median(r["lag_off"]),
        "lag_on": r["lag_on"],
        "lag_off": r["lag_off"],
        "fps_in_page": r["stats"].get("inbound", {}).get("framesPerSecond"),
        "jitter_buffer_ms": 1000
        * r["stats"]["inbound"]["jitterBufferDelay"]
        / max(1, r["stats"]["inbound"]["jitterBufferEmittedCount"]),
        "rtt_ms": 1000 * r["stats"].get("remote", {}).get("roundTripTime", float("nan")),
        "server": r["server"],
        "first_frame_s": r["first_frame_s"],
        "phases_s": r["phases"],
    }
    (ARTIFACTS / "web-e2e.json").write_text(json.dumps(figures, indent=2))

    # background blurred: far from the person, detail is mostly gone
    assert figures["lapvar_bg_out"] < 0.2 * figures["lapvar_bg_in"], figures
    # ... and it is the processing that removed it (off = detail back)
    assert figures["lapvar_bg_passthrough"] > 3 * figures["lapvar_bg_out"], figures
    # person sharp: the checkered disc keeps its detail
    assert figures["lapvar_person_out"] > 0.5 * figures["lapvar_person_in"], figures
    assert r["lag_on"] and r["lag_off"], "frame numbers unreadable"
    assert r["server"]["frames_out"] > 0 and r["server"]["error"] is None
    assert r["peers_open"] == 1 and r["peers_after"] == 0
    leaked = {t.name for t in threading.enumerate()} - before
    assert not {n for n in leaked if "blurcam" in n or "decoder" in n}, leaked
