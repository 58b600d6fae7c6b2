// The walking skeleton, end to end: a demo topic page served on 127.0.0.1 shows
// related topics computed by the wasm engine in a worker, and every link works.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT, serve, launch, watch, firstLink, assertClean } from "./harness.mjs";

const SHOTS = join(ROOT, "build", "screenshots");
let server, browser;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  server = await serve();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  server?.close();
});

test("a topic page shows related topics that link to existing demo pages", async () => {
  const page = await browser.context.newPage();
  const log = watch(page);
  // Question 1 ("Can a Turing machine simulate a quantum computer?") has recorded links.
  await page.goto(new URL("questions/1", server.url).href);
  const links = page.locator("cairn-related a");
  await firstLink(page, log);
  const hrefs = await links.evaluateAll((as) => as.map((a) => a.href));
  const titles = await links.evaluateAll((as) => as.map((a) => a.textContent));
  assert.ok(hrefs.length >= 5, `expected at least 5 related links, got ${hrefs.length}`);
  assert.ok(!hrefs.some((h) => h.endsWith("/questions/1")), "the topic itself is not suggested");
  assert.ok(titles.every((t) => t.trim().length > 0), "every link has a title");
  await page.screenshot({ path: join(SHOTS, "related-topic-page.png"), fullPage: false });

  for (const href of hrefs) {
    const res = await page.request.get(href);
    assert.equal(res.status(), 200, `${href} must be an existing demo page`);
    assert.match(await res.text(), /<cairn-related topic=/, `${href} is a demo topic page`);
  }

  // The JS API answers what the widget shows (same engine, same worker), and rejects bad input instead of throwing.
  const limit = await page.locator("cairn-related").getAttribute("limit");
  const api = await page.evaluate(async (limit) => {
    const cairn = await import("/cairn/cairn.js");
    const answer = await cairn.related("1", { limit: Number(limit) });
    const missing = await cairn.related("no-such-topic").then(() => "resolved", (e) => `rejected: ${e.message}`);
    return { urls: answer.related.map((r) => new URL(r.url, location.href).href), missing };
  }, limit);
  assert.deepEqual(api.urls, hrefs, "cairn.related() lists the widget's links in order");
  assert.match(api.missing, /^rejected: .*no-such-topic/);

  assertClean(log);
  await page.close();
});

test("a page naming a topic that is not in the index hides the widget without errors", async () => {
  const page = await browser.context.newPage();
  const log = watch(page);
  await page.goto(new URL("questions/1", server.url).href);
  await firstLink(page, log);
  await page.evaluate(() => {
    const el = document.createElement("cairn-related");
    el.id = "ghost";
    el.setAttribute("topic", "no-such-topic");
    document.body.append(el);
  });
  await page.waitForFunction(() => document.getElementById("ghost").hidden, null, { timeout: 10_000 });
  assert.deepEqual(log.errors, [], "a missing topic is not a console error");
  await page.close();
});
