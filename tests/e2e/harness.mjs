// Shared set-up for the browser tests: serve build/demo with `cairn serve` on a
// free loopback port, and launch Debian's Chromium headless through playwright-core.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** Starts `cairn serve --port 0 --dir DIR`; resolves to {url, close}. */
export function serve(dir = join(ROOT, "build", "demo")) {
  const bin = join(ROOT, "target", "release", "cairn");
  const child = spawn(bin, ["serve", "--port", "0", "--dir", dir], { stdio: ["ignore", "pipe", "inherit"] });
  process.once("exit", () => child.kill()); // never leave a server behind, even when a test fails
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`cairn serve printed no URL: ${out}`)), 10_000);
    child.on("error", reject);
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const m = out.match(/http:\/\/127\.0\.0\.1:\d+\//);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[0], close: () => child.kill() });
      }
    });
  });
}

const COMMON_FLAGS = [
  "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update",
  "--disable-sync", "--no-sandbox", "--disable-gpu-sandbox",
];
/** Flags that give headless Chromium a WebGPU adapter (SwiftShader). */
export const WEBGPU_FLAGS = [
  "--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader", "--use-webgpu-adapter=swiftshader",
];

/** Launches Chromium with a fresh profile; `webgpu` adds the SwiftShader WebGPU flags. */
export async function launch({ webgpu = false } = {}) {
  const profile = mkdtempSync(join(tmpdir(), "cairn-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless=new", ...COMMON_FLAGS, ...(webgpu ? WEBGPU_FLAGS : [])],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Records console errors, page errors and every request's URL for a page. */
export function watch(page) {
  const log = { errors: [], requests: [], console: [] };
  page.on("console", (m) => {
    log.console.push(`${m.type()}: ${m.text()}`);
    if (m.type() === "error") log.errors.push(m.text());
  });
  page.on("pageerror", (e) => log.errors.push(String(e)));
  page.on("request", (r) => log.requests.push(r.url()));
  return log;
}

/** Waits for the first link of a widget; on failure, says what the page logged. */
export async function firstLink(page, log, selector = "cairn-related a", timeout = 10_000) {
  try {
    await page.locator(selector).first().waitFor({ state: "visible", timeout });
  } catch (err) {
    const state = await page.evaluate(() => document.querySelector("cairn-related")?.shadowRoot?.textContent ?? "(no shadow root)").catch(() => "?");
    throw new Error(`${err.message}\nwidget text: ${state}\nconsole:\n${log.console.join("\n")}\nrequests:\n${log.requests.join("\n")}`);
  }
}

/** Asserts what every page must keep: no console errors, no request off 127.0.0.1. */
export function assertClean(log) {
  assert.deepEqual(log.errors, [], "no console errors");
  const outside = log.requests.filter((u) => !u.startsWith("http://127.0.0.1:"));
  assert.deepEqual(outside, [], "no request leaves 127.0.0.1");
}
