// The preview's lines drawn at once over the map in SVG, until the map draws them (issue 14).
//
// Without a GPU (software WebGL: headless browsers, virtual desktops) every
// MapLibre redraw blocks the page 100–200 ms, and a new GeoJSON source is
// drawn in two of them (when its data and when its tiles arrive): the
// preview's lines reached the map ~250–500 ms after the answer. A few SVG
// paths projected with `map.project()` are on the screen in the next frame
// for a few milliseconds, with no WebGL work in it; the map's own layers take
// over once they have drawn the same lines (the caller clears the overlay).
// Nothing is fetched: the paths are the answer's own geometry.

const SVG = "http://www.w3.org/2000/svg";

// As the map's preview layers draw them (edit.js: preview-after, preview-problems).
// MapLibre's line-dasharray is in line widths: [2, 1] at width 3 is 6 px, 3 px.
export const OVERLAY_STYLE = {
  after: { stroke: "#e67e22", width: 3, dash: "6 3" },
  problem: { stroke: "#c0392b", width: 5, dash: null },
};

/** The rings or lines of a GeoJSON geometry, each with whether it closes. */
function paths(geometry) {
  switch (geometry?.type) {
    case "LineString": return [[geometry.coordinates, false]];
    case "MultiLineString": return geometry.coordinates.map((line) => [line, false]);
    case "Polygon": return geometry.coordinates.map((ring) => [ring, true]);
    case "MultiPolygon": return geometry.coordinates.flat().map((ring) => [ring, true]);
    case "GeometryCollection": return geometry.geometries.flatMap(paths);
    default: return []; // points: the map's preview layers are lines only
  }
}

export class PreviewOverlay {
  constructor(map) {
    this.map = map;
    this.svg = null;
    this.shapes = []; // [path element, its rings/lines]
    this.onMove = () => this.project();
  }

  /**
   * Draw the features of `collection` the map's preview layers would draw.
   *
   * `label` names the picture for screen readers. Returns the number of paths.
   */
  show(collection, label) {
    this.clear();
    const features = (collection?.features ?? []).filter((f) => OVERLAY_STYLE[f.properties?.side]);
    if (!features.length) return 0;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "preview-overlay");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
    for (const feature of features) {
      const style = OVERLAY_STYLE[feature.properties.side];
      const path = document.createElementNS(SVG, "path");
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", style.stroke);
      path.setAttribute("stroke-width", String(style.width));
      path.setAttribute("stroke-linejoin", "round");
      if (style.dash) path.setAttribute("stroke-dasharray", style.dash);
      path.dataset.side = feature.properties.side;
      if (feature.properties.code) path.dataset.code = feature.properties.code;
      svg.appendChild(path);
      this.shapes.push([path, paths(feature.geometry)]);
    }
    // Above the map's canvas, below its controls (the next sibling), never in the way of a click.
    const canvas = this.map.getCanvasContainer();
    canvas.parentNode.insertBefore(svg, canvas.nextSibling);
    this.svg = svg;
    this.project();
    this.map.on("move", this.onMove);
    this.map.on("resize", this.onMove);
    return this.shapes.length;
  }

  /** Put every path where the map shows its coordinates now (after each move, zoom, resize). */
  project() {
    const map = this.map;
    for (const [path, parts] of this.shapes) {
      let d = "";
      for (const [coordinates, closed] of parts) {
        coordinates.forEach((position, i) => {
          const { x, y } = map.project(position);
          d += `${i ? "L" : "M"}${x.toFixed(1)} ${y.toFixed(1)}`;
        });
        if (closed && coordinates.length) d += "Z";
      }
      path.setAttribute("d", d);
    }
  }

  clear() {
    if (!this.svg) return;
    this.map.off("move", this.onMove);
    this.map.off("resize", this.onMove);
    this.svg.remove();
    this.svg = null;
    this.shapes = [];
  }
}
