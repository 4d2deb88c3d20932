// Incidents on the map (事件): the open incidents of the units in view, and the
// evaluation of the current level as a choropleth (治理成效评估).
// A MapLibre control; main.js adds it for callers who may read incidents and
// calls refresh() whenever the layer or level changes (the units source is new).
import { api } from "./api.js";
import { language } from "./i18n.js";

const OPEN = "received,review,dispatched,accepted,in_progress,escalated";
const TEXT = {
  zh: {
    title: "事件", open: "在办事件", evaluation: "评估", none: "无",
    incidents: "事件数", overdue_rate: "超期率", median_hours_to_close: "办结时长(小时,中位)",
    repeat_rate: "重复率", feedback_mean: "满意度", days: "近 30 天", overdue: "超期", review: "待核实",
    onTime: "期限内",
  },
  en: {
    title: "Incidents", open: "Open incidents", evaluation: "Evaluation", none: "none",
    incidents: "incidents", overdue_rate: "overdue rate", median_hours_to_close: "median hours to close",
    repeat_rate: "repeat rate", feedback_mean: "feedback", days: "last 30 days", overdue: "overdue",
    review: "in review", onTime: "on time",
  },
};
const MEASURES = ["incidents", "overdue_rate", "median_hours_to_close", "repeat_rate", "feedback_mean"];
const POINTS = "incidents-open";
const FILL = "incidents-evaluation";

const say = (key) => TEXT[language()]?.[key] ?? TEXT.en[key] ?? key;

export class IncidentsLayer {
  /** @param {() => {layer: string, level: string}} view the map's current layer and level */
  constructor(view) {
    this.view = view;
    this.map = null;
    this.showOpen = false;
    this.measure = "";
    this.incidents = [];
    this.evaluation = new Map();
    this.stateCodes = [];
  }

  onAdd(map) {
    this.map = map;
    const box = document.createElement("div");
    box.className = "maplibregl-ctrl maplibregl-ctrl-group incidents-control";
    box.style.cssText = "padding:6px 8px;background:#fff;font-size:12px;line-height:1.6;max-width:220px";
    box.innerHTML = `
      <strong data-role="title"></strong><br>
      <label><input type="checkbox" id="incidents-open"> <span data-role="open"></span></label><br>
      <label><span data-role="evaluation"></span>
        <select id="incidents-measure"></select></label>
      <div id="incidents-legend" class="hint"></div>`;
    box.querySelector("#incidents-open").addEventListener("change", (event) => {
      this.showOpen = event.target.checked;
      this.refresh();
    });
    box.querySelector("#incidents-measure").addEventListener("change", (event) => {
      this.measure = event.target.value;
      this.refresh();
    });
    this.box = box;
    this.label();
    map.on("moveend", () => this.filterToView());
    return box;
  }

  onRemove() {
    this.box.remove();
    this.map = null;
  }

  label() {
    const box = this.box;
    box.querySelector("[data-role=title]").textContent = say("title");
    box.querySelector("[data-role=open]").textContent = say("open");
    box.querySelector("[data-role=evaluation]").textContent = `${say("evaluation")} (${say("days")}) `;
    const select = box.querySelector("#incidents-measure");
    select.replaceChildren(
      new Option(say("none"), ""),
      ...MEASURES.map((m) => new Option(say(m), m)),
    );
    select.value = this.measure;
  }

  /** Load and draw again: the layer or level changed, or a box was ticked. */
  async refresh() {
    if (!this.map) return;
    this.label();
    try {
      await Promise.all([this.drawOpen(), this.drawEvaluation()]);
    } catch (error) {
      this.box.querySelector("#incidents-legend").textContent = error.message;
    }
  }

  async drawOpen() {
    const map = this.map;
    if (!this.showOpen) {
      if (map.getLayer(POINTS)) map.setLayoutProperty(POINTS, "visibility", "none");
      return;
    }
    this.incidents = await api(`/api/v1/incidents?status=${OPEN}&limit=1000`);
    const { layer, level } = this.view();
    const now = Date.now();
    const data = {
      type: "FeatureCollection",
      features: this.incidents.filter((i) => i.lon != null).map((i) => ({
        type: "Feature",
        geometry: { type: "Point", coordinates: [i.lon, i.lat] },
        properties: {
          id: i.id,
          public_id: i.public_id,
          category: i.category,
          status: i.status,
          unit: i.units?.[layer]?.[level] ?? "",
          state: i.status === "review" ? "review" : Date.parse(i.deadline_at) < now ? "overdue" : "open",
        },
      })),
    };
    if (map.getSource(POINTS)) {
      map.getSource(POINTS).setData(data);
    } else {
      map.addSource(POINTS, { type: "geojson", data });
      map.addLayer({
        id: POINTS, type: "circle", source: POINTS,
        paint: {
          "circle-radius": ["interpolate", ["linear"], ["zoom"], 11, 3, 16, 7],
          "circle-color": ["match", ["get", "state"], "overdue", "#c0392b", "review", "#7f8c8d", "#e67e22"],
          "circle-stroke-color": "#fff",
          "circle-stroke-width": 1,
        },
      });
    }
    if (!map.getLayer(POINTS)) return;
    map.moveLayer(POINTS); // on top of the units drawn again for the new level
    map.setLayoutProperty(POINTS, "visibility", "visible");
    this.filterToView();
    this.legend();
  }

  /** Only the incidents of the units in view (and those in review, which have none). */
  filterToView() {
    const map = this.map;
    if (!map?.getLayer(POINTS) || !this.showOpen) return;
    const { layer, level } = this.view();
    const codes = new Set();
    if (map.getLayer("units-fill")) {
      for (const feature of map.queryRenderedFeatures({ layers: ["units-fill"] })) {
        codes.add(String(feature.properties.code));
      }
    }
    map.setFilter(POINTS, ["any", ["==", ["get", "unit"], ""], ["in", ["get", "unit"], ["literal", [...codes]]]]);
    const shown = this.incidents.filter((i) => codes.has(i.units?.[layer]?.[level] ?? "") || !i.units?.[layer]);
    // For the browser tests: what is drawn.
    window.tonggeIncidents = {
      units: codes.size,
      shown: shown.map((i) => i.public_id),
      loaded: this.incidents.map((i) => i.public_id),
    };
  }

  /** Let go of the units source before main.js replaces it (a new layer or level). */
  detach() {
    const map = this.map;
    if (!map) return;
    if (map.getLayer(FILL)) map.removeLayer(FILL);
    this.stateCodes = [];
  }

  async drawEvaluation() {
    const map = this.map;
    const { layer, level } = this.view();
    for (const code of this.stateCodes) {
      if (map.getSource("units")) map.removeFeatureState({ source: "units", sourceLayer: level, id: code });
    }
    this.stateCodes = [];
    this.top = null;
    if (!this.measure || !layer || !level || !map.getSource("units")) {
      if (map.getLayer(FILL)) map.setLayoutProperty(FILL, "visibility", "none");
      this.households(true);
      this.legend();
      return;
    }
    const since = new Date(Date.now() - 30 * 86400e3).toISOString();
    const params = new URLSearchParams({ by: `${layer}:${level}`, period: "all", since });
    const answer = await api(`/api/v1/incidents/evaluation?${params}`);
    const values = answer.rows.map((r) => r[this.measure]).filter((v) => v != null);
    const top = Math.max(1e-9, ...values);
    this.evaluation = new Map(answer.rows.map((r) => [r.unit, r]));
    for (const row of answer.rows) {
      if (row.unit === "unassigned" || row[this.measure] == null) continue;
      map.setFeatureState(
        { source: "units", sourceLayer: level, id: row.unit },
        { value: row[this.measure] / top },
      );
      this.stateCodes.push(row.unit);
    }
    if (!map.getLayer(FILL)) {
      map.addLayer({
        id: FILL, type: "fill", source: "units", "source-layer": level,
        paint: {
          "fill-color": ["interpolate", ["linear"], ["coalesce", ["feature-state", "value"], 0],
            0, "rgba(255,255,255,0)", 0.01, "#fee8c8", 0.5, "#fdbb84", 1, "#b30000"],
          "fill-opacity": 0.7,
        },
      }, map.getLayer("units-line") ? "units-line" : undefined);
    }
    map.setLayoutProperty(FILL, "visibility", "visible");
    this.households(false);
    this.top = top;
    this.legend();
    window.tonggeEvaluation = { measure: this.measure, units: this.stateCodes.length, top };
  }

  /** Show or hide the households shading of main.js while the evaluation is drawn (one choropleth at a time). */
  households(visible) {
    if (this.map.getLayer("units-fill")) {
      if (this.savedOpacity === undefined) this.savedOpacity = this.map.getPaintProperty("units-fill", "fill-opacity");
      this.map.setPaintProperty("units-fill", "fill-opacity", visible ? this.savedOpacity : 0);
    }
  }

  legend() {
    const parts = [];
    if (this.showOpen) {
      parts.push(`<span style="color:#e67e22">●</span> ${say("onTime")} <span style="color:#c0392b">●</span> ${say("overdue")} <span style="color:#7f8c8d">●</span> ${say("review")}`);
    }
    if (this.measure && this.top != null) {
      const top = this.measure.endsWith("rate") ? `${Math.round(this.top * 100)}%` : this.top.toFixed(1);
      parts.push(`${say(this.measure)}: <span style="background:linear-gradient(90deg,#fee8c8,#b30000);padding:0 24px"></span> ≤ ${top}`);
    }
    this.box.querySelector("#incidents-legend").innerHTML = parts.join("<br>");
  }
}
