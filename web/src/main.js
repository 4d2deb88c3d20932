// tongge 同格 web map: sign in, switch layer and level, locate, look at a unit.
// Everything it loads comes from the server that serves it (no CDN, no fonts
// or basemap from the internet) unless the operator configures an external
// basemap: the map is the city's own units, streets and places as vector tiles.
import maplibregl from "maplibre-gl";
import { api, session } from "./api.js";
import { t, setLanguage, language, translatePage, onLanguage } from "./i18n.js";
import { renderLocate, renderMessage } from "./panel.js";
import { EditMode } from "./edit.js";
import { showUnitRoutes } from "./patrol.js";
import { Tree } from "./tree.js";
import { search as searchAll } from "./search.js";
import { renderUnitPanel } from "./unitpanel.js";
import { SameGrid } from "./samegrid.js";
import { fillColour, forgetWorkload, renderLegend, workloadOf } from "./workload.js";
import { IncidentsLayer } from "./incidents.js";
import { loadBasemap, tileQuery, toDisplay, toServer } from "./basemap.js";
import { GLYPHS, LOCAL_CJK_FONTS, LABEL_LAYERS, STREET_LAYERS, addLabels, addStreets } from "./labels.js";
import { readView, writeView } from "./url.js";

const state = {
  layers: [],
  layer: null,
  level: null,
  datum: "cgcs2000",
  me: null,
  unit: null,
  // What the side panel shows, to draw it again in another language.
  panel: { kind: "hint" },
};

// Read before the map writes its own view into the hash.
const initialHash = location.hash;
const initialParams = new URLSearchParams(initialHash.slice(1));

const map = new maplibregl.Map({
  container: "map",
  style: { version: 8, sources: {}, glyphs: `${location.origin}${GLYPHS}`, layers: [
    { id: "background", type: "background", paint: { "background-color": "#f4f1ea" } },
  ] },
  center: [118.58, 24.91],
  zoom: 12,
  localIdeographFontFamily: LOCAL_CJK_FONTS,
  attributionControl: false,
  // Labels without their 300 ms fade: each fade is a few more whole-map
  // redraws after every change, and without a GPU each one blocks the page
  // 100–200 ms (issue 14).
  fadeDuration: 0,
  canvasContextAttributes: { preserveDrawingBuffer: true },
  transformRequest: (url) =>
    url.startsWith(location.origin) ? { url, headers: session.headers() } : { url },
});
map.addControl(new maplibregl.NavigationControl(), "top-left");
map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
window.tonggeMap = map; // for the browser tests and the curious

let marker = null;
let editor = null;
let tree = null;
let sameGrid = null;
const may = (permission) => state.me?.permissions.includes(permission);
let incidents = null; // the incidents control (incidents.js), for callers who may read them

function tileUrl(layer, level) {
  return `${location.origin}/api/v1/tiles/${encodeURIComponent(layer)}/${encodeURIComponent(level)}/{z}/{x}/{y}.mvt${tileQuery()}`;
}

function showLevel() {
  const { layer, level } = state;
  incidents?.detach();
  for (const id of ["units-fill", ...STREET_LAYERS, "buildings", "pois", "units-line", "units-selected", "parent-line", ...LABEL_LAYERS]) {
    if (map.getLayer(id)) map.removeLayer(id);
  }
  for (const id of ["units", "parents", "places"]) if (map.getSource(id)) map.removeSource(id);
  if (!layer || !level) return;
  map.addSource("units", { type: "vector", tiles: [tileUrl(layer, level)], minzoom: 8, maxzoom: 18, promoteId: "code" });
  map.addSource("places", { type: "vector", tiles: [`${location.origin}/api/v1/tiles/places/{z}/{x}/{y}.mvt${tileQuery()}`], minzoom: 14, maxzoom: 18 });
  map.addLayer({
    id: "units-fill", type: "fill", source: "units", "source-layer": level,
    paint: {
      "fill-color": ["interpolate", ["linear"], ["coalesce", ["get", "households"], 0],
        0, "#edf3f8", 300, "#9ecae1", 500, "#3182bd", 800, "#c0392b"],
      "fill-opacity": ["interpolate", ["linear"], ["zoom"], 13, 0.55, 16, 0.25],
    },
  });
  // The city's own places as the basemap (offline): streets, footprints, then POIs.
  addStreets(map);
  map.addLayer({
    id: "buildings", type: "fill", source: "places", "source-layer": "buildings", minzoom: 14,
    paint: { "fill-color": "#b9b2a6", "fill-opacity": 0.85, "fill-outline-color": "#8d8578" },
  });
  map.addLayer({
    id: "pois", type: "circle", source: "places", "source-layer": "pois", minzoom: 15,
    paint: { "circle-radius": 4, "circle-color": "#8e44ad", "circle-stroke-color": "#fff", "circle-stroke-width": 1 },
  });
  map.addLayer({
    id: "units-line", type: "line", source: "units", "source-layer": level,
    paint: { "line-color": "#2c3e50", "line-width": 0.8 },
  });
  map.addLayer({
    id: "units-selected", type: "line", source: "units", "source-layer": level,
    filter: ["==", ["get", "code"], state.unit ?? ""],
    paint: { "line-color": "#c0392b", "line-width": 3 },
  });
  const levels = state.layers.find((l) => l.name === layer)?.levels ?? [];
  const rank = levels.find((l) => l.name === level)?.rank ?? 0;
  const parent = levels.find((l) => l.rank === rank - 1);
  if (parent) {
    map.addSource("parents", { type: "vector", tiles: [tileUrl(layer, parent.name)], minzoom: 8, maxzoom: 18 });
    map.addLayer({
      id: "parent-line", type: "line", source: "parents", "source-layer": parent.name,
      paint: { "line-color": "#2c3e50", "line-width": 2.2 },
    });
  }
  colourByWorkload();
  incidents?.refresh();
  addLabels(map, level, parent?.name);
  writeUrl();
}

async function colourByWorkload() {
  // The fill against the level's household target (when the role may read workload).
  const { layer, level } = state;
  const legend = document.getElementById("legend");
  const on = document.getElementById("workload-on").checked;
  if (!may("workload:read") || !on) {
    legend.hidden = true;
    if (map.getLayer("units-fill")) map.setPaintProperty("units-fill", "fill-color", fillColour(null));
    return;
  }
  try {
    const { target, most } = await workloadOf(layer, level);
    if (layer !== state.layer || level !== state.level || !map.getLayer("units-fill")) return;
    map.setPaintProperty("units-fill", "fill-color", fillColour(target, most));
    const title = state.layers.find((l) => l.name === layer)?.levels.find((l) => l.name === level)?.title ?? level;
    renderLegend(legend, target, title, most);
    legend.hidden = false;
  } catch {
    legend.hidden = true;
  }
}

function reloadTiles() {
  for (const id of ["units", "parents"]) {
    const source = map.getSource(id);
    if (source) source.setTiles(source.tiles);
  }
}

let watching = 0;

async function servingRevision() {
  try {
    return (await api("/health/ready")).boundaries_revision ?? null;
  } catch {
    return null;
  }
}

function refreshTiles() {
  forgetWorkload();
  // The server rebuilds its indexes in the background: fetch the tiles again
  // now and a little later, so the new units appear as soon as they exist.
  for (const delay of [200, 1500, 4000]) setTimeout(reloadTiles, delay);
  // A slower rebuild (a large city, a busy server): watch the revision the
  // tiles are made from and fetch them again once it moves on (up to a minute).
  const run = ++watching;
  (async () => {
    const seen = await servingRevision();
    for (let i = 0; i < 120 && run === watching; i++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const now = await servingRevision();
      if (now !== null && now !== seen) {
        reloadTiles();
        return;
      }
    }
  })();
}

function writeUrl() {
  writeView(map, { layer: state.layer, level: state.level, unit: state.unit, lang: language() });
}

function fillLevels() {
  const select = document.getElementById("level");
  const levels = state.layers.find((l) => l.name === state.layer)?.levels ?? [];
  select.replaceChildren(...levels.map((l) => new Option(`${l.title}`, l.name)));
  if (!levels.some((l) => l.name === state.level)) {
    const lowest = levels.filter((l) => l.unit_count > 0).at(-1) ?? levels.at(-1);
    state.level = lowest?.name ?? null;
  }
  select.value = state.level ?? "";
}

async function fitToJurisdiction() {
  // A scoped user starts on their own units; everyone else on the top level.
  const bounds = new maplibregl.LngLatBounds();
  const refs = state.me.units.length ? state.me.units : null;
  if (refs) {
    for (const ref of refs) {
      const [layer, code] = ref.split(":");
      const unit = await api(`/api/v1/units/${encodeURIComponent(code)}?layer=${encodeURIComponent(layer)}`);
      extend(bounds, unit.geometry);
    }
  } else {
    const top = state.layers.find((l) => l.name === state.layer)?.levels[0];
    if (!top) return;
    const page = await api(`/api/v1/layers/${encodeURIComponent(state.layer)}/units?level=${encodeURIComponent(top.name)}&limit=50`);
    for (const feature of page.features) extend(bounds, feature.geometry);
  }
  map.resize(); // the page's styles may have arrived after the map was made
  if (!bounds.isEmpty()) map.fitBounds(bounds, { padding: 30, animate: false });
}

function extend(bounds, geometry) {
  const walk = (c) => (typeof c[0] === "number" ? bounds.extend(toDisplay(c)) : c.forEach(walk));
  walk(geometry.coordinates);
}

async function locate(body) {
  renderMessage(t("locating"));
  state.panel = { kind: "busy" };
  try {
    const answer = await api("/api/v1/geocode", { method: "POST", body });
    state.panel = { kind: "locate", answer };
    renderLocate(answer, { onUnit: openUnit });
    if (answer.lon != null) {
      marker?.remove();
      const shown = toDisplay([answer.lon, answer.lat]);
      marker = new maplibregl.Marker({ color: "#c0392b" }).setLngLat(shown).addTo(map);
      const own = answer.layers[state.layer]?.units.find((u) => u.level === state.level);
      select(own?.code ?? "");
      if (!map.getBounds().contains(shown)) map.flyTo({ center: shown });
    }
  } catch (error) {
    state.panel = { kind: "error" };
    renderMessage(error.message, true);
  }
}

function select(code) {
  state.unit = code || null;
  if (map.getLayer("units-selected")) map.setFilter("units-selected", ["==", ["get", "code"], code ?? ""]);
  writeUrl();
}

function drawUnitPanel(unit) {
  const { code, layer } = unit.properties;
  state.panel = { kind: "unit", unit };
  renderUnitPanel(document.getElementById("panel"), unit, {
    me: state.me, layers: state.layers, onUnit: openUnit, onChanged: refreshTiles,
    // Patrol routes of the unit (patrol.js), for the roles that plan and walk them.
    routes: may("patrol") ? () => showUnitRoutes(map, code, layer) : null,
  });
}

async function openUnit(code, layer) {
  try {
    const unit = await api(`/api/v1/units/${encodeURIComponent(code)}?layer=${encodeURIComponent(layer)}`);
    drawUnitPanel(unit);
    if (layer === state.layer) select(code);
    return unit;
  } catch (error) {
    state.panel = { kind: "error" };
    renderMessage(error.message, true);
    return null;
  }
}

/** Show a unit (GeoJSON Feature) on the map: its layer and level, flown to, selected, its panel open. */
function switchTo(layer, level) {
  if (layer === state.layer && level === state.level) return;
  const known = state.layers.find((l) => l.name === layer)?.levels.some((l) => l.name === level);
  if (!known) return;
  const layerChanged = layer !== state.layer;
  state.layer = layer;
  document.getElementById("layer").value = layer;
  state.level = level;
  fillLevels();
  showLevel();
  editor?.setLevel(state.layer, state.level);
  if (layerChanged && tree && !document.getElementById("tree-box").hidden) showTree();
}

async function showUnit(feature) {
  const p = feature.properties;
  switchTo(p.layer, p.level);
  const bounds = new maplibregl.LngLatBounds();
  if (feature.geometry) extend(bounds, feature.geometry);
  if (!bounds.isEmpty()) map.fitBounds(bounds, { padding: 60, maxZoom: 17, duration: 600 });
  select(p.code);
  await openUnit(p.code, p.layer);
}

function showTree() {
  const layer = state.layers.find((l) => l.name === state.layer);
  if (layer) tree.show(layer).catch((error) => renderMessage(error.message, true));
}

function toggleView(name) {
  const views = { tree: "tree-box", samegrid: "samegrid-box" };
  for (const [view, box] of Object.entries(views)) {
    const open = view === name && document.getElementById(box).hidden;
    document.getElementById(box).hidden = !open;
    document.getElementById(`view-${view}`).setAttribute("aria-pressed", String(open));
    if (!open) continue;
    if (view === "tree") showTree();
    if (view === "samegrid" && !sameGrid.result) sameGrid.form();
  }
  if (document.getElementById("samegrid-box").hidden) sameGrid?.clear();
}

function parseQuery(text) {
  const numbers = text.trim().split(/[\s,，]+/).map(Number);
  if (numbers.length === 2 && numbers.every(Number.isFinite)) {
    return { x: numbers[0], y: numbers[1], crs: state.datum };
  }
  return null;
}

async function search(text) {
  const point = parseQuery(text);
  if (point) return locate(point);
  state.panel = { kind: "search", text };
  return searchAll(text, {
    layers: state.layers,
    panel: document.getElementById("panel"),
    onUnit: showUnit,
    onPoint: (answer) => locate({ address: text.trim() }).then(() => map.flyTo({ center: [answer.lon, answer.lat], zoom: 16 })),
  });
}

/** Draw every open panel again in the language just chosen (from what each last showed). */
function redrawInLanguage() {
  const shown = state.panel;
  if (shown.kind === "locate") renderLocate(shown.answer, { onUnit: openUnit });
  else if (shown.kind === "unit") drawUnitPanel(shown.unit);
  else if (shown.kind === "search") search(shown.text);
  else if (shown.kind === "hint") renderMessage(t("clickHint"));
  sameGrid?.redraw();
  if (editor?.draw) editor.redraw();
  if (state.me && may("workload:read")) colourByWorkload();
  if (tree && !document.getElementById("tree-box").hidden) showTree();
}

function bindControls() {
  document.getElementById("layer").addEventListener("change", (event) => {
    state.layer = event.target.value;
    fillLevels();
    showLevel();
    if (!document.getElementById("tree-box").hidden) showTree();
  });
  document.getElementById("view-tree").addEventListener("click", () => toggleView("tree"));
  document.getElementById("view-samegrid").addEventListener("click", () => toggleView("samegrid"));
  document.getElementById("workload-on").addEventListener("change", () => colourByWorkload());
  document.getElementById("level").addEventListener("change", (event) => {
    state.level = event.target.value;
    showLevel();
    editor?.setLevel(state.layer, state.level);
  });
  document.getElementById("edit-toggle").addEventListener("click", () => {
    if (editor.draw) editor.close(); else editor.open();
  });
  document.getElementById("edit-op").addEventListener("change", () => editor.render());
  document.getElementById("edit-draw").addEventListener("click", () => editor.startDrawing());
  document.getElementById("edit-preview").addEventListener("click", () => editor.preview());
  document.getElementById("edit-save").addEventListener("click", () => editor.save());
  document.getElementById("edit-reset").addEventListener("click", () => editor.reset());
  document.getElementById("datum").addEventListener("change", (event) => {
    state.datum = event.target.value;
  });
  document.getElementById("search").addEventListener("submit", (event) => {
    event.preventDefault();
    search(document.getElementById("query").value);
  });
  document.getElementById("lang").addEventListener("click", () => {
    setLanguage(language() === "zh" ? "en" : "zh");
    writeUrl();
  });
  onLanguage(redrawInLanguage);
  document.getElementById("signout").addEventListener("click", () => {
    session.clear();
    location.reload();
  });
  document.getElementById("png").addEventListener("click", () => {
    // The map's drawing buffer is kept (preserveDrawingBuffer), so the canvas
    // holds the current view, labels and selection included.
    const link = document.createElement("a");
    link.download = `tongge_${state.layer}_${state.level}${state.unit ? `_${state.unit}` : ""}.png`;
    link.href = map.getCanvas().toDataURL("image/png");
    link.click();
  });
  document.getElementById("print").addEventListener("click", () => window.print());
  map.on("moveend", () => { if (document.body.dataset.ready) writeUrl(); });
  map.on("click", (event) => {
    if (editor?.draw) {
      // Editing: a click picks the unit under it (unless a drawing is under way).
      if (editor.draw.getMode() !== "static") return;
      const hit = map.queryRenderedFeatures(event.point, { layers: ["units-fill"] })[0];
      if (hit) editor.toggleUnit(hit.properties.code);
      return;
    }
    const [x, y] = toServer([event.lngLat.lng, event.lngLat.lat]);
    locate({ x, y, crs: "cgcs2000" });
  });
  map.on("mousemove", "units-fill", () => { map.getCanvas().style.cursor = "crosshair"; });
}

async function signIn() {
  const dialog = document.getElementById("signin");
  dialog.hidden = false;
  await new Promise((resolve) => {
    document.getElementById("signin-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = new FormData(event.target);
      try {
        await session.signIn(form.get("username"), form.get("password"));
        dialog.hidden = true;
        resolve();
      } catch (error) {
        document.getElementById("signin-error").textContent = error.message;
      }
    });
  });
}

// Generated sample data (the bundled sample city) must never pass for a real layout.
function showSynthetic(layers) {
  const synthetic = layers.filter((l) => l.synthetic);
  const badge = document.getElementById("synthetic");
  badge.hidden = synthetic.length === 0;
  badge.title = synthetic.map((l) => `${l.title}: ${l.source ?? ""}`).join("\n");
  badge.dataset.layers = synthetic.map((l) => l.name).join(" ");
}

async function start() {
  const params = initialParams;
  setLanguage(params.get("lang") === "en" ? "en" : "zh");
  translatePage();
  bindControls();
  if (!session.token()) await signIn();
  let layers;
  try {
    [state.me, layers] = await Promise.all([api("/api/v1/auth/me"), api("/api/v1/layers")]);
  } catch {
    session.clear();
    await signIn();
    [state.me, layers] = await Promise.all([api("/api/v1/auth/me"), api("/api/v1/layers")]);
  }
  document.getElementById("who").textContent = `${state.me.name} · ${state.me.role_title}`;
  state.layers = layers.filter((l) => l.levels.some((lv) => lv.unit_count > 0));
  showSynthetic(state.layers);
  const layerSelect = document.getElementById("layer");
  layerSelect.replaceChildren(...state.layers.map((l) => new Option(l.title, l.name)));
  state.layer = state.layers.some((l) => l.name === params.get("layer")) ? params.get("layer") : state.layers[0]?.name;
  state.level = params.get("level");
  layerSelect.value = state.layer ?? "";
  fillLevels();
  // The role decides what is offered: the server refuses the rest anyway.
  tree = new Tree(document.getElementById("tree-box"), { onSelect: showUnit });
  window.tonggeTree = tree;
  if (may("workload:read")) document.getElementById("workload-toggle").hidden = false;
  if (may("alignment:read")) {
    sameGrid = new SameGrid(map, {
      me: state.me, box: document.getElementById("samegrid-box"), tileUrl, onUnit: openUnit,
      onApplied: refreshTiles, onShow: switchTo,
    });
    window.tonggeSameGrid = sameGrid;
    document.getElementById("view-samegrid").hidden = false;
  }
  if (state.me.permissions.includes("incidents:read")) {
    incidents = new IncidentsLayer(() => ({ layer: state.layer, level: state.level }));
    map.addControl(incidents, "top-right");
  }
  if (state.me.permissions.includes("boundaries:edit")) {
    editor = new EditMode(map, { layer: state.layer, level: state.level, onSaved: refreshTiles });
    window.tonggeEditor = editor;
    document.getElementById("edit-toggle").hidden = false;
  }
  const ready = async () => {
    map.resize();
    try {
      await loadBasemap(map, api); // before any overlay: they follow its datum
    } catch (error) {
      renderMessage(error.message, true);
    }
    const view = readView(initialHash);
    if (view.center) map.jumpTo({ center: view.center, zoom: view.zoom });
    else if (!view.unit) await fitToJurisdiction();
    showLevel();
    if (view.unit) {
      // A shared link to a unit: open its panel, outline it, and show it.
      const unit = await openUnit(view.unit, state.layer);
      if (unit && !view.center) {
        const bounds = new maplibregl.LngLatBounds();
        extend(bounds, unit.geometry);
        if (!bounds.isEmpty()) map.fitBounds(bounds, { padding: 60, animate: false });
      }
    }
    document.body.dataset.ready = "true";
    writeUrl();
  };
  renderMessage(t("clickHint"));
  if (map.loaded()) await ready(); else map.once("load", ready);
}

start();
