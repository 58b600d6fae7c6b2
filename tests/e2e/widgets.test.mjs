// The other widgets in the demo forum: the "for you" feed learns from the pages
// read (in IndexedDB, in this browser only) and forgets on request; the
// assistant answers a question with threads and highlighted passages; the
// composer warns that a title may already exist; Chinese strings follow the
// page's language. No console errors, no request off 127.0.0.1.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT, serve, launch, watch, firstLink } from "./harness.mjs";

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

function clean(log) {
  assert.deepEqual(log.errors, [], "no console errors");
  const outside = log.requests.filter((u) => !u.startsWith("http://127.0.0.1:"));
  assert.deepEqual(outside, [], "no request leaves 127.0.0.1");
}

const shadowText = (page, sel) => page.evaluate((s) => document.querySelector(s)?.shadowRoot?.textContent ?? "", sel);

test("the feed suggests from pages read, says why, and forgets on request", async () => {
  const page = await browser.context.newPage();
  const log = watch(page);
  await page.goto(server.url);
  await page.locator("cairn-feed").waitFor({ state: "attached" });
  await page.waitForFunction(() => /Read a few topics/.test(document.querySelector("cairn-feed")?.shadowRoot?.textContent ?? ""), null, { timeout: 10_000 });

  // Read three topics, following related links as a visitor would; the related widget records each view.
  await page.goto(new URL("questions/1", server.url).href);
  await firstLink(page, log);
  const read = ["1"];
  for (let i = 0; i < 2; i++) {
    const link = page.locator("cairn-related a").nth(1);
    const href = await link.getAttribute("href");
    read.push(href.split("/").filter(Boolean).pop());
    await link.click();
    await page.waitForURL(href);
    await firstLink(page, log);
  }
  await page.goto(server.url);
  await firstLink(page, log, "cairn-feed a", 15_000);
  // Each suggestion says why: in its own line, or in its group's "Because you read ..." heading.
  const items = await page.locator("cairn-feed li").evaluateAll((lis) =>
    lis.map((li) => ({ href: li.querySelector("a").href, meta: li.querySelector(".meta").textContent, heading: li.parentElement.previousElementSibling?.textContent ?? "" })),
  );
  assert.ok(items.length >= 3, `expected at least 3 suggestions, got ${items.length}`);
  for (const { href, meta, heading } of items) {
    assert.ok(!read.some((id) => href.endsWith(`/questions/${id}`)), `${href} was read already`);
    assert.equal((await page.request.get(href)).status(), 200, `${href} is a demo page`);
    assert.ok(/·/.test(meta) || /^Because you read “.+”$/.test(heading), `each suggestion says why: ${meta} / ${heading}`);
  }
  assert.match(await shadowText(page, "cairn-feed"), /Because you read/);
  await page.screenshot({ path: join(SHOTS, "feed.png") });

  await page.locator("cairn-feed button").click();
  await page.waitForFunction(() => /reading history was cleared/.test(document.querySelector("cairn-feed")?.shadowRoot?.textContent ?? ""), null, { timeout: 10_000 });
  assert.equal(await page.locator("cairn-feed li").count(), 0, "nothing is suggested after clearing");
  const stored = await page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const r = indexedDB.open("cairn");
        r.onsuccess = () => {
          const q = r.result.transaction("views").objectStore("views").count();
          q.onsuccess = () => resolve(q.result);
          q.onerror = () => reject(q.error);
        };
        r.onerror = () => reject(r.error);
      }),
  );
  assert.equal(stored, 0, "the history in IndexedDB is empty");
  clean(log);
  await page.close();
});

test("the assistant answers a question with linked threads and highlighted passages", async () => {
  const page = await browser.context.newPage();
  const log = watch(page);
  await page.goto(new URL("ask/", server.url).href);
  const box = page.locator("cairn-ask textarea");
  await box.fill("Can a classical Turing machine simulate a quantum computer?");
  await box.press("Enter");
  await firstLink(page, log, "cairn-ask li > a", 90_000);
  const hrefs = await page.locator("cairn-ask li > a").evaluateAll((as) => as.map((a) => a.href));
  assert.ok(hrefs.slice(0, 3).some((h) => h.endsWith("/questions/1")), `question 1 is among the first three: ${hrefs}`);
  assert.ok((await page.locator("cairn-ask blockquote").count()) > 0, "passages are quoted");
  assert.ok((await page.locator("cairn-ask mark").count()) > 0, "query words are highlighted");
  const status = await page.locator("cairn-ask [role=status]").textContent();
  assert.doesNotMatch(status, /words only/, `the model ran: ${status}`);
  await page.screenshot({ path: join(SHOTS, "ask.png") });
  clean(log);
  await page.close();
});

test("the composer warns that a title may already exist", async () => {
  const page = await browser.context.newPage();
  const log = watch(page);
  await page.goto(new URL("new/", server.url).href);
  const title = await (await page.request.get(new URL("questions/1", server.url).href)).text();
  const existing = title.match(/<h1 class="question-title">([^<]+)<\/h1>/)[1];
  await page.locator("#new-title").pressSequentially(existing, { delay: 5 });
  await firstLink(page, log, "cairn-duplicates a", 90_000);
  const hrefs = await page.locator("cairn-duplicates li > a").evaluateAll((as) => as.map((a) => a.href));
  assert.ok(hrefs[0].endsWith("/questions/1"), `the existing topic comes first: ${hrefs}`);
  clean(log);
  await page.close();
});

test("widgets speak Chinese on a Chinese page", async () => {
  const page = await browser.context.newPage();
  const log = watch(page);
  await page.goto(new URL("questions/1", server.url).href);
  await firstLink(page, log);
  await page.evaluate(() => {
    const box = document.createElement("div");
    box.lang = "zh-CN";
    box.innerHTML = "<cairn-feed id=zh></cairn-feed>";
    document.body.append(box);
  });
  await page.waitForFunction(() => /为你推荐/.test(document.getElementById("zh")?.shadowRoot?.textContent ?? ""), null, { timeout: 10_000 });
  clean(log);
  await page.close();
});
