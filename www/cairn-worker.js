// Cairn engine worker: loads the wasm engine and the static index, answers the
// widget's requests. All heavy work happens here, off the page's main thread.
//
// Messages in:  {id, type: "init", indexUrl} | {id, type: "related", topic, k}
// Messages out: {id, ok: true, result} | {id, ok: false, error}
import init, { Engine } from "./pkg/cairn.js";

let engine = null; // Promise<Engine>

async function fetchBytes(url, what) {
  const response = await fetch(url, { credentials: "omit" });
  if (!response.ok) throw new Error(`${what}: HTTP ${response.status} from ${url}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function load(indexUrl) {
  await init({ module_or_path: new URL("./pkg/cairn_bg.wasm", import.meta.url) });
  const base = indexUrl.endsWith("/") ? indexUrl : indexUrl + "/";
  const manifest = await fetchBytes(new URL("manifest.json", base), "manifest.json");
  const names = Engine.filesToFetch(manifest);
  const files = {};
  await Promise.all(names.map(async (name) => { files[name] = await fetchBytes(new URL(name, base), name); }));
  return Engine.load(manifest, files); // verifies every file against the manifest
}

const handlers = {
  init({ indexUrl }) {
    engine ??= load(indexUrl);
    return engine.then((e) => ({ topics: e.topics }));
  },
  async related({ topic, k }) {
    if (!engine) throw new Error("engine not initialised");
    return (await engine).related(String(topic), k);
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
