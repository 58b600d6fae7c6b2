// Cairn: related topics, a private "for you" feed and an assistant for forum
// pages, computed in the visitor's browser.
//
//   <script type="module" src="/cairn/cairn.js" data-index="/index/"></script>
//   <cairn-related topic="1234" limit="8"></cairn-related>   beside a topic (records the view)
//   <cairn-feed limit="8"></cairn-feed>                      "for you", from this browser's history
//   <cairn-ask></cairn-ask>                                  ask a question or paste an error
//   <cairn-duplicates for="title-input-id"></cairn-duplicates> "may already exist" while composing
//
// Script attributes: data-index (required), data-track="off" (record no views),
// data-lang ("en" or "zh"; default: the page's lang), data-new-topic (a URL with
// {title}: offered when the assistant finds no confident answer), data-theme
// ("light" or "dark": the host page's own theme; default: the visitor's
// preference; also a theme attribute per element), data-beacon (optional URL
// that receives aggregate counts only, see startBeacon; off by default),
// data-backend ("auto", the default: WebGPU on a hardware adapter, else the wasm
// CPU path; "gpu": any WebGPU adapter, software ones included; "cpu": never
// WebGPU), data-model (the model pack's URL, for a site that serves it from
// elsewhere, a CDN say; default: the pack beside the index; either way its
// SHA-256 must be the one the manifest names). Keyboard: "/"
// anywhere outside a text field focuses the assistant's box. Theming: CSS custom
// properties --cairn-fg, --cairn-bg, --cairn-accent, --cairn-muted,
// --cairn-border, --cairn-ok, --cairn-radius on the elements or any ancestor.
//
// The main thread only renders: the engine (wasm) runs in a module Web Worker.
// Forum text is only ever set as textContent, never parsed as HTML. Any failure
// hides the widget; nothing is thrown into the host page. Nothing is sent
// anywhere but requests for the index's own static files (and, only when the
// site owner configures data-beacon, aggregate counts). Events for the host
// page: cairn:shown {surface, count}, cairn:clicked {surface, position, id},
// cairn:answered {confident, count, model} (model: "gpu: <adapter>",
// "cpu: <why not the GPU>" or "words only: <why>"). No animations or transitions are used, so
// reduced-motion preferences have nothing to turn off.

const SCRIPT_URL = import.meta.url;

/** The data-* attributes of the <script> tag that loaded this module. */
function scriptConfig() {
  for (const s of document.querySelectorAll("script[src]")) {
    if (s.src === SCRIPT_URL) return s.dataset;
  }
  return {};
}

/** Where the encoder runs: the script's data-backend when it is one the engine knows, else "auto". */
function encoderBackend() {
  const b = scriptConfig().backend;
  return b === "gpu" || b === "cpu" ? b : "auto";
}

const STRINGS = {
  en: {
    related: "Related topics",
    finding: "Finding related topics…",
    relatedCount: (n) => `${n} related topics`,
    answers: (n) => `${n} answer${n === 1 ? "" : "s"}`,
    forYou: "For you",
    feedEmpty: "Read a few topics and suggestions for you appear here. Your reading history stays in this browser.",
    feedBecause: (t) => `Because you read “${t}”`,
    clear: "Clear my reading history",
    cleared: "Your reading history was cleared.",
    askLabel: "Ask a question or paste an error",
    askButton: "Ask",
    askPlaceholder: "e.g. How do I measure a qubit in the X basis?",
    searching: "Searching the forum…",
    model: (done, total) => (total ? `Loading the model once: ${Math.round(done / 1e6)} of ${Math.round(total / 1e6)} MB…` : "Loading the model once…"),
    wordsOnly: "Matched by words only (the model could not load).",
    noAnswer: "No thread answers this confidently. The closest:",
    nothing: "Nothing in the forum matches this yet.",
    error: "Read as an error message: matching on its key lines.",
    threads: (n) => `${n} matching thread${n === 1 ? "" : "s"}`,
    from: { accepted: "From the accepted answer", answer: "From an answer", question: "From the question" },
    mayExist: "This may already have been asked:",
    newTopic: "Ask the community instead",
    // One reason of a suggestion ({kind, ...} from the engine), as the engine words it in English.
    reason: {
      similar: () => "Similar question",
      people: ({ count }) => (count === 1 ? "1 person took part in both" : `${count} people took part in both`),
      also_tagged: ({ tag }) => `Also tagged ${tag}`,
      because_you_read: ({ title }) => `Because you read “${title}”`,
      people_from: ({ title }) => `People who took part in “${title}” also took part here`,
      tagged_like: ({ tag, count }) => `Tagged ${tag} like ${count} topics you read`,
      related_to: ({ title }) => `Related to “${title}”`,
      shares_tags: () => "Shares tags with what you read",
      popular: () => "Popular on this forum",
      unanswered: () => "No answer yet: you could help",
    },
  },
  zh: {
    related: "相关话题",
    finding: "正在查找相关话题…",
    relatedCount: (n) => `${n} 个相关话题`,
    answers: (n) => `${n} 个回答`,
    forYou: "为你推荐",
    feedEmpty: "阅读几个话题后，这里会出现为你推荐的内容。你的阅读记录只保存在此浏览器中。",
    feedBecause: (t) => `因为你读过“${t}”`,
    clear: "清除我的阅读记录",
    cleared: "你的阅读记录已清除。",
    askLabel: "提问或粘贴错误信息",
    askButton: "提问",
    askPlaceholder: "例如：如何在 X 基下测量量子比特？",
    searching: "正在搜索论坛…",
    model: (done, total) => (total ? `首次加载模型：${Math.round(done / 1e6)} / ${Math.round(total / 1e6)} MB…` : "首次加载模型…"),
    wordsOnly: "仅按词语匹配（模型无法加载）。",
    noAnswer: "没有帖子能确切回答这个问题。最接近的：",
    nothing: "论坛中暂无匹配内容。",
    error: "识别为错误信息：按其关键行匹配。",
    threads: (n) => `${n} 个匹配的帖子`,
    from: { accepted: "来自被采纳的回答", answer: "来自回答", question: "来自问题" },
    mayExist: "这个问题可能已经有人问过：",
    newTopic: "改为向社区提问",
    reason: {
      similar: () => "相似的问题",
      people: ({ count }) => `${count} 人都参与了这两个话题`,
      also_tagged: ({ tag }) => `同样标记为 ${tag}`,
      because_you_read: ({ title }) => `因为你读过“${title}”`,
      people_from: ({ title }) => `参与“${title}”的人也参与了这里`,
      tagged_like: ({ tag, count }) => `与你读过的 ${count} 个话题一样标记为 ${tag}`,
      related_to: ({ title }) => `与“${title}”相关`,
      shares_tags: () => "与你读过的内容有相同的标签",
      popular: () => "本论坛的热门话题",
      unanswered: () => "尚无回答：你可以来帮忙",
    },
  },
};

function strings(el) {
  const lang = (scriptConfig().lang || el.closest("[lang]")?.getAttribute("lang") || document.documentElement.lang || "en").toLowerCase();
  return lang.startsWith("zh") ? STRINGS.zh : STRINGS.en;
}

/** A promise-based channel to the engine worker; created on first use. */
class EngineClient {
  #worker = null;
  #next = 1;
  #pending = new Map();
  #ready = null;
  /** Listeners of the worker's model-loading events ({state, loaded, total}). */
  modelListeners = new Set();

  constructor(indexUrl, modelUrl = null) {
    this.indexUrl = indexUrl;
    this.modelUrl = modelUrl;
  }

  #call(type, payload = {}) {
    return new Promise((resolve, reject) => {
      const id = this.#next++;
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, type, ...payload });
    });
  }

  #start() {
    this.#worker = new Worker(new URL("./cairn-worker.js", SCRIPT_URL), { type: "module", name: "cairn" });
    this.#worker.onmessage = ({ data }) => {
      if (data?.event === "model") {
        for (const f of this.modelListeners) f(data);
        return;
      }
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
    return this.#call("init", { indexUrl: this.indexUrl, modelUrl: this.modelUrl });
  }

  ready() {
    this.#ready ??= this.#start();
    return this.#ready;
  }

  async request(type, payload) {
    await this.ready();
    return this.#call(type, payload);
  }
}

let client = null;
function engine() {
  if (!client) {
    const config = scriptConfig();
    if (!config.index) throw new Error('cairn.js: the script tag has no data-index="URL of the index directory"');
    const model = config.model ? new URL(config.model, document.baseURI).href : null;
    client = new EngineClient(new URL(config.index, document.baseURI).href, model);
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

// Which suggestion the visitor followed: remembered for the next page's view record.
const CLICK_KEY = "cairn:followed";
function rememberClick(id) {
  try {
    sessionStorage.setItem(CLICK_KEY, String(id));
  } catch {}
}
function takeClick(id) {
  try {
    const hit = sessionStorage.getItem(CLICK_KEY) === String(id);
    sessionStorage.removeItem(CLICK_KEY);
    return hit;
  } catch {
    return false;
  }
}

// Dark colours: with the visitor's dark preference, unless the host page says
// theme="light" (its own theme toggle wins), or whenever it says theme="dark".
const DARK = `--_accent: var(--cairn-accent, #4493f8); --_muted: var(--cairn-muted, #9198a1);
  --_line: var(--cairn-border, #3d444d); --_ok: var(--cairn-ok, #3fb950); --_mark: var(--cairn-mark, #bb800926);`;
const STYLE = `
:host { display: block; font: inherit; color: var(--cairn-fg, inherit);
  --_accent: var(--cairn-accent, #0969da); --_muted: var(--cairn-muted, #59636e);
  --_line: var(--cairn-border, #d1d9e0); --_bg: var(--cairn-bg, transparent); --_ok: var(--cairn-ok, #1a7f37);
  --_mark: var(--cairn-mark, #fff8c5); }
@media (prefers-color-scheme: dark) { :host(:not([theme="light"])) { ${DARK} } }
:host([theme="dark"]) { ${DARK} }
:host([hidden]) { display: none; }
section { background: var(--_bg); border: 1px solid var(--_line); border-radius: var(--cairn-radius, 8px); padding: .75rem 1rem; }
h2 { font-size: 1rem; margin: 0 0 .5rem; }
h3 { font-size: .9rem; margin: .75rem 0 .25rem; color: var(--_muted); font-weight: 600; }
ol { list-style: none; margin: 0; padding: 0; }
li { padding: .45rem 0; border-top: 1px solid var(--_line); }
li:first-child { border-top: 0; }
a { color: var(--_accent); text-decoration: none; }
a:hover { text-decoration: underline; }
a:focus-visible, button:focus-visible, textarea:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; border-radius: 2px; }
.meta { display: block; color: var(--_muted); font-size: .8em; margin-top: .15rem; }
.ok { color: var(--_ok); }
.status { color: var(--_muted); font-size: .9em; margin: 0; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
form { display: flex; gap: .5rem; align-items: flex-start; margin-bottom: .5rem; }
textarea { flex: 1; font: inherit; min-height: 2.6em; padding: .4rem .5rem; border: 1px solid var(--_line); border-radius: 6px; background: transparent; color: inherit; resize: vertical; }
button { font: inherit; padding: .4rem .9rem; border: 1px solid var(--_line); border-radius: 6px; background: transparent; color: var(--_accent); cursor: pointer; }
button.link { border: 0; padding: 0; font-size: .8em; color: var(--_muted); text-decoration: underline; margin-top: .5rem; }
blockquote { margin: .35rem 0 0; padding: .3rem .6rem; border-left: 3px solid var(--_line); font-size: .9em; white-space: pre-wrap; overflow-wrap: anywhere; }
mark { background: var(--_mark); color: inherit; border-radius: 2px; }
`;

let sheet = null;
function styleSheet() {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLE);
  }
  return sheet;
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

/**
 * A suggestion's reasons in the page's language: each part of `item.why` worded
 * by `t.reason`; the engine's English `item.reason` for a part this script does
 * not know (a newer engine), or when there is no `why`.
 */
function reasonText(item, t) {
  if (!Array.isArray(item.why)) return item.reason ?? "";
  const parts = item.why.map((part) => t.reason[part?.kind]?.(part));
  return parts.every((p) => typeof p === "string") ? parts.join(" · ") : item.reason ?? "";
}

/**
 * One suggestion: a link (text only), its answers and its reason. `null` when its URL is not http(s).
 * Following it dispatches `cairn:clicked` ({surface, position (0-based), id}) to the host page.
 */
function suggestionItem(item, t, surface, position) {
  const href = safeHref(item.url);
  if (!href) return null;
  const a = el("a", { href, text: item.title });
  a.addEventListener("click", () => {
    rememberClick(item.id);
    a.dispatchEvent(new CustomEvent("cairn:clicked", { bubbles: true, composed: true, detail: { surface, position, id: item.id } }));
  });
  const answers = el("span", { text: t.answers(item.answers ?? 0) });
  if (item.accepted) {
    answers.className = "ok";
    answers.textContent += " ✓";
  }
  const meta = el("span", { class: "meta" }, answers);
  const reason = reasonText(item, t);
  if (reason) meta.append(` · ${reason}`);
  return el("li", {}, a, meta);
}

/** `text` with the UTF-16 `[start, end)` ranges wrapped in <mark>, built from text nodes only. */
function highlighted(text, ranges = []) {
  const out = el("blockquote");
  let at = 0;
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0])) {
    if (start < at || end > text.length || end <= start) continue;
    out.append(text.slice(at, start), el("mark", { text: text.slice(start, end) }));
    at = end;
  }
  out.append(text.slice(at));
  return out;
}

/** Runs `f` when the main thread is idle (or soon, where requestIdleCallback is missing). */
function whenIdle(f) {
  if (typeof requestIdleCallback === "function") requestIdleCallback(f, { timeout: 2000 });
  else setTimeout(f, 200);
}

/** Shared behaviour: a shadow root with the style sheet; failures hide the element. */
class CairnElement extends HTMLElement {
  root = null;
  t = STRINGS.en;

  connectedCallback() {
    try {
      const theme = scriptConfig().theme;
      if (!this.hasAttribute("theme") && (theme === "light" || theme === "dark")) this.setAttribute("theme", theme);
      this.root ??= this.attachShadow({ mode: "open" });
      this.root.adoptedStyleSheets = [styleSheet()];
      this.t = strings(this);
      Promise.resolve(this.render()).catch((err) => this.fail(err));
    } catch (err) {
      this.fail(err);
    }
  }

  fail(err) {
    this.hidden = true; // degrade: the page simply has no widget
    console.warn(`cairn: ${this.localName} unavailable:`, err?.message ?? err);
  }

  section(label) {
    const s = el("section", { "aria-label": label }, el("h2", { text: label }));
    const status = el("p", { class: "status", role: "status" });
    s.append(status);
    this.root.replaceChildren(s);
    return { section: s, status };
  }
}

/** Records this page's topic as viewed, then the time spent when the page is left. */
function trackView(topic) {
  if (scriptConfig().track === "off") return;
  const clicked = takeClick(topic);
  const started = performance.now();
  let sent = false;
  const e = engine();
  e.request("viewed", { topic, clicked }).catch(() => {});
  const leave = (force) => {
    if (sent || (!force && document.visibilityState !== "hidden")) return;
    sent = true;
    const seconds = Math.min(3600, (performance.now() - started) / 1000);
    e.request("viewed", { topic, seconds }).catch(() => {});
  };
  document.addEventListener("visibilitychange", () => leave(false));
  addEventListener("pagehide", () => leave(true));
}

/** <cairn-related topic="ID" limit="8">: topics related to the one on this page. */
class CairnRelated extends CairnElement {
  async render() {
    const t = this.t;
    const topic = this.getAttribute("topic");
    const limit = Math.max(1, Math.min(50, parseInt(this.getAttribute("limit") ?? "8", 10) || 8));
    const { section, status } = this.section(t.related);
    status.textContent = t.finding;
    if (!topic) throw new Error('<cairn-related> needs a topic="ID" attribute');
    trackView(topic);
    const { related } = await engine().request("related", { topic, k: limit });
    const list = el("ol");
    for (const item of related) {
      const li = suggestionItem(item, t, "related", list.childElementCount);
      if (li) list.append(li);
    }
    if (!list.childElementCount) {
      this.hidden = true;
      return;
    }
    // Still announced to screen readers, no longer shown: the list speaks for itself.
    status.textContent = t.relatedCount(list.childElementCount);
    status.className = "status visually-hidden";
    section.append(list);
    this.dispatchEvent(new CustomEvent("cairn:shown", { bubbles: true, composed: true, detail: { surface: "related", count: list.childElementCount } }));
  }
}

/** <cairn-feed limit="8">: suggestions from this browser's reading history, grouped by interest. */
class CairnFeed extends CairnElement {
  async render() {
    const t = this.t;
    const limit = Math.max(1, Math.min(50, parseInt(this.getAttribute("limit") ?? "8", 10) || 8));
    const { section, status } = this.section(t.forYou);
    const feed = await engine().request("feed", { k: limit });
    const clear = el("button", { class: "link", type: "button", text: t.clear });
    clear.addEventListener("click", async () => {
      try {
        await engine().request("clear");
        await this.render();
        this.root.querySelector(".status").textContent = t.cleared;
      } catch (err) {
        this.fail(err);
      }
    });
    if (!feed.items.length) {
      status.textContent = t.feedEmpty;
      section.append(clear);
      return;
    }
    status.className = "status visually-hidden";
    status.textContent = t.relatedCount(feed.items.length);
    const groups = new Map();
    for (const item of feed.items) {
      const key = item.interest ?? 0;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(item);
    }
    let position = 0;
    for (const [interest, items] of groups) {
      const title = feed.interests[interest]?.title;
      if (title) section.append(el("h3", { text: t.feedBecause(title) }));
      const list = el("ol");
      for (const item of items) {
        // The group's heading already says "because you read X": do not repeat it on every item.
        const why = (item.why ?? []).filter((part) => !(part.kind === "because_you_read" && part.title === title));
        const li = suggestionItem({ ...item, why }, t, "feed", position);
        if (!li) continue;
        list.append(li);
        position++;
      }
      section.append(list);
    }
    section.append(clear);
    this.dispatchEvent(new CustomEvent("cairn:shown", { bubbles: true, composed: true, detail: { surface: "feed", count: position } }));
  }
}

/** Renders an assistant answer's threads (and their passages) into a list. */
function answerList(answer, t, surface) {
  const list = el("ol");
  for (const th of answer.threads) {
    // A thread shows as a suggestion does (link, answers), then its passages.
    const li = suggestionItem({ ...th, reason: "", why: [] }, t, surface, list.childElementCount);
    if (!li) continue;
    for (const p of th.passages ?? []) {
      const q = highlighted(p.text, p.highlights);
      const from = safeHref(p.url);
      const label = t.from[p.kind] ?? t.from.answer;
      li.append(from ? el("a", { href: from, class: "meta", text: label }) : el("span", { class: "meta", text: label }), q);
    }
    list.append(li);
  }
  return list;
}

/** <cairn-ask>: ask a question or paste an error; threads and the passages that answer, with links. */
class CairnAsk extends CairnElement {
  async render() {
    const t = this.t;
    const { section, status } = this.section(t.askLabel);
    const id = `cairn-ask-${Math.random().toString(36).slice(2)}`;
    const input = el("textarea", { id, rows: "2", placeholder: t.askPlaceholder, "aria-label": t.askLabel });
    const button = el("button", { type: "submit", text: t.askButton });
    const form = el("form", { role: "search" }, input, button);
    const results = el("div", { "aria-live": "polite" });
    section.insertBefore(form, status);
    section.append(results);
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    const e = engine();
    // Start the engine (index manifest, lean wasm; not the model) once the page is idle: a
    // missing index then hides the box before anyone types into it, and the first question
    // does not wait for the engine to start.
    whenIdle(() => e.ready().catch((err) => this.fail(err)));
    const onModel = ({ state, loaded, total }) => {
      if (state === "loading") status.textContent = t.model(loaded, total);
    };
    // "/" outside a text field jumps to the box, as on many forums and docs sites.
    document.addEventListener("keydown", (ev) => {
      const target = ev.composedPath()[0];
      const typing = target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
      if (ev.key === "/" && !typing && !ev.ctrlKey && !ev.metaKey && !ev.altKey && this.isConnected && !this.hidden) {
        ev.preventDefault();
        input.focus();
      }
    });
    let asking = 0;
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      const mine = ++asking;
      status.textContent = t.searching;
      e.modelListeners.add(onModel);
      try {
        const answer = await e.request("ask", { text, threads: 5, passages: 2, backend: encoderBackend() });
        if (mine !== asking) return;
        const notes = [];
        if (answer.mode === "error") notes.push(t.error);
        if (answer.model?.startsWith("words only")) notes.push(t.wordsOnly);
        if (!answer.threads.length) notes.push(t.nothing);
        else if (!answer.confident) notes.push(t.noAnswer);
        else notes.push(t.threads(answer.threads.length));
        status.textContent = notes.join(" ");
        const list = answerList(answer, t, "ask");
        results.replaceChildren(list);
        if (list.childElementCount) this.dispatchEvent(new CustomEvent("cairn:shown", { bubbles: true, composed: true, detail: { surface: "ask", count: list.childElementCount } }));
        const template = scriptConfig().newTopic;
        const offer = !answer.confident && template && safeHref(template.replace("{title}", encodeURIComponent(text.slice(0, 200))));
        if (offer) results.append(el("p", {}, el("a", { href: offer, text: t.newTopic })));
        this.dispatchEvent(new CustomEvent("cairn:answered", { bubbles: true, composed: true, detail: { confident: answer.confident, count: answer.threads.length, model: answer.model } }));
      } catch (err) {
        status.textContent = "";
        this.fail(err);
      } finally {
        e.modelListeners.delete(onModel);
      }
    });
  }
}

/** <cairn-duplicates for="INPUT-ID">: while a new topic's title is typed, threads that may already answer it. */
class CairnDuplicates extends CairnElement {
  async render() {
    const t = this.t;
    const target = document.getElementById(this.getAttribute("for") ?? "");
    if (!target) throw new Error('<cairn-duplicates> needs for="ID of the title input"');
    this.hidden = true;
    const { section, status } = this.section(t.mayExist);
    status.className = "status visually-hidden";
    const results = el("div");
    section.append(results);
    section.setAttribute("aria-live", "polite");
    let timer = 0;
    let asked = "";
    const check = async () => {
      const text = target.value.trim();
      if (text.split(/\s+/).length < 3 || text === asked) {
        if (text.split(/\s+/).length < 3) this.hidden = true;
        return;
      }
      asked = text;
      try {
        // A higher bar than the assistant's: only warn about likely duplicates.
        const answer = await engine().request("ask", { text, threads: 3, passages: 0, minCosine: 0.6, backend: encoderBackend() });
        if (asked !== text) return;
        const likely = { ...answer, threads: answer.confident ? answer.threads : [] };
        const list = answerList(likely, t, "duplicates");
        this.hidden = !list.childElementCount;
        status.textContent = t.threads(list.childElementCount);
        results.replaceChildren(list);
        if (list.childElementCount) this.dispatchEvent(new CustomEvent("cairn:shown", { bubbles: true, composed: true, detail: { surface: "duplicates", count: list.childElementCount } }));
      } catch (err) {
        this.fail(err);
      }
    };
    target.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(check, 600);
    });
  }
}

/**
 * The optional aggregate beacon (data-beacon="URL", off by default): per
 * surface, how many suggestions were shown and followed at each position,
 * sent once when the page is hidden. Never ids, titles, questions or history.
 */
function startBeacon() {
  const url = safeHref(scriptConfig().beacon ?? "");
  if (!url) return;
  let counts = {};
  const at = (surface, kind, position) => {
    const c = (counts[surface] ??= { shown: [], clicked: [] })[kind];
    while (c.length <= position) c.push(0);
    c[position]++;
  };
  document.addEventListener("cairn:shown", (e) => {
    for (let i = 0; i < Math.min(50, e.detail?.count ?? 0); i++) at(String(e.detail.surface), "shown", i);
  });
  document.addEventListener("cairn:clicked", (e) => {
    if (Number.isInteger(e.detail?.position) && e.detail.position < 50) at(String(e.detail.surface), "clicked", e.detail.position);
  });
  const send = (leaving) => {
    if ((!leaving && document.visibilityState !== "hidden") || !Object.keys(counts).length) return;
    const body = JSON.stringify({ v: 1, counts });
    counts = {};
    try {
      navigator.sendBeacon(url, new Blob([body], { type: "text/plain" })); // a simple request: no preflight
    } catch {}
  };
  document.addEventListener("visibilitychange", () => send(false));
  addEventListener("pagehide", () => send(true));
}

try {
  startBeacon();
} catch (err) {
  console.warn("cairn: beacon off:", err?.message ?? err);
}

try {
  for (const [name, cls] of [["cairn-related", CairnRelated], ["cairn-feed", CairnFeed], ["cairn-ask", CairnAsk], ["cairn-duplicates", CairnDuplicates]]) {
    if (!customElements.get(name)) customElements.define(name, cls);
  }
} catch (err) {
  console.warn("cairn: could not register widgets:", err?.message ?? err);
}

// The JS API, for site owners who render suggestions themselves:
//   import { related, feed, ask, clearHistory } from "/cairn/cairn.js";
// Each returns a promise (rejected, never thrown, on failure) of what the
// matching widget renders; the work runs in the same worker as the widgets'.

/** Related topics for topic `topic`: `{topic, related: [{id, title, url, score, tags, answers, accepted, reason}]}`. */
export function related(topic, { limit = 8 } = {}) {
  return Promise.resolve().then(() => engine().request("related", { topic: String(topic), k: limit }));
}

/** The "for you" feed from this browser's history: `{items: [{id, title, url, reason, unanswered, interest, ...}], interests}`. */
export function feed({ limit = 8 } = {}) {
  return Promise.resolve().then(() => engine().request("feed", { k: limit }));
}

/** The assistant's answer to `text`: `{mode, confident, threads: [{title, url, passages: [{text, url, highlights}]}], model}`. */
export function ask(text, { threads = 5, passages = 2 } = {}) {
  return Promise.resolve().then(() => engine().request("ask", { text: String(text), threads, passages, backend: encoderBackend() }));
}

/** Forgets this browser's reading history (what the feed's "clear" control does). */
export function clearHistory() {
  return Promise.resolve().then(() => engine().request("clear"));
}
