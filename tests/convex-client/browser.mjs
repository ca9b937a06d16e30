// Loads a React page (browser/page.js, bundled here with esbuild) that lists messages with
// `useQuery` through `ConvexReactClient`, in headless Chromium (Debian's, driven by
// playwright-core), from 127.0.0.1 on another port than Kiln's (argv[2]) — so the browser
// sends its Origin with the WebSocket upgrade. A mutation sent from node must then appear
// on the page without a reload. Saves a screenshot to argv[3] and prints one JSON object.
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { chromium } from "playwright-core";
import { ConvexHttpClient } from "convex/browser";

const [kiln, screenshot] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const bundle = await esbuild.build({
  entryPoints: [path.join(here, "browser/page.js")],
  bundle: true,
  write: false,
  format: "esm",
  define: { "process.env.NODE_ENV": '"production"' },
});
const script = bundle.outputFiles[0].text;
const html = `<!doctype html><html><head><meta charset="utf-8"><title>Kiln chat</title></head>
<body><div id="root"></div><script type="module" src="/page.js"></script></body></html>`;
const server = http.createServer((request, response) => {
  const [type, body] = request.url.startsWith("/page.js")
    ? ["text/javascript", script]
    : ["text/html", html];
  response.writeHead(200, { "content-type": type });
  response.end(body);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const pageUrl = `http://127.0.0.1:${server.address().port}/?kiln=${encodeURIComponent(kiln)}`;

const browser = await chromium.launch({
  executablePath: process.env.KILN_CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const result = { console: [] };
try {
  const page = await browser.newPage();
  page.on("console", (message) => result.console.push(message.text()));
  page.on("pageerror", (error) => result.console.push(`pageerror: ${error.message}`));
  await page.goto(pageUrl);
  await page.waitForFunction(
    () => document.getElementById("status")?.textContent === "0 messages",
    null,
    { timeout: 30000 },
  );
  result.before = await page.locator("#status").textContent();
  const navigations = [];
  page.on("framenavigated", (frame) => navigations.push(frame.url()));

  const client = new ConvexHttpClient(kiln);
  await client.mutation("messages:send", { channel: "browser", author: "node", body: "hello browser" });
  await page.waitForFunction(
    () => document.querySelectorAll("#messages li").length === 1,
    null,
    { timeout: 30000 },
  );
  result.items = await page.locator("#messages li").allTextContents();
  result.after = await page.locator("#status").textContent();
  result.reloads = navigations.length;
  result.origin = await page.evaluate(() => window.location.origin);
  await page.screenshot({ path: screenshot });
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify(result));
