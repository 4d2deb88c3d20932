// The basemap: by default the city's own streets, buildings and POIs (offline,
// from this server's tiles); or the operator's raster tiles (TONGGE_BASEMAP_URL),
// in their datum. With a GCJ-02 or BD-09 basemap the overlay tiles are asked
// for in that datum, so the grids sit on its streets, and every position the
// page shows or takes is converted: what is sent to the server is CGCS2000.
import maplibregl from "maplibre-gl";
import { fromCgcs2000, toCgcs2000, mapGeometry } from "./datum.js";

export const basemap = { external: null, datum: "cgcs2000" };

/** Ask the server which basemap to draw, and draw it under everything else. */
export async function loadBasemap(map, api) {
  const config = await api("/api/v1/map/config");
  basemap.external = config.basemap;
  basemap.datum = config.basemap?.datum ?? "cgcs2000";
  if (!config.basemap) return config;
  const { tiles, tile_size: tileSize, max_zoom: maxzoom, attribution } = config.basemap;
  const below = map.getStyle().layers.find((layer) => layer.type !== "background")?.id;
  tiles.forEach((template, i) => {
    const id = `basemap-${i}`;
    map.addSource(id, { type: "raster", tiles: [template], tileSize, maxzoom, attribution: i === 0 ? attribution : undefined });
    map.addLayer({ id, type: "raster", source: id }, below);
  });
  if (attribution) map.addControl(new maplibregl.AttributionControl({ compact: false }), "bottom-right");
  document.body.dataset.basemap = basemap.datum;
  return config;
}

/** The query string that asks for overlay tiles in the basemap's datum. */
export function tileQuery() {
  return basemap.datum === "gcj02" || basemap.datum === "bd09" ? `?datum=${basemap.datum}` : "";
}

/** [lon, lat] in CGCS2000 → where the map draws it. */
export const toDisplay = (point) => fromCgcs2000(point, basemap.datum);

/** [lon, lat] on the map → CGCS2000 (what the server stores and expects). */
export const toServer = (point) => toCgcs2000(point, basemap.datum);

export const geometryToDisplay = (geometry) =>
  basemap.datum === "gcj02" || basemap.datum === "bd09" ? mapGeometry(geometry, toDisplay) : geometry;

export const geometryToServer = (geometry) =>
  basemap.datum === "gcj02" || basemap.datum === "bd09" ? mapGeometry(geometry, toServer) : geometry;
