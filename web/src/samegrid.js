// The same-grid (同格) view: layer A's units that do not nest in layer B drawn
// in red with their shares, boundary noise listed apart and dimmed, the
// proposal's moves drawn in orange, and "apply" for an administrator of the
// whole city. Everything is the server's: GET /api/v1/alignment?proposal=true,
// POST /api/v1/alignment/apply.
import maplibregl from "maplibre-gl";
import { api } from "./api.js";
import { el } from "./panel.js";
import { t } from "./i18n.js";

const LAYERS = ["sg-a-noise", "sg-a-violation", "sg-a-move", "sg-b-line", "sg-a-line"];
const pct = (share) => `${(share * 100).toFixed(1)}%`;

export class SameGrid {
  /**
   * @param {maplibregl.Map} map
   * @param {{me: object, box: HTMLElement, tileUrl: Function, onUnit: Function, onApplied: Function}} options
   */
  constructor(map, { me, box, tileUrl, onUnit, onApplied, onShow }) {
    this.onShow = onShow;
    this.map = map;
    this.me = me;
    this.box = box;
    this.tileUrl = tileUrl;
    this.onUnit = onUnit;
    this.onApplied = onApplied;
    this.markers = [];
    this.report = null;
  }

  /** Only administrators may rewrite a layer (the server checks it again). */
  get mayApply() {
    return this.me.permissions.includes("alignment:apply");
  }

  form() {
    const a = el("input", { id: "sg-a", value: "governance:grid", size: "16" });
    const b = el("input", { id: "sg-b", value: "police:beat", size: "16" });
    const run = el("button", { type: "button", id: "sg-run" }, t("check"));
    run.addEventListener("click", () => this.check(a.value.trim(), b.value.trim()));
    this.result = el("div", { id: "sg-result" });
    this.box.replaceChildren(
      el("label", {}, t("layerA"), " ", a), el("label", {}, t("layerB"), " ", b), run, this.result);
  }

  /** Draw the form and the findings again in the current language (the inputs kept). */
  redraw() {
    if (!this.result) return; // never opened
    const a = this.box.querySelector("#sg-a")?.value;
    const b = this.box.querySelector("#sg-b")?.value;
    this.form();
    if (a != null) this.box.querySelector("#sg-a").value = a;
    if (b != null) this.box.querySelector("#sg-b").value = b;
    if (this.report) this.render();
  }

  async check(a, b) {
    this.clear();
    this.result.replaceChildren(el("p", { class: "hint" }, t("loading")));
    const query = new URLSearchParams({ layer_a: a, layer_b: b, proposal: "true" });
    try {
      this.report = await api(`/api/v1/alignment?${query}`);
    } catch (error) {
      this.result.replaceChildren(el("p", { class: "error" }, error.message));
      return;
    }
    this.a = a;
    this.b = b;
    this.onShow(...a.split(":")); // the map shows layer A's level under the findings
    this.draw();
    this.render();
  }

  clear() {
    for (const marker of this.markers) marker.remove();
    this.markers = [];
    for (const id of LAYERS) if (this.map.getLayer(id)) this.map.removeLayer(id);
    for (const id of ["sg-a", "sg-b"]) if (this.map.getSource(id)) this.map.removeSource(id);
  }

  draw() {
    const [aLayer, aLevel] = this.a.split(":");
    const [bLayer, bLevel] = this.b.split(":");
    const report = this.report;
    const bad = [...new Set(report.violations.flatMap((v) => v.a_codes))];
    const noisy = [...new Set(report.noise.map((n) => n.a_code).filter(Boolean))];
    const moved = (report.proposal?.moves ?? []).map((m) => m.a_code);
    this.map.addSource("sg-a", { type: "vector", tiles: [this.tileUrl(aLayer, aLevel)], minzoom: 8, maxzoom: 18 });
    this.map.addSource("sg-b", { type: "vector", tiles: [this.tileUrl(bLayer, bLevel)], minzoom: 8, maxzoom: 18 });
    const on = (codes) => ["in", ["get", "code"], ["literal", codes]];
    this.map.addLayer({ id: "sg-a-noise", type: "fill", source: "sg-a", "source-layer": aLevel, filter: on(noisy),
      paint: { "fill-color": "#7f8c8d", "fill-opacity": 0.25 } });
    this.map.addLayer({ id: "sg-a-violation", type: "fill", source: "sg-a", "source-layer": aLevel, filter: on(bad),
      paint: { "fill-color": "#e74c3c", "fill-opacity": 0.45 } });
    this.map.addLayer({ id: "sg-a-move", type: "line", source: "sg-a", "source-layer": aLevel, filter: on(moved),
      paint: { "line-color": "#e67e22", "line-width": 4, "line-dasharray": [2, 1] } });
    this.map.addLayer({ id: "sg-a-line", type: "line", source: "sg-a", "source-layer": aLevel,
      paint: { "line-color": "#2c3e50", "line-width": 0.6, "line-opacity": 0.6 } });
    this.map.addLayer({ id: "sg-b-line", type: "line", source: "sg-b", "source-layer": bLevel,
      paint: { "line-color": "#1f4e99", "line-width": 2.5 } });
    for (const v of report.violations) {
      // A grid split across beats is labelled with its shares; the other kinds are
      // the same grids seen from the beat's side (highlighted, listed beside the map).
      if (v.lon == null || !v.kind.startsWith("grid_")) continue;
      this.mark([v.lon, v.lat], Object.values(v.shares).map(pct).join(" / "), "violation", v.message);
    }
    for (const n of report.noise) {
      if (n.lon == null) continue;
      this.mark([n.lon, n.lat], pct(n.area_share ?? 0), "noise", `${n.a_code} / ${n.b_code}`);
    }
    const points = report.violations.filter((v) => v.lon != null);
    if (points.length) {
      const bounds = new maplibregl.LngLatBounds();
      for (const v of points) bounds.extend([v.lon, v.lat]);
      this.map.fitBounds(bounds, { padding: 80, maxZoom: 15, animate: false });
    }
  }

  mark(lngLat, text, kind, title) {
    const label = el("div", { class: `sg-marker sg-${kind}`, title }, text);
    this.markers.push(new maplibregl.Marker({ element: label }).setLngLat(lngLat).addTo(this.map));
  }

  render() {
    const report = this.report;
    const parts = [];
    if (report.aligned && !report.noise.length) {
      parts.push(el("p", { class: "ok", "data-aligned": "true" }, t("aligned")));
    }
    if (report.violations.length) {
      parts.push(el("h3", {}, `${t("violations")} (${report.violations.length})`), el("ul", { class: "violations" },
        ...report.violations.map((v) => {
          const link = el("a", { href: "#", "data-kind": v.kind }, v.message);
          link.addEventListener("click", (event) => {
            event.preventDefault();
            if (v.lon != null) this.map.flyTo({ center: [v.lon, v.lat], zoom: 15 });
            const [layer] = this.a.split(":");
            if (v.a_codes[0]) this.onUnit(v.a_codes[0], layer);
          });
          const households = v.households != null ? ` · ${Math.round(v.households)} ${t("households_short")}` : "";
          return el("li", { "data-violation": v.kind }, link,
            el("div", { class: "hint" }, `${Math.round(v.area_m2).toLocaleString()} m²${households}`));
        })));
    }
    if (report.noise.length) {
      parts.push(el("h3", { class: "dim" }, `${t("noise")} (${report.noise.length})`), el("ul", { class: "noise dim" },
        ...report.noise.map((n) => el("li", { "data-noise": n.a_code ?? "" },
          `${n.a_code} / ${n.b_code}: ${Math.round(n.area_m2)} m², ${n.width_m?.toFixed(1)} m, ${pct(n.area_share ?? 0)}`))));
    }
    const proposal = report.proposal;
    if (proposal) {
      parts.push(el("h3", {}, `${t("proposal")} (${proposal.moves.length})`), el("ul", { class: "moves" },
        ...proposal.moves.map((m) => el("li", { "data-move": m.a_code },
          `${m.a_code} ${Object.entries(m.from_b).map(([code, s]) => `${code} ${pct(s)}`).join(", ")} → ${t("moveTo")} ${m.to_b}`,
          m.households != null ? ` · ${Math.round(m.households)} ${t("households_short")}` : "",
          m.note ? el("div", { class: "hint" }, m.note) : null))));
      if (proposal.unresolved.length) parts.push(el("p", { class: "error" }, proposal.unresolved.join("; ")));
      if (this.mayApply && proposal.aligned) parts.push(this.applyForm(proposal));
    }
    this.result.replaceChildren(...parts);
    this.result.dataset.ready = "true";
  }

  applyForm(proposal) {
    const from = el("input", { type: "date", id: "sg-from" });
    const button = el("button", { type: "button", id: "sg-apply" }, t("apply"));
    const status = el("p", { id: "sg-status", role: "status" });
    button.addEventListener("click", async () => {
      if (!from.value) { from.focus(); return; }
      if (!window.confirm(t("applyConfirm", { n: proposal.moves.length }))) return;
      status.className = "hint";
      status.textContent = t("saving");
      try {
        await api("/api/v1/alignment/apply", { method: "POST", body: {
          layer_a: this.a, layer_b: this.b, valid_from: from.value, moves: proposal.moves.map((m) => m.a_code),
        } });
        status.className = "ok";
        status.dataset.kind = "ok";
        status.textContent = t("applied");
        button.disabled = true;
        this.onApplied();
      } catch (error) {
        status.className = "error";
        status.dataset.kind = `error-${error.status}`;
        status.textContent = error.status === 412 ? t("proposalStale") : error.message;
      }
    });
    return el("div", { class: "apply" }, el("label", {}, t("applyFrom"), " ", from), button, status);
  }
}
