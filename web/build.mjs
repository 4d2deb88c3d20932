// Build the web map and the offline API docs into the Python package (api/static).
//   node build.mjs          write api/static/{web,docs,glyphs} and gis/maps/assets (Leaflet for offline folium maps)
//   node build.mjs --check  build into a temporary folder and fail if the committed files differ
import * as esbuild from "esbuild";
import { cpSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { buildGlyphs } from "./glyphs.mjs";

const here = new URL(".", import.meta.url).pathname;
const project = join(here, "..");
const OUTPUTS = ["api/static/web", "api/static/docs", "api/static/glyphs", "gis/maps/assets"];
const check = process.argv.includes("--check");
const out = check ? mkdtempSync(join(tmpdir(), "tongge-web-")) : project;

async function build(root) {
  for (const folder of OUTPUTS) {
    rmSync(join(root, folder), { recursive: true, force: true });
    mkdirSync(join(root, folder), { recursive: true });
  }
  const into = join(root, "api", "static");
  await esbuild.build({
    entryPoints: { app: join(here, "src", "main.js") },
    bundle: true,
    minify: true,
    format: "esm",
    target: ["chrome110", "firefox110", "safari16"],
    outdir: join(into, "web"),
    legalComments: "linked",
    logLevel: "warning",
  });
  await esbuild.build({
    entryPoints: { app: join(here, "src", "app.css") },
    bundle: true,
    minify: true,
    outdir: join(into, "web"),
    logLevel: "warning",
  });
  cpSync(join(here, "src", "index.html"), join(into, "web", "index.html"));
  buildGlyphs(join(here, "node_modules"), join(into, "glyphs"));
  const swagger = join(here, "node_modules", "swagger-ui-dist");
  for (const file of ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE"]) {
    cpSync(join(swagger, file), join(into, "docs", file === "LICENSE" ? "swagger-ui.LICENSE" : file));
  }
  const leaflet = join(here, "node_modules", "leaflet");
  const maps = join(root, "gis", "maps", "assets");
  mkdirSync(join(maps, "images"), { recursive: true });
  for (const file of ["leaflet.js", "leaflet.css"]) cpSync(join(leaflet, "dist", file), join(maps, file));
  cpSync(join(leaflet, "LICENSE"), join(maps, "leaflet.LICENSE"));
  for (const file of ["layers.png", "layers-2x.png", "marker-icon.png", "marker-icon-2x.png", "marker-shadow.png"]) {
    cpSync(join(leaflet, "dist", "images", file), join(maps, "images", file));
  }
  const redoc = join(here, "node_modules", "redoc", "bundles");
  // ReDoc's footer fetches its logo from cdn.redoc.ly: nothing may leave the intranet.
  const redocSource = readFileSync(join(redoc, "redoc.standalone.js"), "utf8");
  const cdnLogo = "https://cdn.redoc.ly/redoc/logo-mini.svg";
  if (!redocSource.includes(cdnLogo)) throw new Error("redoc no longer loads its CDN logo: review build.mjs");
  writeFileSync(join(into, "docs", "redoc.standalone.js"), redocSource.replaceAll(cdnLogo, "/static/docs/favicon-32x32.png"));
  cpSync(join(redoc, "redoc.standalone.js.LICENSE.txt"), join(into, "docs", "redoc.standalone.js.LICENSE.txt"));
}

function files(root) {
  const found = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else found.push(relative(root, path));
    }
  };
  for (const sub of OUTPUTS) {
    try { walk(join(root, sub)); } catch { /* missing: reported as a difference */ }
  }
  return found.sort();
}

await build(out);
if (check) {
  const built = files(out);
  const committed = files(project);
  const differ = built.filter((f) => !committed.includes(f) || !readFileSync(join(out, f)).equals(readFileSync(join(project, f))));
  const stale = committed.filter((f) => !built.includes(f));
  rmSync(out, { recursive: true, force: true });
  if (differ.length || stale.length) {
    console.error(`built files differ from web/ sources: ${[...differ, ...stale].join(", ")}\nrun: cd web && npm ci && npm run build`);
    process.exit(1);
  }
  console.log(`${OUTPUTS.join(", ")} match the web/ sources`);
} else {
  console.log(`built ${OUTPUTS.join(", ")}`);
}
