// Hostile forum text and a strict host page: payloads in titles, bodies and
// comments show as text and run nothing; the widget works under a CSP of
// `script-src 'self' 'wasm-unsafe-eval'` with no inline script or style; a host
// page whose own scripts throw does not stop it, and it throws nothing into the
// page, not even when its index is missing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, serve, launch, watch, firstLink } from "./harness.mjs";

const SITE = join(ROOT, "build", "e2e-hostile");
const CAIRN = join(ROOT, "target", "release", "cairn");
const MODEL = process.env.CAIRN_MODEL ?? join(ROOT, "build", "model");
const PAYLOADS = [
  `<img src=x onerror="window.__pwned='img'">`,
  `<script>window.__pwned='script'</script> install qiskit`,
  `"><svg onload="window.__pwned='svg'"> quantum gates`,
  `javascript:window.__pwned='href' entanglement`,
  `Plain question about qubits & <b>bold</b> claims`,
  `Another question about qubit decoherence`,
];
const xmlAttr = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

let server, browser;

before(async () => {
  rmSync(SITE, { recursive: true, force: true });
  const dump = join(SITE, "dump");
  mkdirSync(dump, { recursive: true });
  const rows = PAYLOADS.map((title, i) =>
    `  <row Id="${i + 1}" PostTypeId="1" CreationDate="2018-03-1${i}T10:00:00.000" Score="1" ` +
    `Body="${xmlAttr(`<p>Body ${i} ${PAYLOADS[(i + 1) % PAYLOADS.length]}</p><script>window.__pwned='body'</script>`)}" ` +
    `OwnerUserId="${i % 2 + 1}" Title="${xmlAttr(title)}" Tags="&lt;qubit&gt;" />`);
  writeFileSync(join(dump, "Posts.xml"), `<?xml version="1.0" encoding="utf-8"?>\n<posts>\n${rows.join("\n")}\n</posts>\n`);
  writeFileSync(join(dump, "Comments.xml"),
    `<?xml version="1.0" encoding="utf-8"?>\n<comments>\n  <row Id="1" PostId="1" Score="0" Text="${xmlAttr(`<img src=x onerror="window.__pwned='comment'">`)}" CreationDate="2018-03-12T11:00:00.000" UserId="2" />\n</comments>\n`);
  const site = join(SITE, "site");
  execFileSync(CAIRN, ["index", "--stackexchange", dump, "--model", MODEL, "--out", join(site, "index")], { stdio: "pipe" });
  execFileSync(CAIRN, ["demo", "--stackexchange", dump, "--out", site], { stdio: "pipe" });
  cpSync(join(ROOT, "build", "demo", "cairn"), join(site, "cairn"), { recursive: true });
  // A host page with a strict policy: only same-origin scripts, wasm allowed, no inline anything.
  writeFileSync(join(site, "strict.html"), `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self'">
<title>strict host</title><link rel="icon" href="/favicon.svg"><script type="module" src="/cairn/cairn.js" data-index="/index/"></script></head>
<body><h1>Strict host page</h1><cairn-related topic="6" limit="5"></cairn-related></body></html>`);
  // A host page whose own script throws, before and after the widget loads, and rejects a promise.
  writeFileSync(join(site, "throws.js"), `throw new Error("host boom");`);
  writeFileSync(join(site, "throws-later.js"), `setTimeout(() => { throw new Error("host boom later"); }, 0); Promise.reject(new Error("host rejection"));`);
  const widgets = `<cairn-related topic="6" limit="5"></cairn-related><cairn-feed></cairn-feed><cairn-ask></cairn-ask>`;
  writeFileSync(join(site, "throws.html"), `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>broken host</title>
<link rel="icon" href="/favicon.svg"><script src="/throws.js"></script><script type="module" src="/cairn/cairn.js" data-index="/index/"></script>
<script src="/throws-later.js"></script></head><body><h1>A host page with errors</h1>${widgets}</body></html>`);
  // A host page whose index is missing: the widgets hide, and say nothing to the page.
  writeFileSync(join(site, "no-index.html"), `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>no index</title>
<link rel="icon" href="/favicon.svg"><script type="module" src="/cairn/cairn.js" data-index="/missing/"></script></head>
<body><h1>No index here</h1>${widgets}</body></html>`);
  server = await serve(site);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.close();
});

test("payloads in forum text are shown as text and never run", async () => {
  const page = await browser.context.newPage();
  const log = watch(page);
  let dialogs = 0;
  page.on("dialog", (d) => { dialogs++; d.dismiss(); });
  const missing = [];
  page.on("response", (r) => { if (r.status() === 404) missing.push(new URL(r.url()).pathname); });
  await page.goto(new URL("questions/6", server.url).href);
  const links = page.locator("cairn-related a");
  await firstLink(page, log);
  const texts = await links.evaluateAll((as) => as.map((a) => a.textContent));
  const hrefs = await links.evaluateAll((as) => as.map((a) => a.getAttribute("href")));
  for (const t of texts) assert.ok(PAYLOADS.includes(t), `link text is the raw title: ${t}`);
  assert.ok(texts.some((t) => t.includes("<img")), "an HTML payload title is shown, as text");
  assert.ok(hrefs.every((h) => /^http:\/\/127\.0\.0\.1:\d+\/questions\/\d+$/.test(h)), `only http links: ${hrefs}`);
  const injected = await page.evaluate(() => {
    const shadow = document.querySelector("cairn-related").shadowRoot;
    // The widget makes no element from forum text; the page's sanitised bodies keep no script or handler.
    return shadow.querySelectorAll("img, script, svg, b").length +
      document.querySelectorAll("main script, main svg, main [onerror], main [onload]").length;
  });
  assert.equal(injected, 0, "no element was created from forum text");
  for (const id of [1, 2, 3]) await page.goto(new URL(`questions/${id}`, server.url).href);
  assert.equal(await page.evaluate(() => window.__pwned), undefined, "no payload ran");
  assert.equal(dialogs, 0);
  // The payload's <img src=x> survives sanitising as a harmless broken image (its handler is gone);
  // that 404 is the only error allowed.
  assert.ok(missing.every((p) => p === "/questions/x"), `unexpected 404s: ${missing}`);
  assert.deepEqual(log.errors.filter((e) => !(e.includes("404") && missing.length)), []);
  await page.close();
});

test("the widget works on a host page with a strict Content-Security-Policy", async () => {
  const page = await browser.context.newPage();
  const log = watch(page);
  await page.goto(new URL("strict.html", server.url).href);
  await firstLink(page, log);
  assert.deepEqual(log.errors, [], "no CSP violation or other console error");
  const outside = log.requests.filter((u) => !u.startsWith(server.url));
  assert.deepEqual(outside, [], "no request leaves the site's origin");
  await page.close();
});

test("a host page whose scripts throw still gets its widgets, and the widgets throw nothing into it", async () => {
  const page = await browser.context.newPage();
  const log = watch(page);
  await page.goto(new URL("throws.html", server.url).href);
  await firstLink(page, log);
  await page.locator("cairn-ask textarea").waitFor({ state: "visible" });
  // Every page error is one of the host's own three.
  await page.waitForTimeout(500);
  assert.deepEqual(log.errors.map((e) => e.replace(/^Error: /, "")).sort(), ["host boom", "host boom later", "host rejection"], `page errors: ${log.errors}`);
  await page.close();
});

test("with its index missing the widgets hide and raise no error in the page", async () => {
  const page = await browser.context.newPage();
  const log = watch(page);
  await page.goto(new URL("no-index.html", server.url).href);
  await page.waitForFunction(() => document.querySelector("cairn-related")?.hidden === true, null, { timeout: 10_000 });
  await page.waitForTimeout(500);
  const visible = await page.evaluate(() => ["cairn-related", "cairn-feed", "cairn-ask"].filter((s) => !document.querySelector(s).hidden));
  assert.deepEqual(visible, [], "every widget hides");
  // The browser logs the 404 of the missing manifest itself; nothing else, and no page error.
  const pageErrors = log.errors.filter((e) => !/Failed to load resource: .*404/.test(e));
  assert.deepEqual(pageErrors, [], `no error but the 404: ${log.errors}`);
  await page.close();
});

