// The side panel: a locate answer (every layer at once) or one unit.
import { t } from "./i18n.js";
import { routeList } from "./patrol.js";

const panel = () => document.getElementById("panel");

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export function renderMessage(text, isError = false) {
  panel().replaceChildren(el("p", { class: isError ? "error" : "hint" }, text));
}

export function unitLink(code, name, layer, onUnit) {
  if (!code) return el("span", { class: "hint" }, t("none"));
  return el("a", { href: "#", "data-code": code, onclick: (e) => { e.preventDefault(); onUnit(code, layer); } },
    name ?? code, " ", el("span", { class: "code" }, code));
}

export function renderLocate(answer, { onUnit }) {
  const parts = [
    el("h2", {}, `${t("status")}: `, el("span", { class: `status-${answer.status}`, "data-status": answer.status }, t(answer.status))),
  ];
  if (answer.lon != null) {
    parts.push(el("p", { class: "code" }, `CGCS2000 ${answer.lon.toFixed(6)}, ${answer.lat.toFixed(6)}`));
  }
  if (answer.address?.matched) parts.push(el("p", {}, `${t("matched")}: ${answer.address.matched}`));
  for (const [layer, result] of Object.entries(answer.layers ?? {})) {
    const rows = result.units.map((unit) =>
      el("tr", { "data-layer": layer, "data-level": unit.level },
        el("th", {}, unit.level),
        el("td", {}, unitLink(unit.code, unit.name, layer, onUnit)),
        el("td", { class: `status-${unit.status}` }, t(unit.status))));
    parts.push(el("h2", {}, layer), el("table", {}, ...rows));
  }
  if (answer.responsible?.length) {
    parts.push(el("h2", {}, t("responsible")), el("ul", {},
      ...answer.responsible.map((p) => el("li", {}, `${p.role_title ?? p.role}: ${p.name}`))));
  }
  if (answer.routes) {
    // Only for roles with `patrol`: the stored routes of the units here and those passing by.
    parts.push(el("section", { "data-section": "routes" },
      el("h2", {}, t("routes")), routeList(answer.routes, { withUnit: true })));
  }
  panel().replaceChildren(...parts);
}
