/* innrsic view: a Leaflet map (L.CRS.Simple, one unit per scene pixel at the native level) of
   a .rsic scene; the decoded layer, the enhanced layer in its own pane, clipped at a draggable
   divider in compare mode. State is in the query string (file, mode, model, t, seed, x, y, z),
   so a view can be linked. */
"use strict";

const $ = (id) => document.getElementById(id);
const ERROR_TILE = "data:image/svg+xml," + encodeURIComponent(
  '<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256">' +
  '<rect width="256" height="256" fill="#5a1f1f"/><text x="128" y="132" fill="#fff" ' +
  'font-family="sans-serif" font-size="18" text-anchor="middle">tile failed</text></svg>');
const ZOOM_OUT = 5;  // levels below the native one the map goes to
const ENHANCED_ZOOM_OUT = 2;  // ... and the enhanced layer (the network is costly)
const viewer = { map: null, scene: null, decoded: null, enhanced: null, loading: 0, split: 0.5,
                 requested: [] };
window.viewer = viewer;

async function getJSON(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

function enhanceQuery() {
  return new URLSearchParams({ enhance: $("model").value, temperature: $("temperature").value,
                               seed: $("seed").value || "0" }).toString();
}

function tileUrl(scene, query) {
  const base = `/api/tile/${encodeURIComponent(scene.name)}/{z}/{x}/{y}.png`;
  return query ? `${base}?${query}` : base;
}

function showStatus() {
  const far = viewer.map && $("mode").value !== "decoded" &&
    viewer.map.getZoom() < viewer.scene.native_zoom - ENHANCED_ZOOM_OUT;
  $("status").textContent = viewer.loading > 0 ? `computing ${viewer.loading} tile(s)…` :
    far ? "zoom in to see the enhanced image" : "";
}

function track(layer) {
  layer.on("tileloadstart", (event) => {
    viewer.loading += 1;
    viewer.requested.push(event.tile.src);
    showStatus();
  });
  layer.on("tileload tileerror tileabort", () => { viewer.loading = Math.max(0, viewer.loading - 1);
                                         showStatus(); });
  return layer;
}

// A layer of `scene`'s tiles: the server makes levels down to `native - lowest`, Leaflet
// scales those down to `native - shown` and hides the layer further out.
function makeLayer(scene, bounds, query, pane, lowest, shown) {
  const native = scene.native_zoom;
  return track(L.tileLayer(tileUrl(scene, query), {
    bounds, pane, tileSize: scene.tile, maxNativeZoom: native,
    minNativeZoom: Math.max(0, native - lowest), minZoom: native - shown,
    errorTileUrl: ERROR_TILE, keepBuffer: 1,
  }));
}

function clipEnhanced() {
  const map = viewer.map;
  if (!map) return;
  const pane = map.getPane("enhanced");
  const divider = $("divider");
  if ($("mode").value !== "compare") {
    pane.style.clip = "";
    divider.classList.add("hidden");
    return;
  }
  const size = map.getSize();
  const x = Math.round(size.x * viewer.split);
  const nw = map.containerPointToLayerPoint([0, 0]);
  const se = map.containerPointToLayerPoint(size);
  pane.style.clip = `rect(${nw.y}px, ${se.x}px, ${se.y}px, ${nw.x + x}px)`;
  divider.classList.remove("hidden");
  divider.style.left = `${x}px`;
}

function applyMode() {
  const map = viewer.map;
  const mode = $("mode").value;
  for (const [layer, on] of [[viewer.decoded, mode !== "enhanced"],
                             [viewer.enhanced, mode !== "decoded"]]) {
    if (on && !map.hasLayer(layer)) layer.addTo(map);
    if (!on && map.hasLayer(layer)) map.removeLayer(layer);
  }
  clipEnhanced();
  showStatus();
  saveState();
}

function showScene(scene, view) {
  if (viewer.map) viewer.map.remove();
  viewer.scene = scene;
  viewer.loading = 0;
  const native = scene.native_zoom;
  const map = L.map("map", { crs: L.CRS.Simple, minZoom: native - ZOOM_OUT, maxZoom: native + 3,
                             attributionControl: false, zoomSnap: 1 });
  viewer.map = map;
  const bounds = L.latLngBounds(map.unproject([0, scene.height], native),
                                map.unproject([scene.width, 0], native));
  map.createPane("enhanced").style.zIndex = 250;  // above the decoded tiles (200)
  viewer.decoded = makeLayer(scene, bounds, "", "tilePane", 4, ZOOM_OUT);
  viewer.enhanced = makeLayer(scene, bounds, enhanceQuery(), "enhanced", 1, ENHANCED_ZOOM_OUT);
  if (view && view.x !== null) {
    map.setView(map.unproject([view.x, view.y], native), view.z ?? native);
  } else {
    map.fitBounds(bounds);
  }
  map.on("move zoom resize", clipEnhanced);
  map.on("moveend", saveState);
  map.on("zoomend", showStatus);
  applyMode();
  const bytes = (scene.file_bytes / 1024).toFixed(1);
  $("info").textContent = `${scene.width}×${scene.height} px · ${scene.codec} · ` +
    `${scene.bpp.toFixed(3)} bpp · ${bytes} KiB` + (scene.error ? ` · damaged: ${scene.error}` : "");
}

function saveState() {
  const map = viewer.map;
  if (!map || !viewer.scene) return;
  const centre = map.project(map.getCenter(), viewer.scene.native_zoom);
  const state = new URLSearchParams({
    file: viewer.scene.name, mode: $("mode").value, model: $("model").value,
    t: $("temperature").value, seed: $("seed").value, x: Math.round(centre.x),
    y: Math.round(centre.y), z: map.getZoom() });
  history.replaceState(null, "", `?${state}`);
}

function updateEnhanced() {
  $("temperature-value").textContent = Number($("temperature").value).toFixed(2);
  if (viewer.enhanced) viewer.enhanced.setUrl(tileUrl(viewer.scene, enhanceQuery()));
  saveState();
}

function dragDivider() {
  const divider = $("divider");
  divider.addEventListener("pointerdown", (event) => {
    divider.setPointerCapture(event.pointerId);
    event.preventDefault();
  });
  divider.addEventListener("pointermove", (event) => {
    if (!divider.hasPointerCapture(event.pointerId)) return;
    const box = $("map").getBoundingClientRect();
    viewer.split = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
    clipEnhanced();
  });
}

function fill(select, values, chosen) {
  for (const value of values) select.add(new Option(value, value));
  if (chosen && values.includes(chosen)) select.value = chosen;
}

async function main() {
  const given = new URLSearchParams(location.search);
  const [files, models] = await Promise.all([getJSON("/api/files"), getJSON("/api/models")]);
  fill($("file"), files.map((f) => f.name), given.get("file"));
  fill($("model"), models, given.get("model"));
  if (given.has("mode")) $("mode").value = given.get("mode");
  if (given.has("t")) $("temperature").value = given.get("t");
  if (given.has("seed")) $("seed").value = given.get("seed");
  $("temperature-value").textContent = Number($("temperature").value).toFixed(2);
  const number = (key) => (given.has(key) ? Number(given.get(key)) : null);
  const byName = (name) => files.find((f) => f.name === name);
  showScene(byName($("file").value), { x: number("x"), y: number("y"), z: number("z") });
  $("file").addEventListener("change", () => showScene(byName($("file").value)));
  $("mode").addEventListener("change", applyMode);
  for (const id of ["model", "temperature", "seed"]) {
    $(id).addEventListener("change", updateEnhanced);
  }
  $("temperature").addEventListener("input", () => {
    $("temperature-value").textContent = Number($("temperature").value).toFixed(2);
  });
  dragDivider();
}

main().catch((error) => { $("status").textContent = `error: ${error.message}`; });
