// Cairn: related topics for forum pages, computed in the visitor's browser.
//
//   <script type="module" src="/cairn/cairn.js" data-index="/index/"></script>
//   <cairn-related topic="1234" limit="8"></cairn-related>
//
// The main thread only renders: the engine (wasm) runs in a module Web Worker.
// Forum text is only ever set as textContent, never parsed as HTML. Any failure
// hides the widget; nothing is thrown into the host page.

const SCRIPT_URL = import.meta.url;

/** The data-* attributes of the <script> tag that loaded this module. */
function scriptConfig() {
  for (const s of document.querySelectorAll("script[src]")) {
    if (s.src === SCRIPT_URL) return s.dataset;
  }
  return {};
}

/** A promise-based channel to the engine worker; created on first use. */
class EngineClient {
  #worker = null;
  #next = 1;
  #pending = new Map();
  #ready = null;

  constructor(indexUrl) {
    this.indexUrl = indexUrl;
  }

  #call(type, payload) {
    return new Promise((resolve, reject) => {
      const id = this.#next++;
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, type, ...payload });
    });
  }

  #start() {
    this.#worker = new Worker(new URL("./cairn-worker.js", SCRIPT_URL), { type: "module", name: "cairn" });
    this.#worker.onmessage = ({ data }) => {
      const p = this.#pending.get(data.id);
      if (!p) return;
      this.#pending.delete(data.id);
      data.ok ? p.resolve(data.result) : p.reject(new Error(data.error));
    };
    this.#worker.onerror = (event) => {
      event.preventDefault();
      const err = new Error(`engine worker failed: ${event.message ?? "unknown error"}`);
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
    return this.#call("init", { indexUrl: this.indexUrl });
  }

  ready() {
    this.#ready ??= this.#start();
    return this.#ready;
  }

  async related(topic, k) {
    await this.ready();
    return this.#call("related", { topic, k });
  }
}

let client = null;
function engine() {
  if (!client) {
    const config = scriptConfig();
    if (!config.index) throw new Error('cairn.js: the script tag has no data-index="URL of the index directory"');
    client = new EngineClient(new URL(config.index, document.baseURI).href);
  }
  return client;
}

/** Only http(s) links, resolved against the page; anything else becomes null. */
function safeHref(url) {
  try {
    const u = new URL(url, document.baseURI);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}

const STYLE = `
:host { display: block; font: inherit; color: var(--cairn-fg, inherit);
  --_accent: var(--cairn-accent, #0969da); --_muted: var(--cairn-muted, #59636e);
  --_line: var(--cairn-border, #d1d9e0); --_bg: var(--cairn-bg, transparent); --_ok: var(--cairn-ok, #1a7f37); }
@media (prefers-color-scheme: dark) {
  :host { --_accent: var(--cairn-accent, #4493f8); --_muted: var(--cairn-muted, #9198a1);
    --_line: var(--cairn-border, #3d444d); --_ok: var(--cairn-ok, #3fb950); }
}
:host([hidden]) { display: none; }
section { background: var(--_bg); border: 1px solid var(--_line); border-radius: var(--cairn-radius, 8px); padding: .75rem 1rem; }
h2 { font-size: 1rem; margin: 0 0 .5rem; }
ol { list-style: none; margin: 0; padding: 0; }
li { padding: .45rem 0; border-top: 1px solid var(--_line); }
li:first-child { border-top: 0; }
a { color: var(--_accent); text-decoration: none; }
a:hover { text-decoration: underline; }
a:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; border-radius: 2px; }
.meta { display: block; color: var(--_muted); font-size: .8em; margin-top: .15rem; }
.ok { color: var(--_ok); }
.status { color: var(--_muted); font-size: .9em; margin: 0; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
`;

let sheet = null;
function styleSheet() {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLE);
  }
  return sheet;
}

/** <cairn-related topic="ID" limit="8">: topics related to the one on this page. */
class CairnRelated extends HTMLElement {
  #root = null;

  connectedCallback() {
    try {
      this.#root ??= this.attachShadow({ mode: "open" });
      this.#root.adoptedStyleSheets = [styleSheet()];
      this.#render();
    } catch (err) {
      this.#fail(err);
    }
  }

  async #render() {
    const topic = this.getAttribute("topic");
    const limit = Math.max(1, Math.min(50, parseInt(this.getAttribute("limit") ?? "8", 10) || 8));
    const section = document.createElement("section");
    section.setAttribute("aria-label", "Related topics");
    const heading = document.createElement("h2");
    heading.textContent = "Related topics";
    const status = document.createElement("p");
    status.className = "status";
    status.setAttribute("role", "status");
    status.textContent = "Finding related topics…";
    section.append(heading, status);
    this.#root.replaceChildren(section);
    try {
      if (!topic) throw new Error('<cairn-related> needs a topic="ID" attribute');
      const { related } = await engine().related(topic, limit);
      const list = document.createElement("ol");
      for (const item of related) {
        const href = safeHref(item.url);
        if (!href) continue;
        const li = document.createElement("li");
        const a = document.createElement("a");
        a.href = href;
        a.textContent = item.title;
        const meta = document.createElement("span");
        meta.className = "meta";
        const answers = document.createElement("span");
        answers.textContent = `${item.answers} answer${item.answers === 1 ? "" : "s"}`;
        if (item.accepted) {
          answers.className = "ok";
          answers.textContent += " ✓";
        }
        meta.append(answers);
        if (item.reason) meta.append(` · ${item.reason}`);
        li.append(a, meta);
        list.append(li);
      }
      if (!list.childElementCount) {
        this.hidden = true;
        return;
      }
      // Still announced to screen readers, no longer shown: the list speaks for itself.
      status.textContent = `${list.childElementCount} related topics`;
      status.className = "status visually-hidden";
      section.append(list);
      this.dispatchEvent(new CustomEvent("cairn:shown", { bubbles: true, composed: true, detail: { surface: "related", count: list.childElementCount } }));
    } catch (err) {
      this.#fail(err);
    }
  }

  #fail(err) {
    this.hidden = true; // degrade: the page simply has no widget
    console.warn("cairn: related topics unavailable:", err?.message ?? err);
  }
}

try {
  if (!customElements.get("cairn-related")) customElements.define("cairn-related", CairnRelated);
} catch (err) {
  console.warn("cairn: could not register widgets:", err?.message ?? err);
}
