// Patrol routes 巡查路线 of the open unit: drawn on the map, listed in the panel, each
// downloadable for a phone (GPX, KML; WGS84 or GCJ-02 for Amap-based apps).
// The server decides what a caller sees: a grid worker gets their own units' routes only.
import { api, session } from "./api.js";

const SOURCE = "patrol-routes";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function draw(map, features) {
  const data = { type: "FeatureCollection", features };
  if (map.getSource(SOURCE)) {
    map.getSource(SOURCE).setData(data);
    return;
  }
  map.addSource(SOURCE, { type: "geojson", data });
  map.addLayer({
    id: SOURCE, type: "line", source: SOURCE,
    paint: {
      "line-color": ["case", ["get", "stale"], "#999999", "#d35400"],
      "line-width": 3,
      "line-dasharray": [2, 1],
    },
  });
}

async function download(route, format, datum) {
  // A fetch with the bearer token (a plain link would go without it), saved as a file.
  const response = await fetch(
    `/api/v1/patrol/routes/${route.id}/export?format=${format}&datum=${datum}`,
    { headers: session.headers() },
  );
  if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
  const blob = await response.blob();
  const link = el("a", { href: URL.createObjectURL(blob), download: `route-${route.id}-${route.unit_code}.${format}` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

function row(route) {
  const minutes = Math.round(route.time_s / 60);
  const label = `#${route.id} ${route.shift ?? ""} ${Math.round(route.length_m)} m · ${minutes} min`;
  const buttons = [["gpx", "wgs84"], ["gpx", "gcj02"], ["kml", "wgs84"]].map(([format, datum]) =>
    el("button", {
      type: "button", class: "patrol-download", "data-route": String(route.id), "data-format": format, "data-datum": datum,
      onclick: () => download(route, format, datum).catch((error) => alert(error.message)),
    }, datum === "wgs84" ? format.toUpperCase() : `${format.toUpperCase()} ${datum}`));
  return el("li", { "data-route": String(route.id), class: route.stale ? "stale" : "" },
    label, route.stale ? el("span", { class: "error" }, " 需重新规划 re-plan") : null, " ", ...buttons);
}

/** Show the routes of unit ``code`` (layer ``layer``) on ``map`` and under the panel. */
export async function showUnitRoutes(map, code, layer) {
  let listed;
  try {
    listed = await api(`/api/v1/patrol/routes?unit=${encodeURIComponent(code)}&layer=${encodeURIComponent(layer)}`);
  } catch {
    draw(map, []); // no patrol permission (viewer, dispatcher): nothing to show
    return;
  }
  const routes = listed.routes;
  const details = await Promise.all(routes.map((r) => api(`/api/v1/patrol/routes/${r.id}`)));
  draw(map, details.map((d) => ({ type: "Feature", geometry: d.geometry, properties: { id: d.id, stale: d.stale } })));
  const panel = document.getElementById("panel");
  panel.querySelector("#patrol")?.remove();
  const section = el("section", { id: "patrol" }, el("h2", {}, `巡查路线 Routes (${routes.length})`));
  if (routes.length) section.append(el("ul", {}, ...routes.map(row)));
  else section.append(el("p", { class: "hint" }, "—"));
  panel.append(section);
}
