// blurcam page: send the camera over WebRTC, show the processed stream, drive the controls.
// Plain JS, no dependencies, nothing loaded from outside this server.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { pc: null, id: null, ready: false, error: null, info: null };
window.blurcam = state; // for tests and curious users

function status(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
  if (isError) state.error = text;
}

async function post(path, body, type = "application/json") {
  const resp = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": type },
    body: type === "application/json" ? JSON.stringify(body) : body,
  });
  let data = {};
  try { data = await resp.json(); } catch (e) { /* empty body */ }
  if (!resp.ok) throw new Error(data.error || `HTTP ${resp.status}`);
  return data;
}

function waitIceGathering(pc, timeoutMs) {
  // aiortc does not trickle ICE: send the offer once gathering is complete.
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(done, timeoutMs);
  });
}

function fillSelect(sel, values, current) {
  sel.replaceChildren(...values.map((v) => new Option(v, v, false, v === current)));
}

function controls() {
  return {
    effect: $("effect").value,
    strength: parseFloat($("strength").value),
    model: $("model").value,
    enabled: $("enabled").checked,
  };
}

let sending = false, again = false;
async function sendControls() {
  // one request in flight at a time; a slider drag sends its latest value when it lands
  $("strength-value").textContent = parseFloat($("strength").value).toFixed(2);
  if (!state.id) return;
  if (sending) { again = true; return; }
  sending = true;
  try { await post(`/peer/${state.id}/settings`, controls()); status("live"); }
  catch (e) { status(e.message, true); }
  sending = false;
  if (again) { again = false; sendControls(); }
}

async function start() {
  const info = await (await fetch("/info")).json();
  state.info = info;
  fillSelect($("effect"), info.effects, info.effect);
  fillSelect($("model"), info.models, info.model);
  $("strength").value = info.strength;
  $("strength-value").textContent = info.strength.toFixed(2);
  $("bg-label").hidden = !info.background;
  $("keep-hint").hidden = $("keep-clear").hidden = !info.keep;

  status("opening camera…");
  const cam = await navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } },
    audio: false,
  });
  $("local").srcObject = cam;

  const pc = new RTCPeerConnection({ iceServers: [] });
  state.pc = pc;
  const sender = pc.addTrack(cam.getVideoTracks()[0], cam);
  try {
    const p = sender.getParameters();
    p.degradationPreference = "maintain-resolution";
    await sender.setParameters(p);
  } catch (e) { /* optional */ }
  pc.addEventListener("track", (ev) => {
    $("remote").srcObject = ev.streams[0] || new MediaStream([ev.track]);
  });
  pc.addEventListener("connectionstatechange", () => {
    if (pc.connectionState === "connected") status("live");
    else if (["failed", "disconnected", "closed"].includes(pc.connectionState))
      status(`connection ${pc.connectionState}`, pc.connectionState === "failed");
  });

  await pc.setLocalDescription(await pc.createOffer());
  status("connecting…");
  await waitIceGathering(pc, 3000);
  const answer = await post("/offer", {
    sdp: pc.localDescription.sdp, type: pc.localDescription.type, settings: controls(),
  });
  state.id = answer.id;
  await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
  state.ready = true;
  setInterval(updateStats, 500);
}

let last = { frames: 0, t: 0 };
async function updateStats() {
  if (!state.pc || !state.id) return;
  let rtt = null, jitter = null, fps = null, w = 0, h = 0;
  const report = await state.pc.getStats();
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") {
      if (s.jitterBufferEmittedCount) jitter = s.jitterBufferDelay / s.jitterBufferEmittedCount;
      if (last.t) fps = (s.framesDecoded - last.frames) / ((s.timestamp - last.t) / 1000);
      last = { frames: s.framesDecoded, t: s.timestamp };
      w = s.frameWidth || 0; h = s.frameHeight || 0;
    }
    if (s.type === "remote-inbound-rtp" && s.kind === "video" && s.roundTripTime !== undefined)
      rtt = s.roundTripTime;
  });
  let server = null;
  try {
    const r = await fetch(`/peer/${state.id}/stats`);
    if (r.ok) server = await r.json();
  } catch (e) { /* server gone */ }
  state.stats = { rtt, jitter, fps, server };
  if (fps !== null) $("fps").textContent = fps.toFixed(1);
  if (w) $("size").textContent = `${w}×${h}`;
  if (rtt !== null) $("rtt").textContent = `${(rtt * 1000).toFixed(0)} ms`;
  if (server) {
    const every = server.model_every > 1 ? `, model every ${server.model_every}nd frame` : "";
    $("server").textContent = `${server.latency_ms.toFixed(0)} ms (${server.process_ms.toFixed(0)} ms work, ${server.dropped} dropped${every})`;
    if (server.error) status(server.error, true);
    // camera -> server -> page: network both ways + server time + our jitter buffer
    if (rtt !== null && jitter !== null)
      $("latency").textContent = `≈${(rtt * 1000 + server.latency_ms + jitter * 1000).toFixed(0)} ms`;
  }
}

async function uploadBackground() {
  const file = $("background").files[0];
  if (!file || !state.id) return;
  if (file.size > state.info.max_upload_bytes) { status("image too large", true); return; }
  try {
    const r = await post(`/peer/${state.id}/background`, file, file.type || "application/octet-stream");
    $("effect").value = r.effect;
    status("live");
  } catch (e) { status(e.message, true); }
}

async function keepAt(ev) {
  if (!state.id || !state.info.keep) return;
  // the picture is letterboxed inside the element (object-fit: contain)
  const v = $("remote"), rect = v.getBoundingClientRect();
  const vw = v.videoWidth || 4, vh = v.videoHeight || 3;
  const scale = Math.min(rect.width / vw, rect.height / vh);
  const w = vw * scale, h = vh * scale;
  const x = (ev.clientX - rect.left - (rect.width - w) / 2) / w;
  const y = (ev.clientY - rect.top - (rect.height - h) / 2) / h;
  if (x < 0 || x > 1 || y < 0 || y > 1) return;
  try { await post(`/peer/${state.id}/keep`, { x, y }); status("live"); }
  catch (e) { status(e.message, true); }
}

function leave() {
  if (state.id) navigator.sendBeacon(`/peer/${state.id}/close`);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const id of ["effect", "model", "enabled"]) $(id).addEventListener("change", sendControls);
  $("strength").addEventListener("input", sendControls);
  $("background").addEventListener("change", uploadBackground);
  $("remote").addEventListener("click", keepAt);
  $("keep-clear").addEventListener("click", () =>
    state.id && post(`/peer/${state.id}/keep`, { clear: true }).catch((e) => status(e.message, true)));
  window.addEventListener("pagehide", leave);
  start().catch((e) => status(`error: ${e.message || e}`, true));
});
