// Every surface (related topics, the "for you" feed, the assistant, the
// composer's duplicate warning) in the visitor's dark scheme and on a Chinese
// page, each with a screenshot in build/screenshots/<surface>-<dark|zh>.png.
// Dark: the widget's own colours switch (its accent is the dark one). Chinese:
// the widget's strings are the zh ones, chosen from the page's <html lang>.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT, serve, launch, watch, firstLink, assertClean } from "./harness.mjs";

const SHOTS = join(ROOT, "build", "screenshots");
const DARK_ACCENT = "rgb(68, 147, 248)"; // #4493f8, cairn.js's dark --_accent
/** How long the assistant and the composer may take: the first use loads the model. */
const MODEL_WAIT_MS = 90_000;
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

const at = (path) => new URL(path, server.url).href;

/**
 * The surfaces: where each lives in the demo, how to make it show results, the
 * selector of its first result, and a string only its Chinese version shows.
 */
const SURFACES = {
  related: {
    path: "questions/1",
    show: async () => {},
    result: "cairn-related a",
    zh: /相关话题/,
  },
  feed: {
    path: "",
    // Read two topics first (question 1, then its first related topic: the related
    // widget records each view), so the feed has suggestions.
    show: async (page, log) => {
      await page.goto(at("questions/1"));
      await firstLink(page, log);
      await page.goto(await page.locator("cairn-related a").first().getAttribute("href"));
      await firstLink(page, log);
      await page.goto(server.url);
    },
    result: "cairn-feed a",
    zh: /为你推荐/,
  },
  ask: {
    path: "ask/",
    show: async (page) => {
      const box = page.locator("cairn-ask textarea");
      await box.fill("Can a classical Turing machine simulate a quantum computer?");
      await box.press("Enter");
    },
    result: "cairn-ask li > a",
    zh: /提问或粘贴错误信息|个匹配的帖子/,
  },
  composer: {
    path: "new/",
    show: async (page) => {
      const html = await (await page.request.get(at("questions/1"))).text();
      const title = html.match(/<h1 class="question-title">([^<]+)<\/h1>/)[1];
      await page.locator("#new-title").pressSequentially(title, { delay: 5 });
    },
    result: "cairn-duplicates a",
    zh: /这个问题可能已经有人问过/,
  },
};

/** Opens `surface` in a fresh page set up by `prepare`; returns {page, log} once it shows results. */
async function open(name, prepare) {
  const s = SURFACES[name];
  const page = await browser.context.newPage();
  const log = watch(page);
  await prepare(page);
  await page.goto(at(s.path));
  await s.show(page, log);
  await firstLink(page, log, s.result, MODEL_WAIT_MS);
  return { page, log, host: s.result.split(" ")[0] };
}

for (const name of Object.keys(SURFACES)) {
  test(`${name}: dark colours under a dark preference`, { timeout: 180_000 }, async () => {
    const { page, log, host } = await open(name, (p) => p.emulateMedia({ colorScheme: "dark" }));
    const accent = await page.evaluate((h) => getComputedStyle(document.querySelector(h).shadowRoot.querySelector("a")).color, host);
    assert.equal(accent, DARK_ACCENT, `${name} uses its dark colours`);
    await page.locator(host).scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SHOTS, `${name}-dark.png`) });
    assertClean(log);
    await page.close();
  });

  test(`${name}: Chinese strings on a zh-CN page`, { timeout: 180_000 }, async () => {
    // The demo pages say lang="en": serve them as a Chinese forum would, with lang="zh-CN".
    const { page, log, host } = await open(name, (p) =>
      p.route(/\/(questions\/\d+|ask\/|new\/)?$/, async (route) => {
        const response = await route.fetch();
        const body = (await response.text()).replace(/<html lang="[^"]*"/, '<html lang="zh-CN"');
        await route.fulfill({ response, body });
      }),
    );
    const text = await page.evaluate((h) => document.querySelector(h).shadowRoot.textContent, host);
    assert.match(text, SURFACES[name].zh, `${name} speaks Chinese: ${text.slice(0, 200)}`);
    // The engine's reasons too ("Similar question", "Because you read ..."), worded by the widget.
    assert.doesNotMatch(text, /Similar question|took part|Also tagged|Because you read|Related to|Tagged .* like|Popular on|No answer yet/, `${name}'s reasons are Chinese: ${text.slice(0, 300)}`);
    await page.locator(host).scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SHOTS, `${name}-zh.png`) });
    assertClean(log);
    await page.close();
  });
}
