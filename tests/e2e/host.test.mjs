// What a host page configures: data-theme (the page's own light/dark toggle
// wins over the visitor's preference, per page or per element) and
// data-beacon (off by default; when set, only aggregate counts per position
// leave the page: no ids, titles or questions), data-model (the model pack
// from another URL, still checked against the manifest). The host pages live in
// build/e2e-host beside links to the demo's pages, script and index.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { ROOT, serve, launch, watch, firstLink, assertClean } from "./harness.mjs";

const SHOTS = join(ROOT, "build", "screenshots");
const SITE = join(ROOT, "build", "e2e-host");
const LIGHT_ACCENT = "rgb(9, 105, 218)"; // #0969da, cairn.js's light --_accent
const DARK_ACCENT = "rgb(68, 147, 248)"; // #4493f8, its dark one
let server, browser;

/** Writes a host page: `body` under a Cairn script tag with `attrs`. */
function hostPage(name, attrs, body) {
  writeFileSync(join(SITE, name), `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>host</title>
<link rel="icon" href="/favicon.svg"><script type="module" src="/cairn/cairn.js" data-index="/index/" ${attrs}></script></head>
<body>${body}</body></html>`);
}

let sink;
before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  rmSync(SITE, { recursive: true, force: true });
  mkdirSync(SITE, { recursive: true });
  for (const entry of ["cairn", "index", "questions", "favicon.svg", "forum.css"]) symlinkSync(join(ROOT, "build", "demo", entry), join(SITE, entry));
  sink = await collector();
  hostPage("themed.html", 'data-theme="dark"', '<cairn-related id="a" topic="1" limit="5"></cairn-related><cairn-related id="b" topic="1" limit="5" theme="light"></cairn-related>');
  hostPage("counted.html", `data-beacon="${sink.url}"`, '<cairn-related id="a" topic="1" limit="5"></cairn-related>');
  // The index's own pack, also served from /models/ (as a CDN copy would be).
  mkdirSync(join(SITE, "models"));
  const pack = readdirSync(join(ROOT, "build", "demo", "index")).find((f) => f.startsWith("model-"));
  symlinkSync(join(ROOT, "build", "demo", "index", pack), join(SITE, "models", "minilm-int8.cpk"));
  hostPage("model.html", 'data-model="/models/minilm-int8.cpk"', "<cairn-ask></cairn-ask>");
  hostPage("wrong-model.html", 'data-model="/forum.css"', "<cairn-ask></cairn-ask>");
  server = await serve(SITE);
  browser = await launch();
});
after(async () => {
  await browser?.close();
  server?.close();
  sink?.close();
});

const accent = (page, sel) => page.evaluate((s) => getComputedStyle(document.querySelector(s).shadowRoot.querySelector("a")).color, sel);

test("themes: the visitor's dark preference by default, the host page's data-theme or theme attribute when set", async () => {
  // The demo page follows the visitor's preference.
  const demo = await browser.context.newPage();
  const demoLog = watch(demo);
  await demo.emulateMedia({ colorScheme: "dark" });
  await demo.goto(new URL("questions/1", server.url).href);
  await firstLink(demo, demoLog);
  assert.equal(await accent(demo, "cairn-related"), DARK_ACCENT, "dark preference, dark colours");
  await demo.screenshot({ path: join(SHOTS, "related-dark.png") });
  assertClean(demoLog);
  await demo.close();

  // A host page with its own dark theme, one element pinned to light.
  const page = await browser.context.newPage();
  const log = watch(page);
  await page.emulateMedia({ colorScheme: "light" });
  await page.goto(new URL("themed.html", server.url).href);
  await firstLink(page, log, "#a a");
  await firstLink(page, log, "#b a");
  assert.equal(await accent(page, "#a"), DARK_ACCENT, "data-theme=dark beats a light preference");
  assert.equal(await accent(page, "#b"), LIGHT_ACCENT, "theme=light on the element beats the script's data-theme");
  await page.emulateMedia({ colorScheme: "dark" });
  assert.equal(await accent(page, "#b"), LIGHT_ACCENT, "theme=light holds under a dark preference");
  assertClean(log);
  await page.close();
});

/**
 * A collector on its own port that records every request it receives (the
 * browser's own request log misses beacons sent while a page unloads).
 */
async function collector() {
  const got = [];
  const srv = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      got.push({ method: req.method, path: req.url, body });
      res.writeHead(204, { "access-control-allow-origin": "*" });
      res.end();
    });
  });
  await new Promise((ok) => srv.listen(0, "127.0.0.1", ok));
  return { url: `http://127.0.0.1:${srv.address().port}/collect`, got, close: () => srv.close() };
}

test("the beacon is off by default; when configured it gets counts per position and nothing else", async () => {
  // The demo's pages configure no beacon: leaving one sends nothing anywhere.
  const plain = await browser.context.newPage();
  const plainLog = watch(plain);
  await plain.goto(new URL("questions/1", server.url).href);
  await firstLink(plain, plainLog);
  await plain.locator("cairn-related a").first().click();
  await firstLink(plain, plainLog);
  assertClean(plainLog);
  await plain.close();
  assert.deepEqual(sink.got, [], "nothing reached the collector");

  const page = await browser.context.newPage();
  const log = watch(page);
  await page.goto(new URL("counted.html", server.url).href);
  await firstLink(page, log, "#a a");
  const shown = await page.locator("#a a").count();
  await page.locator("#a a").nth(1).click(); // leaves the page: the beacon goes when it is hidden
  await firstLink(page, log);
  for (let i = 0; i < 50 && !sink.got.length; i++) await page.waitForTimeout(100);
  assert.equal(sink.got.length, 1, "one beacon when the page was left");
  assert.equal(sink.got[0].method, "POST");
  // Exactly the aggregate counts: shown once at each position, followed once at position 1.
  assert.deepEqual(JSON.parse(sink.got[0].body), { v: 1, counts: { related: { shown: Array(shown).fill(1), clicked: [0, 1] } } });
  assert.deepEqual(log.errors, [], "no console errors");
  await page.close();
});

/** Asks `question` in the page's assistant; resolves to cairn:answered's detail. */
async function ask(page, question) {
  const answered = page.evaluate(() => new Promise((ok) => document.addEventListener("cairn:answered", (e) => ok(e.detail), { once: true })));
  await page.locator("cairn-ask textarea").fill(question);
  await page.locator("cairn-ask textarea").press("Enter");
  return answered;
}

test("data-model: the pack comes from the configured URL; a file that is not the manifest's pack is refused, and answers fall back to words", { timeout: 180_000 }, async () => {
  const page = await browser.context.newPage();
  const log = watch(page);
  await page.goto(new URL("model.html", server.url).href);
  const detail = await ask(page, "Can a classical Turing machine simulate a quantum computer?");
  assert.match(detail.model, /^cpu: /, `the model ran: ${detail.model}`);
  assert.ok(detail.count > 0, "threads found");
  const packs = log.requests.filter((u) => u.endsWith(".cpk")).map((u) => new URL(u).pathname);
  assert.deepEqual(packs, ["/models/minilm-int8.cpk"], "the pack came from data-model, and only from there");
  assertClean(log);
  await page.close();

  const wrong = await browser.context.newPage();
  const wrongLog = watch(wrong);
  await wrong.goto(new URL("wrong-model.html", server.url).href);
  const fallback = await ask(wrong, "Can a classical Turing machine simulate a quantum computer?");
  assert.match(fallback.model, /^words only: .*forum\.css.*(bytes|SHA-256)/, `the wrong file is refused by its hash: ${fallback.model}`);
  assert.ok(fallback.count > 0, "lexical answers still come");
  assert.match(await wrong.evaluate(() => document.querySelector("cairn-ask").shadowRoot.textContent), /words only/);
  assertClean(wrongLog);
  await wrong.close();
});

