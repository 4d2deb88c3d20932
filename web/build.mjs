// Build the web map and the offline API docs into the Python package (api/static).
//   node build.mjs          write api/static/{web,docs}
//   node build.mjs --check  build into a temporary folder and fail if the committed files differ
import * as esbuild from "esbuild";
import { cpSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const here = new URL(".", import.meta.url).pathname;
const target = join(here, "..", "api", "static");
const check = process.argv.includes("--check");
const out = check ? mkdtempSync(join(tmpdir(), "tongge-web-")) : target;

async function build(into) {
  rmSync(join(into, "web"), { recursive: true, force: true });
  rmSync(join(into, "docs"), { recursive: true, force: true });
  mkdirSync(join(into, "web"), { recursive: true });
  mkdirSync(join(into, "docs"), { recursive: true });
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
  const swagger = join(here, "node_modules", "swagger-ui-dist");
  for (const file of ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE"]) {
    cpSync(join(swagger, file), join(into, "docs", file === "LICENSE" ? "swagger-ui.LICENSE" : file));
  }
  const redoc = join(here, "node_modules", "redoc", "bundles");
  cpSync(join(redoc, "redoc.standalone.js"), join(into, "docs", "redoc.standalone.js"));
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
  for (const sub of ["web", "docs"]) {
    try { walk(join(root, sub)); } catch { /* missing: reported as a difference */ }
  }
  return found.sort();
}

await build(out);
if (check) {
  const built = files(out);
  const committed = files(target);
  const differ = built.filter((f) => !committed.includes(f) || !readFileSync(join(out, f)).equals(readFileSync(join(target, f))));
  const stale = committed.filter((f) => !built.includes(f));
  rmSync(out, { recursive: true, force: true });
  if (differ.length || stale.length) {
    console.error(`api/static differs from web/ sources: ${[...differ, ...stale].join(", ")}\nrun: cd web && npm ci && npm run build`);
    process.exit(1);
  }
  console.log("api/static matches the web/ sources");
} else {
  writeFileSync(join(target, "README.md"), "Built by `cd web && npm ci && npm run build` from `web/`; do not edit by hand.\n");
  console.log(`built into ${relative(process.cwd(), target)}`);
}
