// The visitor's reading history, kept in IndexedDB in their own browser and
// nowhere else: which topics they viewed, when, for how long, and whether they
// came from a suggestion. Used by the worker to demote what was read and to
// build the "for you" feed; cleared by the widget's "clear my data" control.
//
// One object store, "views", keyed by topic id:
//   {id, first, last, visits, seconds, clicked}   (times in ms since the epoch)

const DB = "cairn";
const STORE = "views";
/** Topics kept at most; the least recently viewed go first. */
export const MAX_TOPICS = 500;

let db = null;

function request(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function open() {
  db ??= new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE, { keyPath: "id" });
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.onblocked = () => reject(new Error("IndexedDB is blocked"));
  });
  return db;
}

async function store(mode) {
  return (await open()).transaction(STORE, mode).objectStore(STORE);
}

/** Records a view of `id` (`seconds` spent, `clicked` if it came from a Cairn suggestion). */
export async function record(id, seconds = 0, clicked = false) {
  const s = await store("readwrite");
  const now = Date.now();
  const old = await request(s.get(id));
  const entry = old
    ? { ...old, last: now, visits: old.visits + (seconds > 0 ? 0 : 1), seconds: old.seconds + Math.max(0, seconds), clicked: old.clicked || clicked }
    : { id, first: now, last: now, visits: 1, seconds: Math.max(0, seconds), clicked };
  await request(s.put(entry));
  const count = await request((await store("readonly")).count());
  if (count > MAX_TOPICS) {
    const every = await all();
    const drop = every.sort((a, b) => a.last - b.last).slice(0, count - MAX_TOPICS);
    const w = await store("readwrite");
    await Promise.all(drop.map((e) => request(w.delete(e.id))));
  }
}

/** Every entry, most recent first. */
export async function all() {
  const entries = await request((await store("readonly")).getAll());
  return entries.sort((a, b) => b.last - a.last);
}

/** Ids of the topics viewed. */
export async function readIds() {
  return (await all()).map((e) => e.id);
}

/** Forgets everything. */
export async function clear() {
  await request((await store("readwrite")).clear());
  return true;
}
