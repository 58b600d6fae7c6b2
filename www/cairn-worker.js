// Cairn engine worker: loads the wasm engine and, shard by shard, the static
// index; answers the widgets' requests. All heavy work happens here, off the
// page's main thread. The visitor's reading history lives here too, in
// IndexedDB, and never leaves the browser.
//
// Messages in:  {id, type, ...args}   (see `handlers` below)
// Messages out: {id, ok: true, result} | {id, ok: false, error}
//               {event: "model", state, loaded, total}   while the model downloads
import init, { Engine } from "./pkg/cairn.js";
import * as history from "./cairn-history.js";

let state = null; // Promise<{engine, base}>
const inflight = new Map(); // shard name -> Promise, so concurrent queries fetch a shard once

async function fetchBytes(url, what) {
  const response = await fetch(url, { credentials: "omit" });
  if (!response.ok) throw new Error(`${what}: HTTP ${response.status} from ${url}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function open(indexUrl, modelUrl) {
  const base = new URL(indexUrl.endsWith("/") ? indexUrl : indexUrl + "/");
  // The manifest downloads while the wasm module compiles.
  const [, manifest] = await Promise.all([
    init({ module_or_path: new URL("./pkg/cairn_bg.wasm", import.meta.url) }),
    fetchBytes(new URL("manifest.json", base), "manifest.json"),
  ]);
  return { engine: new Engine(manifest), base, modelUrl: modelUrl ? new URL(modelUrl) : null };
}

/** Fetches one shard and hands it to the engine, which verifies it against the manifest. */
function fetchShard(s, name) {
  if (s.engine.has(name)) return Promise.resolve();
  let p = inflight.get(name);
  if (!p) {
    p = fetchBytes(new URL(name, s.base), name)
      .then((bytes) => s.engine.add(name, bytes))
      .finally(() => inflight.delete(name));
    inflight.set(name, p);
  }
  return p;
}

/** Runs an engine query to its answer, fetching the shards it asks for (catalog pages, then shards). */
async function resolve(s, query) {
  for (let round = 0; round < 16; round++) {
    const out = query(s.engine);
    if (!("need" in out)) return out.ready;
    await Promise.all(out.need.map((name) => fetchShard(s, name)));
  }
  throw new Error("index: a query kept asking for more files");
}

async function engine() {
  if (!state) throw new Error("engine not initialised");
  return state;
}

// The encoder (second, larger wasm module and the model pack) loads on first use only.
let encoder = null; // Promise<{encoder, backend} | {error}>

function reportModel(stateName, loaded = 0, total = 0) {
  self.postMessage({ event: "model", state: stateName, loaded, total });
}

/** The model pack's bytes: from the Cache API when a previous visit stored them, else downloaded with progress. */
async function modelBytes(url, name) {
  const cache = "caches" in self ? await caches.open("cairn-models").catch(() => null) : null;
  const hit = cache && (await cache.match(url).catch(() => null));
  if (hit) return new Uint8Array(await hit.arrayBuffer());
  const response = await fetch(url, { credentials: "omit" });
  if (!response.ok) throw new Error(`${name}: HTTP ${response.status} from ${url}`);
  const total = Number(response.headers.get("content-length")) || 0;
  const reader = response.body.getReader();
  const parts = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    loaded += value.length;
    reportModel("loading", loaded, total);
  }
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  if (cache) await cache.put(url, new Response(bytes, { headers: { "content-type": "application/octet-stream" } })).catch(() => {});
  return bytes;
}

async function loadEncoder(backend) {
  const s = await engine();
  const name = s.engine.modelFile;
  if (!name) return { error: "this index was built without a model pack" };
  try {
    reportModel("loading");
    // The site's data-model URL, else the pack beside the index; verified against the manifest either way.
    const url = s.modelUrl ?? new URL(name, s.base);
    const bytes = await modelBytes(url, name);
    try {
      s.engine.add(name, bytes); // verifies size and SHA-256 against the manifest
    } catch (err) {
      // Never keep a file that is not the manifest's pack (a cached one would fail on every visit).
      if ("caches" in self) await caches.open("cairn-models").then((c) => c.delete(url)).catch(() => {});
      throw new Error(`the model pack from ${url} is not the one this index was built with: ${err?.message ?? err}`);
    }
    // Imported here, not at the top: pages that never load the model never fetch it.
    const { computeBuild } = await import("./cairn-wasm-features.js");
    const build = computeBuild();
    if (!build) throw new Error("this browser's WebAssembly has no SIMD, which the encoder needs");
    const compute = await import(`./pkg/${build.name}.js`);
    await compute.default({ module_or_path: new URL(`./pkg/${build.name}_bg.wasm`, import.meta.url) });
    const enc = await compute.Encoder.load(bytes, backend);
    if (enc.dim !== s.engine.model.dim) throw new Error(`the model makes ${enc.dim}-wide vectors, the index ${s.engine.model.dim}`);
    reportModel("ready");
    return { encoder: enc, backend: enc.backend };
  } catch (err) {
    reportModel("failed");
    return { error: String(err?.message ?? err) };
  }
}

/** The embedding of `text`, or null (with the reason) when the model cannot load. */
async function embed(text, backend) {
  encoder ??= loadEncoder(backend);
  const e = await encoder;
  if (e.error) return { vector: null, why: e.error };
  return { vector: Array.from(await e.encoder.embed([text])), backend: e.backend };
}

const handlers = {
  init({ indexUrl, modelUrl }) {
    state ??= open(indexUrl, modelUrl);
    return state.then((s) => ({ topics: s.engine.topics }));
  },
  async related({ topic, k }) {
    const s = await engine();
    const read = await history.readIds().catch(() => []);
    return resolve(s, (e) => e.related(String(topic), k, read.filter((id) => id !== String(topic))));
  },
  async ask({ text, threads = 5, passages = 2, minCosine, backend = "auto" }) {
    const s = await engine();
    const query = Engine.prepareQuery(String(text));
    const { vector, why, backend: ran } = await embed(query.text, backend);
    const answer = await resolve(s, (e) => e.ask(String(text), vector ?? undefined, threads, passages, minCosine));
    return { ...answer, model: vector ? `${ran}` : `words only: ${why}` };
  },
  async feed({ k = 8 }) {
    const s = await engine();
    const DAY_MS = 86_400_000;
    const visits = (await history.all().catch(() => [])).map((v) => ({ id: v.id, last: v.last / DAY_MS, seconds: v.seconds, clicked: v.clicked }));
    return resolve(s, (e) => e.feed(visits, k, Date.now() / DAY_MS));
  },
  async viewed({ topic, seconds = 0, clicked = false }) {
    await history.record(String(topic), seconds, clicked);
    return true;
  },
  history() {
    return history.all();
  },
  clear() {
    return history.clear();
  },
};

self.onmessage = async ({ data }) => {
  const { id, type } = data ?? {};
  try {
    const handler = handlers[type];
    if (!handler) throw new Error(`unknown request ${type}`);
    self.postMessage({ id, ok: true, result: await handler(data) });
  } catch (err) {
    self.postMessage({ id, ok: false, error: String(err?.message ?? err) });
  }
};
