// The widget's budget on a demo topic page in headless Chromium (issue 8):
// bytes transferred before related topics appear (raw, and gzip-compressed as a
// CDN would serve them), time from navigation to the first related link, main-
// thread long tasks (the demo page runs no script of its own, so every long
// task is Cairn's), the sizes of the script, worker and wasm modules, and how
// long related topics and the feed take once their shards are in memory.
//
//   node scripts/bench-widget.mjs [--runs 5] [--topic 1]
//
// Needs `scripts/build.sh` (build/demo) and the test driver
// (`scripts/setup.sh --test`). Each run uses a fresh profile: a first visit.
// Prints a table, then one JSON line.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { ROOT, serve, launch } from "../tests/e2e/harness.mjs";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const RUNS = Number(arg("runs", 5));
const TOPIC = arg("topic", "1");
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const kb = (b) => `${(b / 1024).toFixed(1)} KB`;

const server = await serve();
const runs = [];
for (let r = 0; r < RUNS; r++) {
  const browser = await launch();
  const page = await browser.context.newPage();
  await page.addInitScript(() => {
    window.__longTasks = [];
    // When the related list is in the page (the widget dispatches cairn:shown right after appending it),
    // in ms since navigation start: Playwright's own waits poll, which would round this up.
    document.addEventListener("cairn:shown", () => (window.__shownAt ??= performance.now()));
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longTasks.push(e.duration);
    }).observe({ type: "longtask", buffered: true });
  });
  const bodies = [];
  page.context().on("response", async (res) => {
    try {
      const body = await res.body();
      bodies.push({ url: new URL(res.url()).pathname, raw: body.length, gz: gzipSync(body).length });
    } catch {} // redirects and aborted requests have no body
  });

  await page.goto(new URL(`questions/${TOPIC}`, server.url).href);
  await page.locator("cairn-related a").first().waitFor({ state: "visible", timeout: 30_000 });
  const visibleMs = Math.round(await page.evaluate(() => window.__shownAt));
  await page.waitForTimeout(200); // responses still being read
  const longTasks = await page.evaluate(() => window.__longTasks);
  const raw = bodies.reduce((s, b) => s + b.raw, 0);
  const gz = bodies.reduce((s, b) => s + b.gz, 0);
  runs.push({ visibleMs, raw, gz, requests: bodies.length, longTasks: longTasks.length, longestTaskMs: Math.max(0, ...longTasks), bodies });
  await browser.close();
}

// Speed once the shards are in memory (issue 6: within 20 ms): a visitor who has
// read a few topics, then related topics and the feed again and again through the
// page's JS API (worker round trip, history read from IndexedDB, ranking in wasm).
// Both rank from stored lists, with no vectors: the same code with or without WebGPU.
const warm = await (async () => {
  const browser = await launch();
  const page = await browser.context.newPage();
  await page.goto(new URL(`questions/${TOPIC}`, server.url).href);
  for (let i = 0; i < 5; i++) {
    const link = page.locator("cairn-related a").nth(i);
    await link.waitFor({ state: "visible", timeout: 30_000 });
    const href = await link.getAttribute("href");
    await link.click();
    await page.waitForURL(href);
  }
  await page.locator("cairn-related a").first().waitFor({ state: "visible", timeout: 30_000 });
  const out = await page.evaluate(async (topic) => {
    const cairn = await import("/cairn/cairn.js");
    const median = async (f, n = 30) => {
      await f(); // the shards it needs, fetched once
      const xs = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await f();
        xs.push(performance.now() - t);
      }
      return xs.sort((a, b) => a - b)[Math.floor(n / 2)];
    };
    return { related: await median(() => cairn.related(topic, { limit: 8 })), feed: await median(() => cairn.feed({ limit: 8 })) };
  }, TOPIC);
  await browser.close();
  return out;
})();
server.close();

const dir = join(ROOT, "build", "demo", "cairn");
const files = [
  ...readdirSync(dir).filter((f) => f.endsWith(".js")).map((f) => join(dir, f)),
  ...readdirSync(join(dir, "pkg")).map((f) => join(dir, "pkg", f)),
].map((path) => {
  const bytes = readFileSync(path);
  return { file: path.slice(dir.length + 1), raw: bytes.length, gzip: gzipSync(bytes).length };
});

console.log(`demo topic page questions/${TOPIC}, ${RUNS} first visits (fresh profile each), median:`);
const m = (k) => median(runs.map((x) => x[k]));
console.log(`  related topics visible after ${m("visibleMs")} ms`);
console.log(`  transferred before that: ${kb(m("raw"))} raw, ${kb(m("gz"))} gzipped, ${m("requests")} requests`);
console.log(`  main-thread long tasks (> 50 ms): ${m("longTasks")}, longest ${m("longestTaskMs").toFixed(0)} ms`);
console.log(`with the shards in memory, a visitor who read 6 topics (median of 30): related topics ${warm.related.toFixed(1)} ms, the feed ${warm.feed.toFixed(1)} ms`);
console.log("requests of the last visit (raw / gzip):");
for (const b of runs[runs.length - 1].bodies) console.log(`  ${b.url.slice(-40).padEnd(40)} ${kb(b.raw).padStart(10)} ${kb(b.gz).padStart(10)}`);
console.log("files (raw / gzip):");
for (const f of files) console.log(`  ${f.file.padEnd(28)} ${kb(f.raw).padStart(10)} ${kb(f.gzip).padStart(10)}`);
console.log(
  JSON.stringify({
    topic: TOPIC,
    runs: RUNS,
    visible_ms: m("visibleMs"),
    transferred_bytes: m("raw"),
    transferred_gzip_bytes: m("gz"),
    requests: m("requests"),
    long_tasks: m("longTasks"),
    longest_task_ms: m("longestTaskMs"),
    related_warm_ms: warm.related,
    feed_warm_ms: warm.feed,
    files,
  }),
);
