// The view in the URL, so that a link shows a colleague the same map:
// #map=zoom/lat/lon&layer=…&level=…&unit=…&lang=… . The centre is written in
// CGCS2000 whatever the basemap's datum, so links stay right if it changes.
import { toDisplay, toServer } from "./basemap.js";

/** The view a link asks for: centre (map datum) and zoom if given, layer, level, unit, lang. */
export function readView(hash = location.hash) {
  const params = new URLSearchParams(hash.slice(1));
  const view = {
    layer: params.get("layer"), level: params.get("level"), unit: params.get("unit") || null, lang: params.get("lang"),
    center: null, zoom: null,
  };
  const [zoom, lat, lon] = (params.get("map") ?? "").split("/").map(Number);
  if (params.get("map") && [zoom, lat, lon].every(Number.isFinite) && Math.abs(lat) <= 85 && Math.abs(lon) <= 180) {
    view.center = toDisplay([lon, lat]);
    view.zoom = Math.min(22, Math.max(0, zoom));
  }
  return view;
}

/** Write the current view into the hash (other parameters are kept). */
export function writeView(map, { layer, level, unit, lang }) {
  const params = new URLSearchParams(location.hash.slice(1));
  const [lon, lat] = toServer(map.getCenter().toArray());
  params.set("map", `${map.getZoom().toFixed(2)}/${lat.toFixed(6)}/${lon.toFixed(6)}`);
  const set = (key, value) => (value ? params.set(key, value) : params.delete(key));
  set("layer", layer);
  set("level", level);
  set("unit", unit);
  set("lang", lang);
  history.replaceState(null, "", `#${params.toString().replaceAll("%2F", "/")}`);
}
