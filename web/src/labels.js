// Map labels with no network: Latin letters and digits from the SDF glyphs
// this server ships (/glyphs, built from Noto Sans), Chinese from the
// browser's own CJK font (MapLibre's localIdeographFontFamily).
import { basemap } from "./basemap.js";

export const GLYPHS = "/glyphs/{fontstack}/{range}.pbf";
export const LOCAL_CJK_FONTS = "'WenQuanYi Micro Hei', 'Noto Sans CJK SC', 'Noto Sans SC', 'Microsoft YaHei', 'PingFang SC', sans-serif";
const FONT = ["Noto Sans Regular"];
const BOLD = ["Noto Sans Bold"];

export const STREET_LAYERS = ["streets-casing", "streets"];
export const LABEL_LAYERS = ["street-labels", "unit-labels", "parent-labels"];

const width = (lane, arterial) => ["interpolate", ["exponential", 1.6], ["zoom"],
  14, ["match", ["get", "class"], "arterial", arterial[0], lane[0]],
  18, ["match", ["get", "class"], "arterial", arterial[1], lane[1]]];

/** Street centre lines of the offline basemap (an external basemap draws its own). */
export function addStreets(map, { before } = {}) {
  if (basemap.external) return;
  map.addLayer({
    id: "streets-casing", type: "line", source: "places", "source-layer": "streets", minzoom: 14,
    layout: { "line-cap": "round", "line-join": "round" },
    paint: { "line-color": "#c9c2b6", "line-width": width([1.6, 7], [4, 16]) },
  }, before);
  map.addLayer({
    id: "streets", type: "line", source: "places", "source-layer": "streets", minzoom: 14,
    layout: { "line-cap": "round", "line-join": "round" },
    paint: { "line-color": "#ffffff", "line-width": width([0.8, 5], [2.8, 13]) },
  }, before);
}

/**
 * Street names along the lines; unit names and codes (and their parents') at
 * each unit's one label point (the tiles' "labels" layer: once per unit, not
 * once per tile piece).
 */
export function addLabels(map, level, parent) {
  if (!basemap.external) {
    map.addLayer({
      id: "street-labels", type: "symbol", source: "places", "source-layer": "streets", minzoom: 15,
      filter: ["has", "name"],
      layout: {
        "symbol-placement": "line", "text-field": ["get", "name"], "text-font": FONT,
        "text-size": ["interpolate", ["linear"], ["zoom"], 15, 11, 18, 14], "text-max-angle": 30,
      },
      paint: { "text-color": "#5d5548", "text-halo-color": "#ffffff", "text-halo-width": 1.5 },
    });
  }
  map.addLayer({
    id: "unit-labels", type: "symbol", source: "units", "source-layer": "labels", minzoom: 12,
    layout: {
      "text-field": ["format", ["coalesce", ["get", "name"], ""], {}, "\n", {}, ["get", "code"], { "font-scale": 0.8, "text-font": ["literal", FONT] }],
      "text-font": BOLD, "text-size": ["interpolate", ["linear"], ["zoom"], 12, 10, 17, 14],
      "text-max-width": 8, "text-padding": 4,
    },
    paint: { "text-color": "#1f2d3a", "text-halo-color": "rgba(255,255,255,0.9)", "text-halo-width": 1.6 },
  });
  if (parent) {
    map.addLayer({
      id: "parent-labels", type: "symbol", source: "parents", "source-layer": "labels", minzoom: 8, maxzoom: 13,
      layout: {
        "text-field": ["coalesce", ["get", "name"], ["get", "code"]], "text-font": BOLD,
        "text-size": 13, "text-max-width": 8,
      },
      paint: { "text-color": "#2c3e50", "text-halo-color": "#ffffff", "text-halo-width": 2 },
    });
  }
}
