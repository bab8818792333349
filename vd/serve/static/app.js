// vd serve's dashboard: polls /v1/sources and /v1/events once a second; no library, no build.
// The token (when the server wants one) is asked once and kept in sessionStorage; a link may
// carry it as #token=... (moved to sessionStorage and removed from the address bar).
// Snapshots and clips are fetched with the token and shown from blob URLs.
"use strict";

const POLL_MS = 1000;
const HISTORY_S = 300;
const $ = (id) => document.getElementById(id);
const blobs = new Map();   // key -> object URL
const regions = new Map(); // source name -> {masks, zones}: polygons as fractions of the picture
let announced = false;

(function tokenFromHash() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("vd-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
})();

function headers() {
  const t = sessionStorage.getItem("vd-token");
  return t ? { Authorization: "Bearer " + t } : {};
}

class NeedToken extends Error {}

async function api(path, options = {}) {
  const r = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  if (r.status === 401) throw new NeedToken("token needed");
  return r;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function sparkline(history, threshold) {
  // x: stream seconds, the newest window's end at the right edge; y: P(violent)
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 300 60");
  svg.setAttribute("preserveAspectRatio", "none");
  const y = (p) => (58 - p * 56).toFixed(1);
  if (threshold != null) {
    const line = document.createElementNS(NS, "line");
    line.setAttribute("x1", "0"); line.setAttribute("x2", "300");
    line.setAttribute("y1", y(threshold)); line.setAttribute("y2", y(threshold));
    svg.append(line);
  }
  const now = history.length ? history[history.length - 1][0] : 0;
  const span = history.length ? Math.min(HISTORY_S, Math.max(30, now - history[0][0])) : HISTORY_S;
  const pts = history.map(([t, p]) => `${(300 - (now - t) / span * 300).toFixed(1)},${y(p)}`);
  if (pts.length) {
    const pl = document.createElementNS(NS, "polyline");
    pl.setAttribute("points", pts.length === 1 ? `${pts[0]} 300,${pts[0].split(",")[1]}` : pts.join(" "));
    svg.append(pl);
  }
  return svg;
}

function outline(r) {
  // the source's zones (dashed) and masks (shaded) over its snapshot, in fractions of the picture
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 1 1");
  svg.setAttribute("preserveAspectRatio", "none");
  for (const [kind, polys] of [["zone", r.zones || []], ["mask", r.masks || []]]) {
    for (const pts of polys) {
      const p = document.createElementNS(NS, "polygon");
      p.setAttribute("class", kind);
      p.setAttribute("points", pts.map(([x, y]) => `${x},${y}`).join(" "));
      svg.append(p);
    }
  }
  return svg;
}

function renderSources(sources) {
  const box = $("tiles");
  for (const s of sources) if (s.regions) regions.set(s.name, s.regions);
  if (!sources.length) {
    box.replaceChildren(el("p", { class: "muted" }, "No watched source."));
    return;
  }
  box.replaceChildren(...sources.map((s) => {
    const score = s.score == null ? "–" : s.score.toFixed(2);
    return el("div", { class: `tile state-${s.state}`, "data-source": s.name },
      el("div", { class: "name" }, s.name),
      el("div", { class: "row" },
        el("span", { class: "state" }, s.state),
        el("span", {}, "P(violent) ", el("b", {}, score))),
      el("div", { class: "row muted" },
        el("span", {}, `lag ${s.lag_s == null ? "–" : s.lag_s.toFixed(1)} s`),
        el("span", {}, `windows ${s.windows ?? 0}, dropped ${s.dropped_windows ?? 0}`)),
      sparkline(s.history || [], s.threshold));
  }));
}

async function blobUrl(key, path) {
  if (blobs.has(key)) return blobs.get(key);
  const r = await api(path);
  if (!r.ok) return null;
  const url = URL.createObjectURL(await r.blob());
  blobs.set(key, url);
  return url;
}

async function review(id, label, node) {
  node.textContent = "saving…";
  const r = await api(`/v1/events/${encodeURIComponent(id)}/review`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ label }),
  });
  const body = await r.json();
  node.textContent = r.ok ? `marked ${body.label} (${body.labels_csv})` : body.error;
}

const shown = new Map();   // id -> {li, key}

function incidentItem(e) {
  const img = el("img", { alt: `snapshot of ${e.id}`, class: "snapshot" });
  const media = el("div", { class: "clip" });
  const msg = el("span", { class: e.review ? "reviewed" : "muted" },
    e.review ? `marked ${e.review}` : "");
  const when = e.state === "open" ? el("span", { class: "open" }, "OPEN") :
    el("span", {}, `ended (${e.reason || ""})`);
  const info = el("div", {},
    el("div", {}, el("b", {}, e.source), " ", when),
    el("div", { class: "muted" }, `${e.start_time} · ${e.start_s.toFixed(1)}–` +
      `${e.end_s == null ? "…" : e.end_s.toFixed(1)} s · peak ${e.peak.toFixed(2)} at ${e.peak_s.toFixed(1)} s`),
    el("div", {},
      el("button", { type: "button", onclick: () => review(e.id, "violent", msg) }, "Violent"),
      el("button", { type: "button", onclick: () => review(e.id, "false alarm", msg) }, "False alarm"),
      msg));
  if (e.snapshot) {
    blobUrl(`${e.id}@${e.peak_s}`, e.snapshot).then((u) => { if (u) img.src = u; });
  }
  if (e.clip) {
    blobUrl(`${e.id}.webm`, `${e.clip}?format=webm`).then((u) => {
      if (u) media.replaceChildren(el("video", { controls: "", preload: "metadata", src: u }));
    });
  } else {
    media.append(el("span", { class: "muted" }, "clip when the incident ends"));
  }
  const snap = el("div", { class: "snap" }, img);
  if (regions.has(e.source)) snap.append(outline(regions.get(e.source)));
  return el("li", { class: "incident", "data-id": e.id }, snap, media, info);
}

function renderEvents(events) {
  const box = $("incidents");
  if (!events.length) {
    if (!box.querySelector(".none")) box.replaceChildren(el("li", { class: "muted none" }, "No incident yet."));
    return;
  }
  const items = events.map((e) => {
    const key = `${e.state}|${e.peak_s}|${e.review}|${regions.has(e.source)}`;
    const old = shown.get(e.id);
    if (old && old.key === key) return old.li;
    const li = incidentItem(e);
    shown.set(e.id, { li, key });
    return li;
  });
  box.replaceChildren(...items);
}

async function poll() {
  try {
    const [s, e] = await Promise.all([api("/v1/sources"), api("/v1/events")]);
    const sources = await s.json();
    const events = await e.json();
    $("login").hidden = true;
    renderSources(sources.sources || []);
    renderEvents(events.events || []);
    $("status").textContent = sources.ready ? `live · ${new Date().toLocaleTimeString()}` :
      (sources.error ? `error: ${sources.error}` : "model loading…");
    if (!announced) { console.log("vd dashboard: ready"); announced = true; }
  } catch (err) {
    if (err instanceof NeedToken) {
      $("login").hidden = false;
      $("status").textContent = "token needed";
    } else {
      $("status").textContent = "server unreachable; retrying";
    }
  }
  setTimeout(poll, POLL_MS);
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("vd-token", $("token").value.trim());
  $("login-msg").textContent = "";
});

poll();
