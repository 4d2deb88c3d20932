// Label glyphs for MapLibre, made at build time: no font server, no network.
//
// MapLibre draws text from signed-distance-field (SDF) glyphs in PBF ranges of
// 256 code points ({fontstack}/{start}-{end}.pbf). We make them from Noto Sans
// (npm @fontsource/noto-sans, SIL OFL) parsed with opentype.js: each glyph's
// outline is flattened to segments and the exact signed distance of every
// pixel to it is computed here (no rasteriser, no native module), so the
// output is the same bytes on every machine and `build.mjs --check` can
// compare it. Only Latin, digits and punctuation ship (a few hundred KB);
// Chinese is drawn by MapLibre from the browser's own CJK font
// (localIdeographFontFamily), as glyph PBFs for CJK would be tens of MB.
import { readFileSync, mkdirSync, writeFileSync, cpSync } from "node:fs";
import { join } from "node:path";
import opentype from "opentype.js";

// The metrics MapLibre expects (its own local glyphs use the same).
const SIZE = 24; // em in pixels
const BUFFER = 3; // pixels around each glyph (GLYPH_PBF_BORDER)
const RADIUS = 8; // pixels of distance encoded
const CUTOFF = 0.25; // share of the byte range outside the edge
const TOP_ADJUSTMENT = 27; // MapLibre's baseline convention for "top"

// Ranges: Basic Latin + Latin-1 (digits, letters, ü é), Latin Extended-A
// (ā ō ǔ of pinyin with tones; regular only) and General Punctuation (— “ ” …).
export const FONTS = {
  "Noto Sans Regular": { subsets: ["latin-400-normal", "latin-ext-400-normal"], ranges: [0, 256, 8192] },
  "Noto Sans Bold": { subsets: ["latin-700-normal"], ranges: [0, 8192] },
};

function loadFont(modules, subset) {
  const buffer = readFileSync(join(modules, "@fontsource", "noto-sans", "files", `noto-sans-${subset}.woff`));
  return opentype.parse(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength));
}

/** Outline of a glyph as line segments [x0, y0, x1, y1] in pixels, y down, origin on the baseline. */
function segments(glyph) {
  const out = [];
  let start = null;
  let last = null;
  const line = (x, y) => { out.push([last[0], last[1], x, y]); last = [x, y]; };
  for (const c of glyph.getPath(0, 0, SIZE).commands) {
    if (c.type === "M") { start = [c.x, c.y]; last = [c.x, c.y]; }
    else if (c.type === "L") line(c.x, c.y);
    else if (c.type === "Q") {
      const [x0, y0] = last;
      for (let i = 1; i <= 8; i++) {
        const t = i / 8, u = 1 - t;
        line(u * u * x0 + 2 * u * t * c.x1 + t * t * c.x, u * u * y0 + 2 * u * t * c.y1 + t * t * c.y);
      }
    } else if (c.type === "C") {
      const [x0, y0] = last;
      for (let i = 1; i <= 12; i++) {
        const t = i / 12, u = 1 - t;
        line(
          u * u * u * x0 + 3 * u * u * t * c.x1 + 3 * u * t * t * c.x2 + t * t * t * c.x,
          u * u * u * y0 + 3 * u * u * t * c.y1 + 3 * u * t * t * c.y2 + t * t * t * c.y,
        );
      }
    } else if (c.type === "Z" && start && last && (last[0] !== start[0] || last[1] !== start[1])) {
      line(start[0], start[1]);
    }
  }
  return out;
}

function signedDistance(px, py, segs) {
  let best = Infinity;
  let winding = 0;
  for (const [x0, y0, x1, y1] of segs) {
    const dx = x1 - x0, dy = y1 - y0;
    const length2 = dx * dx + dy * dy;
    let t = length2 > 0 ? ((px - x0) * dx + (py - y0) * dy) / length2 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    const ex = x0 + t * dx - px, ey = y0 + t * dy - py;
    const d2 = ex * ex + ey * ey;
    if (d2 < best) best = d2;
    // Non-zero winding of a ray to the right.
    if ((y0 <= py) !== (y1 <= py)) {
      const x = x0 + ((py - y0) / dy) * dx;
      if (x > px) winding += y1 > y0 ? 1 : -1;
    }
  }
  const d = Math.sqrt(best);
  return winding !== 0 ? -d : d;
}

function sdfGlyph(id, glyph, unitsPerEm) {
  const advance = Math.round(((glyph.advanceWidth ?? 0) * SIZE) / unitsPerEm);
  const segs = segments(glyph);
  if (!segs.length) return { id, bitmap: new Uint8Array(0), width: 0, height: 0, left: 0, top: -TOP_ADJUSTMENT, advance };
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (const [x0, y0, x1, y1] of segs) {
    minX = Math.min(minX, x0, x1); maxX = Math.max(maxX, x0, x1);
    minY = Math.min(minY, y0, y1); maxY = Math.max(maxY, y0, y1);
  }
  const left = Math.floor(minX);
  const glyphTop = Math.ceil(-minY); // above the baseline
  const width = Math.max(1, Math.ceil(maxX) - left);
  const height = Math.max(1, glyphTop + Math.ceil(maxY));
  const w = width + 2 * BUFFER, h = height + 2 * BUFFER;
  const bitmap = new Uint8Array(w * h);
  for (let j = 0; j < h; j++) {
    for (let i = 0; i < w; i++) {
      const d = signedDistance(left - BUFFER + i + 0.5, -glyphTop - BUFFER + j + 0.5, segs);
      const value = Math.round(255 - 255 * (d / RADIUS + CUTOFF));
      bitmap[j * w + i] = value < 0 ? 0 : value > 255 ? 255 : value;
    }
  }
  return { id, bitmap, width, height, left, top: glyphTop - TOP_ADJUSTMENT, advance };
}

// Protocol buffers, the few wire types glyphs.proto needs.
class Writer {
  constructor() { this.bytes = []; }
  varint(n) { n = Number(n); while (n > 127) { this.bytes.push((n & 127) | 128); n = Math.floor(n / 128); } this.bytes.push(n); }
  key(field, type) { this.varint((field << 3) | type); }
  uint(field, n) { this.key(field, 0); this.varint(n); }
  sint(field, n) { this.key(field, 0); this.varint(n >= 0 ? 2 * n : -2 * n - 1); }
  raw(field, data) { this.key(field, 2); this.varint(data.length); for (const b of data) this.bytes.push(b); }
  string(field, text) { this.raw(field, new TextEncoder().encode(text)); }
  result() { return Uint8Array.from(this.bytes); }
}

function encodeRange(name, start, glyphs) {
  const stack = new Writer();
  stack.string(1, name);
  stack.string(2, `${start}-${start + 255}`);
  for (const g of glyphs) {
    const glyph = new Writer();
    glyph.uint(1, g.id);
    if (g.bitmap.length) glyph.raw(2, g.bitmap);
    glyph.uint(3, g.width);
    glyph.uint(4, g.height);
    glyph.sint(5, g.left);
    glyph.sint(6, g.top);
    glyph.uint(7, g.advance);
    stack.raw(3, glyph.result());
  }
  const file = new Writer();
  file.raw(1, stack.result());
  return file.result();
}

/** Write {out}/{font}/{start}-{end}.pbf for every font and range, and the font's licence. */
export function buildGlyphs(modules, out) {
  for (const [name, { subsets, ranges }] of Object.entries(FONTS)) {
    const fonts = subsets.map((subset) => loadFont(modules, subset));
    mkdirSync(join(out, name), { recursive: true });
    for (const start of ranges) {
      const glyphs = [];
      for (let id = start; id < start + 256; id++) {
        if (id < 32 || (id >= 127 && id < 160)) continue; // control characters
        const font = fonts.find((f) => f.charToGlyphIndex(String.fromCodePoint(id)) > 0);
        if (!font) continue;
        glyphs.push(sdfGlyph(id, font.charToGlyph(String.fromCodePoint(id)), font.unitsPerEm));
      }
      writeFileSync(join(out, name, `${start}-${start + 255}.pbf`), encodeRange(name, start, glyphs));
    }
  }
  cpSync(join(modules, "@fontsource", "noto-sans", "LICENSE"), join(out, "NotoSans.LICENSE"));
}
