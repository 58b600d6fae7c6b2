// The other widgets in the demo forum: the "for you" feed learns from the pages
// read (in IndexedDB, in this browser only) and forgets on request; the
// assistant answers a question with threads and highlighted passages; the
// composer warns that a title may already exist; Chinese strings follow the
// page's language. No console errors, no request off 127.0.0.1.
//
// CAIRN_E2E_WEBGPU=1 runs the same tests in a browser with WebGPU (SwiftShader),
// the demo's script tag given data-backend="gpu" (on "auto" the engine declines
// a software adapter as slower than its CPU path): the assistant must then say
// its encoder ran on the GPU, and on the CPU without WebGPU; screenshots get a
// "-webgpu" suffix. scripts/test.sh runs both.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT, serve, launch, watch, firstLink, assertClean } from "./harness.mjs";

const SHOTS = join(ROOT, "build", "screenshots");
const WEBGPU = process.env.CAIRN_E2E_WEBGPU === "1";
const shot = (name) => join(SHOTS, `${name}${WEBGPU ? "-webgpu" : ""}.png`);
let server, browser;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  server = await serve();
  browser = await launch({ webgpu: WEBGPU });
  if (WEBGPU) {
    // Every demo page (no file extension: "/", "/questions/1", "/ask/", ...) asks for the GPU.
    await browser.context.route(/\/[^/.]*$/, async (route) => {
      const response = await route.fetch();
      const body = (await response.text()).replace('<script type="module" src="/cairn/cairn.js"', '<script type="module" src="/cairn/cairn.js" data-backend="gpu"');
      await route.fulfill({ response, body });
    });
  }
});
after(async () => {
  await browser?.close();
  server?.close();
});

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
  await page.screenshot({ path: shot("feed") });

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
  assertClean(log);
  await page.close();
});

test("the assistant answers a question with linked threads and highlighted passages", async () => {
  const page = await browser.context.newPage();
  const log = watch(page);
  await page.goto(new URL("ask/", server.url).href);
  const answered = page.evaluate(() => new Promise((ok) => document.addEventListener("cairn:answered", (e) => ok(e.detail), { once: true })));
  const box = page.locator("cairn-ask textarea");
  await box.fill("Can a classical Turing machine simulate a quantum computer?");
  await box.press("Enter");
  await firstLink(page, log, "cairn-ask li > a", 90_000);
  const { model } = await answered;
  assert.match(model, WEBGPU ? /^gpu: / : /^cpu: /, `the encoder ran on the ${WEBGPU ? "GPU" : "CPU"}: ${model}`);
  const hrefs = await page.locator("cairn-ask li > a").evaluateAll((as) => as.map((a) => a.href));
  assert.ok(hrefs.slice(0, 3).some((h) => h.endsWith("/questions/1")), `question 1 is among the first three: ${hrefs}`);
  assert.ok((await page.locator("cairn-ask blockquote").count()) > 0, "passages are quoted");
  assert.ok((await page.locator("cairn-ask mark").count()) > 0, "query words are highlighted");
  const status = await page.locator("cairn-ask [role=status]").textContent();
  assert.doesNotMatch(status, /words only/, `the model ran: ${status}`);
  await page.screenshot({ path: shot("ask") });
  assertClean(log);
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
  assertClean(log);
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
  assertClean(log);
  await page.close();
});

test("keyboard only: Tab reaches the related links, / opens the assistant, Enter asks", async () => {
  const page = await browser.context.newPage();
  const log = watch(page);
  await page.goto(new URL("questions/1", server.url).href);
  await firstLink(page, log);
  // Tab through the page until focus lands on a link inside the related widget.
  let inWidget = false;
  for (let i = 0; i < 200 && !inWidget; i++) {
    await page.keyboard.press("Tab");
    inWidget = await page.evaluate(() => document.activeElement?.localName === "cairn-related" && document.activeElement.shadowRoot.activeElement?.localName === "a");
  }
  assert.ok(inWidget, "a related link takes keyboard focus");
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement.shadowRoot.activeElement).outlineStyle);
  assert.notEqual(outline, "none", "the focused link shows a focus ring");

  await page.goto(new URL("ask/", server.url).href);
  await page.locator("cairn-ask textarea").waitFor();
  await page.keyboard.press("/");
  const focused = await page.evaluate(() => document.activeElement?.localName === "cairn-ask" && document.activeElement.shadowRoot.activeElement?.localName === "textarea");
  assert.ok(focused, "/ focuses the assistant's box");
  await page.keyboard.type("How do I simulate a quantum computer on a Turing machine?");
  await page.keyboard.press("Enter");
  await firstLink(page, log, "cairn-ask li > a", 90_000);
  assertClean(log);
  await page.close();
});

test("at 360 px wide the widgets fit the screen", async () => {
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 360, height: 740 });
  const log = watch(page);
  await page.goto(new URL("questions/1", server.url).href);
  await firstLink(page, log);
  const box = await page.locator("cairn-related").boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 360, `related topics within the viewport: ${JSON.stringify(box)}`);
  const overflow = await page.evaluate(() => {
    const s = document.querySelector("cairn-related").shadowRoot.querySelector("section");
    return s.scrollWidth - s.clientWidth;
  });
  assert.ok(overflow <= 0, `no horizontal overflow inside the widget (${overflow} px)`);
  await page.locator("cairn-related").scrollIntoViewIfNeeded();
  await page.screenshot({ path: shot("related-360px") });
  assertClean(log);
  await page.close();
});
