// Workload (负载): households per unit against the level's target (grids 300–500
// by default). The server's /workload answer gives each unit's counts and target;
// the map colours the tiles' `households` by the same target, with a legend.
import { api } from "./api.js";
import { el } from "./panel.js";
import { t } from "./i18n.js";

export const COLOURS = { under: "#f6d55c", within: "#74b9e7", over: "#c0392b", none: "#edf3f8" };
const cache = new Map();

/** The workload rows of a layer's level, by code (fetched once per layer and level). */
export async function workloadOf(layer, level) {
  const key = `${layer}:${level}`;
  if (!cache.has(key)) {
    const query = new URLSearchParams({ layer, level });
    cache.set(key, api(`/api/v1/workload?${query}`).then((answer) => {
      const rows = new Map(answer.units.map((row) => [row.code, row]));
      const withTarget = answer.units.find((row) => row.max_households != null || row.min_households != null);
      const most = Math.max(1, ...answer.units.map((row) => row.households ?? 0));
      return { rows, most, target: withTarget ? { min: withTarget.min_households, max: withTarget.max_households } : null };
    }).catch((error) => { cache.delete(key); throw error; }));
  }
  return cache.get(key);
}

/** Forget what was fetched (after an edit or a revert the counts change). */
export function forgetWorkload() {
  cache.clear();
}

/** Where `households` stands against `target`: under, within, over, or none. */
export function standing(households, target) {
  if (!target || households == null) return "none";
  if (target.min != null && households < target.min) return "under";
  if (target.max != null && households > target.max) return "over";
  return "within";
}

const RAMP = ["#edf3f8", "#9ecae1", "#3182bd", "#08306b"];

/** A MapLibre fill colour for the tiles' `households` against `target` (else a ramp up to `most`). */
export function fillColour(target, most = 800) {
  const households = ["coalesce", ["get", "households"], 0];
  if (!target) {
    const stops = RAMP.flatMap((colour, i) => [Math.round((most * i) / (RAMP.length - 1)), colour]);
    return ["interpolate", ["linear"], households, ...stops];
  }
  return ["case",
    ["<", households, target.min ?? 0], COLOURS.under,
    [">", households, target.max ?? Infinity], COLOURS.over,
    COLOURS.within];
}

/** Draw the legend of `target` into `box` (hidden when there is none). */
export function renderLegend(box, target, levelTitle, most = 800) {
  if (!target) {
    const ticks = [0, 1, 2, 3].map((i) => el("span", {}, String(Math.round((most * i) / 3))));
    box.replaceChildren(el("strong", {}, `${levelTitle}: ${t("households")} (${t("noTarget")})`),
      el("div", { class: "ramp" }), el("div", { class: "ticks" }, ...ticks));
    box.dataset.target = "none";
    return;
  }
  const swatch = (kind, text) => el("div", { "data-kind": kind },
    el("span", { class: "swatch", style: `background:${COLOURS[kind]}` }), text);
  box.replaceChildren(
    el("strong", {}, `${levelTitle}: ${t("households")} · ${t("target")} ${target.min}–${target.max}`),
    swatch("under", `${t("under")} < ${target.min}`),
    swatch("within", `${t("within")} ${target.min}–${target.max}`),
    swatch("over", `${t("over")} > ${target.max}`),
  );
  box.dataset.target = `${target.min}-${target.max}`;
}
