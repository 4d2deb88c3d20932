// Search by unit code, unit name or address: units of every layer whose code
// starts with the text or whose name contains it, and the address geocoder's
// answer, in one result list. Choosing a result flies the map there.
import { api } from "./api.js";
import { el } from "./panel.js";
import { t } from "./i18n.js";

const LIMIT = 20;

/** Units of `layers` matching `text` (the server applies the caller's jurisdiction). */
async function findUnits(text, layers) {
  const pages = await Promise.all(layers.map((layer) => {
    const query = new URLSearchParams({ q: text, limit: String(LIMIT) });
    return api(`/api/v1/layers/${encodeURIComponent(layer.name)}/units?${query}`)
      .then((page) => page.features)
      .catch(() => []);
  }));
  return pages.flat();
}

/** An address only when the text is not a bare code (digits and letters). */
async function findAddress(text) {
  if (/^[A-Za-z0-9]+$/.test(text)) return null;
  try {
    return await api("/api/v1/geocode", { method: "POST", body: { address: text } });
  } catch {
    return null;
  }
}

/**
 * Search and draw the result list into `panel`.
 * @param {string} text what the user typed
 * @param {{layers: object[], panel: HTMLElement, onUnit: Function, onPoint: Function}} context
 */
export async function search(text, { layers, panel, onUnit, onPoint }) {
  const query = text.trim();
  if (!query) return;
  panel.replaceChildren(el("p", { class: "hint" }, t("searching")));
  const [found, address] = await Promise.all([findUnits(query, layers), findAddress(query)]);
  const levelTitle = (layer, level) =>
    layers.find((l) => l.name === layer)?.levels.find((l) => l.name === level)?.title ?? level;
  const parts = [];
  if (address?.lon != null && address.status !== "unmatched") {
    const item = el("a", { href: "#", "data-result": "address" },
      address.address?.matched ?? query, " ", el("span", { class: `status-${address.status}` }, t(address.status)));
    item.addEventListener("click", (event) => { event.preventDefault(); onPoint(address); });
    parts.push(el("h2", {}, t("searchAddress")), el("ul", { class: "results" }, el("li", {}, item)));
  }
  if (found.length) {
    const items = found.map((feature) => {
      const p = feature.properties;
      const link = el("a", { href: "#", "data-result": "unit", "data-code": p.code, "data-layer": p.layer },
        p.name ?? p.code, " ", el("span", { class: "code" }, p.code));
      link.addEventListener("click", (event) => { event.preventDefault(); onUnit(feature); });
      return el("li", {}, link, " ", el("span", { class: "hint" }, levelTitle(p.layer, p.level)));
    });
    parts.push(el("h2", {}, `${t("searchUnits")} (${found.length})`), el("ul", { class: "results" }, ...items));
  }
  if (!parts.length) parts.push(el("p", { class: "hint", "data-result": "none" }, t("noResults")));
  panel.replaceChildren(...parts);
}
