"""Blur the camera of your own aiortc app: wrap the incoming track in BlurTrack.

Run ``python docs/examples/web_track.py`` and POST a browser's offer to
http://127.0.0.1:8081/offer; the answer carries the blurred video back.
"""

import asyncio

from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription

from blurcam.web import BlurTrack

pcs: set[RTCPeerConnection] = set()


async def offer(request: web.Request) -> web.Response:
    params = await request.json()
    pc = RTCPeerConnection()
    pcs.add(pc)

    @pc.on("track")
    def on_track(track):  # type: ignore[no-untyped-def]
        if track.kind == "video":  # same timestamps, background blurred
            pc.addTrack(BlurTrack(track, strength=0.8, model="selfie"))

    await pc.setRemoteDescription(RTCSessionDescription(params["sdp"], params["type"]))
    await pc.setLocalDescription(await pc.createAnswer())
    return web.json_response({"sdp": pc.localDescription.sdp, "type": "answer"})


async def close_all(app: web.Application) -> None:
    await asyncio.gather(*(pc.close() for pc in pcs))


app = web.Application()
app.router.add_post("/offer", offer)
app.on_shutdown.append(close_all)

if __name__ == "__main__":
    web.run_app(app, host="127.0.0.1", port=8081)
