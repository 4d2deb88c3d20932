// Edit mode for planners: draw, preview the consequences, save a change set, revert.
// Every operation is the server's (POST /api/v1/layers/{layer}/edits): the
// preview is the same call with dry_run, so what is shown is what is saved.
import { TerraDraw, TerraDrawLineStringMode, TerraDrawPolygonMode } from "terra-draw";
import { TerraDrawMapLibreGLAdapter } from "terra-draw-maplibre-gl-adapter";
import { api } from "./api.js";
import { t } from "./i18n.js";
import { geometryToDisplay, geometryToServer } from "./basemap.js";
import { PreviewOverlay } from "./overlay.js";

// Which drawing each operation needs.
const DRAWING = {
  split: "linestring", reshape: "linestring", transfer: "polygon", carve: "polygon",
  merge: null, retire: null, auto_split: null,
};

// The longest terra-draw's redraw of a finished drawing waits for the preview (ms).
const HOLD_MS = 2000;
// The longest the map's own drawing of a preview waits for the frame of its SVG overlay (ms).
const AFTER_PAINT_MS = 500;
const EMPTY = { type: "FeatureCollection", features: [] };

/**
 * Call `fn` once the frame after now is painted: from a task queued by the
 * next animation frame (run after that frame's paint), or after `AFTER_PAINT_MS`
 * when no frame comes (a hidden tab).
 */
function afterPaint(fn) {
  let done = false;
  const run = () => {
    if (done) return;
    done = true;
    fn();
  };
  requestAnimationFrame(() => setTimeout(run, 0));
  setTimeout(run, AFTER_PAINT_MS);
}

/**
 * terra-draw's MapLibre adapter, able to hold its map updates for a moment.
 * Each update is a setData on its sources, after which MapLibre redraws the
 * whole map (twice: when the data and when its tiles arrive). Without a GPU
 * (software WebGL: headless browsers, virtual desktops) one redraw blocks the
 * page 100–200 ms, so the redraws terra-draw asks for when a line is finished
 * (the line restyled, its closing point gone, the static mode's style) ran
 * while the preview was fetched and the answer waited for them (issue 14).
 * Held, they are drawn in the same frames as the preview. What is held is
 * only the restyle: the line drawn so far stays on the map meanwhile.
 */
class HoldingAdapter extends TerraDrawMapLibreGLAdapter {
  constructor(config) {
    super(config);
    this.held = null; // the render calls put off, in order, while holding
    this.holdTimer = null;
  }

  render(changes, styling) {
    this.latest = [changes, styling];
    if (this.held) this.held.push(this.latest);
    else super.render(changes, styling);
  }

  /** Put off the map updates until release() (at most `ms`), the one already asked for included. */
  hold(ms) {
    if (this.held) return;
    // The adapter draws on the next animation frame: the update terra-draw has
    // just asked for (finishing the line) is still waiting there, so take it
    // back and ask for it again on release (at worst drawn twice, never lost).
    // `_nextRender` is the adapter's own frame request (1.5.0, pinned).
    if (this._nextRender !== undefined) cancelAnimationFrame(this._nextRender);
    this.held = this.latest ? [this.latest] : [];
    this.holdTimer = setTimeout(() => this.release(), ms);
  }

  release() {
    clearTimeout(this.holdTimer);
    const held = this.held;
    this.held = null;
    // In order, as terra-draw asked for them: the adapter keeps the last and
    // updates every source any of them changed.
    for (const [changes, styling] of held ?? []) super.render(changes, styling);
  }

  clear() {
    // Cleared while holding: what was held is gone with the drawing.
    if (this.held) this.held = [];
    super.clear();
  }
}

export class EditMode {
  constructor(map, { layer, level, onSaved }) {
    this.map = map;
    this.onSaved = onSaved;
    this.layer = layer;
    this.level = level;
    this.units = [];
    this.geometry = null;
    this.draw = null;
    this.lastPreview = null;
    this.overlay = new PreviewOverlay(map);
    // Bumped whenever the preview shown goes stale (a new one, cleared, saved,
    // refused, closed): the map's late drawing of an earlier one is dropped.
    this.turn = 0;
  }

  setLevel(layer, level) {
    this.layer = layer;
    this.level = level;
    this.reset();
  }

  get op() { return document.getElementById("edit-op").value; }

  open() {
    document.getElementById("edit").hidden = false;
    document.body.dataset.editing = "true";
    this.map.addSource("preview", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    this.map.addLayer({
      id: "preview-after", type: "line", source: "preview", filter: ["==", ["get", "side"], "after"],
      paint: { "line-color": "#e67e22", "line-width": 3, "line-dasharray": [2, 1] },
    });
    this.map.addLayer({
      id: "preview-problems", type: "line", source: "preview", filter: ["==", ["get", "side"], "problem"],
      paint: { "line-color": "#c0392b", "line-width": 5 },
    });
    this.adapter = new HoldingAdapter({ map: this.map });
    this.draw = new TerraDraw({
      adapter: this.adapter,
      modes: [new TerraDrawLineStringMode(), new TerraDrawPolygonMode()],
    });
    this.draw.start();
    this.draw.on("finish", (id) => {
      const feature = this.draw.getSnapshotFeature(id);
      this.geometry = feature?.geometry ?? null;
      // terra-draw's own redraw of the finished line waits for the preview (see HoldingAdapter).
      const adapter = this.adapter;
      adapter.hold(HOLD_MS);
      this.draw.setMode("static");
      this.preview(adapter);
    });
    this.render();
  }

  close() {
    document.getElementById("edit").hidden = true;
    delete document.body.dataset.editing;
    // Closed while a preview is out: what terra-draw held goes with its drawing
    // (released later, it would be drawn into sources stop() removes).
    if (this.adapter?.held) this.adapter.held = [];
    this.draw?.stop();
    this.draw = null;
    this.adapter = null;
    for (const id of ["preview-after", "preview-problems"]) if (this.map.getLayer(id)) this.map.removeLayer(id);
    if (this.map.getSource("preview")) this.map.removeSource("preview");
    this.reset();
  }

  reset() {
    this.units = [];
    this.geometry = null;
    this.lastPreview = null;
    this.lastRefusal = null;
    this.lastSaved = null;
    this.draw?.clear();
    this.dropPreviewLines();
    this.render();
  }

  /** A click on a unit while editing picks it (a second click drops it). */
  toggleUnit(code) {
    this.units = this.units.includes(code) ? this.units.filter((c) => c !== code) : [...this.units, code];
    this.render();
  }

  startDrawing() {
    const mode = DRAWING[this.op];
    if (!mode || !this.draw) return;
    this.draw.clear();
    this.geometry = null;
    this.clearPreview();
    this.draw.setMode(mode);
    setStatus(t("drawHint"));
  }

  /** Forget the last preview, refusal or save: a new drawing makes them stale (issue 14). */
  clearPreview() {
    this.lastPreview = null;
    this.lastRefusal = null;
    this.lastSaved = null;
    // Whoever waits for the next preview's marker must not see the last one.
    delete document.getElementById("edit-status").dataset.preview;
    document.getElementById("edit-impact").replaceChildren();
    document.getElementById("edit-save").disabled = true;
    this.dropPreviewLines();
  }

  /** Take the preview's lines off the map (overlay and map source), and any late drawing of them. */
  dropPreviewLines() {
    this.turn += 1;
    this.overlay.clear();
    this.map.getSource("preview")?.setData(EMPTY);
  }

  body(dryRun) {
    const to = document.getElementById("edit-to").value.trim();
    const parts = Number(document.getElementById("edit-parts").value);
    const body = { op: this.op, level: this.level, units: this.units, dry_run: dryRun, cascade: "new" };
    if (document.getElementById("edit-force").checked) body.force = true;
    // Drawn on the basemap, in its datum: the server takes CGCS2000.
    if (this.geometry) body.geometry = geometryToServer(this.geometry);
    if (to) body.to = this.op === "retire" ? to.split(/[\s,，]+/) : to;
    if (this.op === "auto_split") body.parts = parts;
    if (!dryRun) {
      body.reason = document.getElementById("edit-reason").value || null;
      const from = document.getElementById("edit-from").value;
      if (from) body.valid_from = from;
    }
    return body;
  }

  /**
   * Ask the server for the preview and show it. `held`: terra-draw's adapter
   * holding the redraw of the drawing just finished, released once the map
   * draws the preview (see HoldingAdapter).
   */
  async preview(held = null) {
    delete document.getElementById("edit-status").dataset.preview; // until this one is shown
    setStatus(t("previewing"));
    let answer;
    try {
      answer = await api(`/api/v1/layers/${encodeURIComponent(this.layer)}/edits`, { method: "POST", body: this.body(true) });
    } catch (error) {
      held?.release();
      this.refused(error);
      return;
    }
    this.lastPreview = answer;
    this.lastRefusal = null;
    this.showGeometry(answer.geometry, held);
    renderImpact(answer);
    document.getElementById("edit-save").disabled = false;
  }

  async save() {
    setStatus(t("saving"));
    // The unit versions the preview was computed on: if someone changed one
    // since, the server refuses (412) instead of applying over their change.
    const seen = Object.values(this.lastPreview?.etags ?? {});
    const headers = seen.length ? { "If-Match": seen.join(", ") } : {};
    try {
      const answer = await api(`/api/v1/layers/${encodeURIComponent(this.layer)}/edits`, { method: "POST", body: this.body(false), headers });
      this.lastSaved = answer;
      this.lastPreview = null;
      this.lastRefusal = null;
      renderImpact(answer);
      setStatus(`${t("saved")} #${answer.changeset}`, "ok");
      document.getElementById("edit-save").disabled = true;
      this.draw?.clear();
      this.dropPreviewLines();
      this.units = [];
      this.onSaved(answer);
    } catch (error) {
      this.refused(error);
    }
  }

  refused(error) {
    document.getElementById("edit-save").disabled = true;
    delete document.getElementById("edit-status").dataset.preview; // nothing previewed stands
    if (error.status === 412) {
      // The drawing and the chosen units are kept: one click on Preview shows
      // the edit against the current boundaries, then it can be saved.
      this.lastPreview = null;
      this.lastRefusal = error;
      const codes = (error.problem?.codes ?? []).join(", ");
      setStatus(t("staleEdit", { codes }), "error");
      document.getElementById("edit-status").dataset.kind = "error-412";
      document.getElementById("edit-impact").replaceChildren();
      document.getElementById("edit-preview").focus();
    } else if (error.status === 422 && error.problem?.problems) {
      const features = error.problem.problems
        .filter((p) => p.geometry)
        .map((p) => ({ type: "Feature", geometry: geometryToDisplay(p.geometry), properties: { side: "problem" } }));
      this.turn += 1; // the problems replace whatever preview was on its way
      this.overlay.clear();
      this.map.getSource("preview")?.setData({ type: "FeatureCollection", features });
      setStatus(error.problem.problems.map((p) => `${p.rule}: ${p.message}`).join("\n"), "error");
    } else {
      setStatus(error.message, "error");
    }
  }

  /**
   * Show a preview's lines: at once in the SVG overlay (drawn in the next
   * frame, with no map redraw in it), then, once that frame is painted, in the
   * map's own preview layers, together with terra-draw's held redraw; the
   * overlay goes when the map has drawn them (its next `idle`). Without a GPU
   * each map redraw blocks the page 100–200 ms and a new source takes two: the
   * lines were on the screen that much later (issue 14).
   */
  showGeometry(collection, held = null) {
    const shown = geometryToDisplay(collection) ?? EMPTY;
    // Not the map source: emptied now, it would be one more map redraw in the
    // overlay's frame (its last lines, if any, go with the setData below).
    this.turn += 1;
    const turn = this.turn;
    this.overlay.show(shown, t("previewLines"));
    afterPaint(() => {
      // Stale (cleared, closed, another preview): terra-draw's redraw is still due.
      if (turn !== this.turn) {
        held?.release();
        return;
      }
      this.map.getSource("preview")?.setData(shown);
      held?.release();
      this.map.once("idle", () => {
        if (turn === this.turn) this.overlay.clear();
      });
    });
  }

  async history(code) {
    const page = await api(`/api/v1/layers/${encodeURIComponent(this.layer)}/changesets?unit=${encodeURIComponent(code)}`);
    return page.changesets ?? page.items ?? page;
  }

  async revert(id) {
    const answer = await api(`/api/v1/layers/${encodeURIComponent(this.layer)}/changesets/${id}/revert`, { method: "POST", body: {} });
    setStatus(`${t("reverted")} #${id} → #${answer.changeset}`, "ok");
    this.onSaved(answer);
  }

  /** Draw the panel again in the current language (its last preview or refusal included). */
  redraw() {
    this.render();
    this.overlay.svg?.setAttribute("aria-label", t("previewLines"));
    if (this.lastRefusal && !this.lastPreview) this.refused(this.lastRefusal);
    else if (this.lastSaved && !this.lastPreview) renderImpact(this.lastSaved);
    else if (this.lastPreview) renderImpact(this.lastPreview);
  }

  render() {
    document.getElementById("edit-units").textContent = this.units.join(", ") || t("none");
    document.getElementById("edit-draw").disabled = !DRAWING[this.op];
    document.getElementById("edit-parts-row").hidden = this.op !== "auto_split";
    document.getElementById("edit-save").disabled = !this.lastPreview;
  }
}

function setStatus(text, kind = "hint") {
  const status = document.getElementById("edit-status");
  status.textContent = text;
  status.className = kind;
  status.dataset.kind = kind;
}

function renderImpact(answer) {
  const impact = answer.impact ?? {};
  const lines = [
    `${t("created")}: ${answer.created.join(", ") || t("none")}`,
    `${t("changed")}: ${answer.changed.join(", ") || t("none")}`,
    `${t("retired")}: ${answer.retired.join(", ") || t("none")}`,
    `${t("moves")}: ${impact.buildings ?? 0} ${t("buildingsUnit")}, ${impact.households ?? 0} ${t("householdsUnit")}`,
  ];
  const alignment = impact.alignment;
  if (alignment) lines.push(`${t("sameGrid")}: ${alignment.before} → ${alignment.after}`);
  const table = document.createElement("table");
  table.id = "edit-workload";
  for (const row of impact.workload ?? []) {
    const tr = table.insertRow();
    const out = row.after != null && row.target_max != null && (row.after > row.target_max || row.after < row.target_min);
    tr.innerHTML = "<td></td><td></td><td></td>";
    tr.cells[0].textContent = row.code;
    tr.cells[1].textContent = `${row.before ?? "—"} → ${row.after ?? "—"}`;
    tr.cells[2].textContent = row.target_max != null ? `${row.target_min}–${row.target_max}` : "";
    if (out) tr.className = "over";
  }
  const box = document.getElementById("edit-impact");
  box.replaceChildren(...lines.map((l) => Object.assign(document.createElement("div"), { textContent: l })), table);
  setStatus(answer.applied ? t("saved") : t("previewReady"), "ok");
  document.getElementById("edit-status").dataset.preview = answer.applied ? "applied" : "preview";
}
