// The hierarchy tree of one layer (county → street → community → grid → micro-grid):
// the top units the caller may see, their children fetched when a branch opens.
// A click on a name hands the unit to `onSelect` (fly to it, select it, open its panel).
import { api } from "./api.js";
import { el } from "./panel.js";
import { t } from "./i18n.js";

const PAGE = 1000;

async function units(layer, params) {
  const query = new URLSearchParams({ ...params, limit: String(PAGE) });
  const page = await api(`/api/v1/layers/${encodeURIComponent(layer)}/units?${query}`);
  return page.features;
}

export class Tree {
  /**
   * @param {HTMLElement} container where the tree is drawn
   * @param {{onSelect: (feature: object) => void}} options
   */
  constructor(container, { onSelect }) {
    this.container = container;
    this.onSelect = onSelect;
    this.layer = null;
  }

  /** Draw the roots of `layer`: its highest level holding units the caller may see. */
  async show(layer) {
    this.layer = layer;
    const top = layer.levels.find((level) => level.unit_count > 0);
    if (!top) {
      this.container.replaceChildren(el("p", { class: "hint" }, t("noneVisible")));
      return;
    }
    this.container.replaceChildren(el("p", { class: "hint" }, t("loading")));
    const roots = await units(layer.name, { level: top.name });
    const list = el("ul", { class: "tree", role: "tree" }, ...roots.map((f) => this.node(f)));
    this.container.replaceChildren(list);
  }

  node(feature) {
    const p = feature.properties;
    const levels = this.layer.levels;
    const rank = levels.find((l) => l.name === p.level)?.rank ?? 0;
    const leaf = !levels.some((l) => l.rank > rank && l.unit_count > 0);
    const children = el("ul", { role: "group" });
    children.hidden = true;
    const toggle = el("button", { type: "button", class: "toggle", "aria-label": "open" }, leaf ? "·" : "▸");
    toggle.disabled = leaf;
    let loaded = false;
    toggle.addEventListener("click", async () => {
      if (!loaded) {
        loaded = true;
        toggle.textContent = "…";
        try {
          const found = await units(this.layer.name, { parent: p.code });
          children.replaceChildren(...found.map((f) => this.node(f)));
          if (!found.length) children.append(el("li", { class: "hint" }, t("none")));
        } catch (error) {
          loaded = false;
          children.replaceChildren(el("li", { class: "error" }, error.message));
        }
      }
      children.hidden = !children.hidden;
      toggle.textContent = children.hidden ? "▸" : "▾";
    });
    const name = el("a", { href: "#", "data-code": p.code, "data-level": p.level }, p.name ?? p.code);
    name.addEventListener("click", (event) => {
      event.preventDefault();
      for (const old of this.container.querySelectorAll("a.current")) old.classList.remove("current");
      name.classList.add("current");
      this.onSelect(feature);
    });
    return el("li", { role: "treeitem", "data-code": p.code },
      toggle, " ", name, " ", el("span", { class: "code" }, p.code), children);
  }
}
