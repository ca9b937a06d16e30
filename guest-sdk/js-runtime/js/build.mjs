// Bundles what the JS runtime component embeds (run by `cargo xtask build-js-runtime`):
// * Convex's own `convex/server` and `convex/values`, as ES modules that share their common
//   code through chunks, so a bare `convex/server` import in a user's module resolves to the
//   library exactly as Convex ships it: dist/convex/{server,values,chunk-*}.js;
// * the environment script (src/environment.js) with the npm packages it uses:
//   dist/environment.js.
import { build } from "esbuild";
import { rmSync } from "node:fs";

const dist = new URL("./dist/", import.meta.url).pathname;
rmSync(dist, { recursive: true, force: true });
const common = {
  bundle: true,
  target: "es2022",
  minify: false,
  legalComments: "none",
  logLevel: "warning",
};
await build({
  ...common,
  entryPoints: { server: "convex/server", values: "convex/values" },
  splitting: true,
  format: "esm",
  platform: "neutral",
  mainFields: ["module", "main"],
  outdir: dist + "convex/",
});
await build({
  ...common,
  entryPoints: ["src/environment.js"],
  format: "iife",
  // The browser builds of the packages (object-inspect's has no Node `util`).
  platform: "browser",
  outfile: dist + "environment.js",
});
