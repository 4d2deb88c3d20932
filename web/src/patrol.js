// Patrol routes 巡查路线 of the open unit: drawn on the map, listed in the panel, each
// downloadable for a phone (GPX, KML; WGS84 or GCJ-02 for Amap-based apps).
// The server decides what a caller sees: a grid worker gets their own units' routes only.
// The unit panel (unitpanel.js) and the locate answer (panel.js) list them with routeList.
import { api, session } from "./api.js";
import { t } from "./i18n.js";

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
  const minutes = route.time_s == null ? null : Math.round(route.time_s / 60);
  const who = [route.staff_name, route.shift].filter(Boolean).join(" · ");
  const figures = [`${Math.round(route.length_m ?? 0)} m`, minutes == null ? null : `${minutes} min`].filter(Boolean).join(" · ");
  const label = `#${route.id}${route.name ? ` ${route.name}` : ""}${who ? ` ${who}` : ""} · ${figures}`;
  const buttons = [["gpx", "wgs84"], ["gpx", "gcj02"], ["kml", "wgs84"]].map(([format, datum]) =>
    el("button", {
      type: "button", class: "patrol-download", "data-route": String(route.id), "data-format": format, "data-datum": datum,
      onclick: () => download(route, format, datum).catch((error) => alert(error.message)),
    }, datum === "wgs84" ? format.toUpperCase() : `${format.toUpperCase()} ${datum}`));
  return el("li", { "data-route": String(route.id), "data-unit": route.unit_code, class: route.stale ? "stale" : "" },
    label, route.stale ? el("span", { class: "error", "data-stale": "true" }, ` ${t("replan")}`) : null, " ", ...buttons);
}

/**
 * The list of `routes` (stored routes, or the `routes` of a locate answer), each
 * with its downloads; `withUnit` names each route's unit (the locate answer mixes units).
 */
export function routeList(routes, { withUnit = false } = {}) {
  if (!routes.length) return el("p", { class: "hint" }, t("noRoutes"));
  return el("ul", { class: "routes" }, ...routes.map((route) => {
    const item = row(route);
    if (withUnit) item.prepend(el("span", { class: "code" }, route.unit_code), " ");
    return item;
  }));
}

/** Fetch the routes of unit ``code`` (layer ``layer``), draw them on ``map``, return them. */
export async function showUnitRoutes(map, code, layer) {
  let listed;
  try {
    listed = await api(`/api/v1/patrol/routes?unit=${encodeURIComponent(code)}&layer=${encodeURIComponent(layer)}`);
  } catch (error) {
    draw(map, []); // no patrol permission (viewer, dispatcher): nothing to show
    throw error;
  }
  const routes = listed.routes;
  const details = await Promise.all(routes.map((r) => api(`/api/v1/patrol/routes/${r.id}`)));
  draw(map, details.map((d) => ({ type: "Feature", geometry: d.geometry, properties: { id: d.id, stale: d.stale } })));
  return routes;
}
