//! Synthetic forums of any size, and the scale benchmark that indexes them
//! (`cairn bench index --synthetic N`).
//!
//! A real model cannot embed a million topics on a laptop in a benchmark's
//! time, and real dumps that size are not in the repository; what the scale
//! benchmark measures (build time of the index itself, bytes on disk, bytes a
//! browser fetches, recall of the clustered search) depends on the shape of the
//! data, not on the model. So topics are generated with the structure of a
//! forum: themes (a few hundred topics each) with their own vocabulary, a
//! shared vocabulary of common words drawn by a Zipf law, titles, question
//! bodies and answers, and people who stay mostly within a theme. Texts are
//! embedded by [`WordEncoder`], a bag-of-words encoder whose word vectors lie
//! near their theme's direction, so meaning and words agree as with a real
//! encoder. Everything is seeded: the same `N` gives the same forum.

use crate::assist::{self, diagnose, AskOptions};
use crate::error::{Error, Result};
use crate::index::build::{self, BuildOptions};
use crate::index::format::{LeftOut, ModelInfo, TopicRef, MANIFEST_FILE};
use crate::index::prepare;
use crate::index::search;
use crate::index::store::{dir::DirStore, Needs, Store};
use crate::ingest::{Answer, Author, Topic};
use crate::rank::related;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Instant;

/// Embedding width of the synthetic encoder (that of all-MiniLM-L6-v2).
pub const DIM: usize = 384;
/// Topics per theme, on average.
pub const TOPICS_PER_THEME: usize = 200;
/// Words of each theme's own vocabulary.
pub const THEME_WORDS: usize = 80;
/// Common words shared by every theme.
pub const COMMON_WORDS: usize = 3000;

/// xorshift64*: reproducible pseudo-random numbers.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (any value).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let (u, v) = (self.unit().max(1e-12), self.unit());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
    /// Zipf-like rank in 0..n (exponent about 1), small ranks most often.
    pub fn zipf(&mut self, n: usize) -> usize {
        ((n as f64 + 1.0).powf(self.unit()) - 1.0) as usize % n.max(1)
    }
}

const SYLLABLES: [&str; 40] = [
    "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ze", "po", "da", "fe", "gu", "hi", "jo", "ku", "la", "me", "ni", "or", "pe", "qui", "ra",
    "si", "tu", "ul", "va", "we", "xo", "yu", "bra", "cle", "dro", "fli", "gra", "ple", "sto", "tri", "vor", "zan",
];

/// A pronounceable word for a number (distinct numbers, distinct words).
fn word(mut i: usize) -> String {
    let mut w = String::new();
    loop {
        w.push_str(SYLLABLES[i % SYLLABLES.len()]);
        i /= SYLLABLES.len();
        if i == 0 {
            break;
        }
        i -= 1;
    }
    w
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// A bag-of-words encoder: a text's vector is the normalised mean of its known
/// words' vectors. Theme words lie near their theme's direction, common words
/// anywhere, so texts of one theme are similar.
pub struct WordEncoder {
    words: std::collections::HashMap<String, usize>,
    /// (words, DIM) row-major, unit rows.
    vectors: Vec<f32>,
}

impl WordEncoder {
    fn new(themes: usize, rng: &mut Rng) -> Self {
        let count = COMMON_WORDS + themes * THEME_WORDS;
        let mut vectors = vec![0f32; count * DIM];
        let mut centre = vec![0f32; DIM];
        for (w, row) in vectors.chunks_exact_mut(DIM).enumerate() {
            let theme_word = w >= COMMON_WORDS;
            if theme_word && (w - COMMON_WORDS) % THEME_WORDS == 0 {
                centre.iter_mut().for_each(|x| *x = rng.normal());
                normalise(&mut centre);
            }
            row.iter_mut().for_each(|x| *x = rng.normal());
            normalise(row);
            if theme_word {
                // cos(word, theme) about 0.8: words of a theme are related, not equal.
                row.iter_mut().zip(&centre).for_each(|(x, c)| *x = 0.75 * *x + 1.33 * c);
                normalise(row);
            }
        }
        let words = (0..count).map(|i| (word(i), i)).collect();
        WordEncoder { words, vectors }
    }

    /// The unit vector of `text` (DIM,); unknown words are ignored, a text of none gives a fixed vector.
    pub fn embed(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; DIM];
        let mut any = false;
        for w in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            if let Some(&i) = self.words.get(&w.to_lowercase()) {
                any = true;
                let weight = if i < COMMON_WORDS { 0.3 } else { 1.0 };
                v.iter_mut().zip(&self.vectors[i * DIM..(i + 1) * DIM]).for_each(|(a, b)| *a += weight * b);
            }
        }
        if !any {
            v[0] = 1.0;
        }
        normalise(&mut v);
        v
    }
}

/// A synthetic forum: its topics and the encoder that embeds their texts.
pub struct Forum {
    /// Topics in id order.
    pub topics: Vec<Topic>,
    /// The theme of each topic.
    pub themes: Vec<usize>,
    /// The encoder for its texts (and for queries about them).
    pub encoder: WordEncoder,
    themes_count: usize,
}

/// A sentence of `min` to `min + spread - 1` words about `theme`, a quarter of them its topic's `focus` words.
fn sentence(rng: &mut Rng, theme: usize, focus: &[usize], min: usize, spread: usize) -> String {
    let len = min + rng.below(spread);
    let mut out = Vec::with_capacity(len);
    for i in 0..len {
        let r = rng.unit();
        let w = if r < 0.25 {
            focus[i % focus.len()]
        } else if r < 0.6 {
            COMMON_WORDS + theme * THEME_WORDS + rng.zipf(THEME_WORDS)
        } else {
            rng.zipf(COMMON_WORDS)
        };
        out.push(word(w));
    }
    let mut s = out.join(" ");
    if let Some(first) = s.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    s.push('.');
    s
}

impl Forum {
    /// Generates `n` topics.
    pub fn generate(n: usize, seed: u64) -> Forum {
        let mut rng = Rng::new(seed);
        let themes_count = n.div_ceil(TOPICS_PER_THEME).max(1);
        let encoder = WordEncoder::new(themes_count, &mut rng);
        let users_per_theme = 40;
        let mut topics = Vec::with_capacity(n);
        let mut themes = Vec::with_capacity(n);
        for i in 0..n {
            let theme = rng.below(themes_count);
            let focus: Vec<usize> = (0..3).map(|_| COMMON_WORDS + theme * THEME_WORDS + rng.below(THEME_WORDS)).collect();
            let user = |rng: &mut Rng| {
                let id = if rng.unit() < 0.8 { theme * users_per_theme + rng.zipf(users_per_theme) } else { rng.below(themes_count * users_per_theme) };
                Author { id: Some(format!("u{id}")), name: format!("user {id}") }
            };
            let day = 1 + (i * 3650 / n.max(1)) as u64;
            let date = |d: u64| format!("{:04}-{:02}-{:02}T12:00:00", 2015 + d / 365, 1 + (d % 365) / 31 % 12, 1 + d % 28);
            let title = sentence(&mut rng, theme, &focus, 6, 5);
            let body: Vec<String> = (0..1 + rng.below(3)).map(|_| sentence(&mut rng, theme, &focus, 12, 20)).collect();
            let answers: Vec<Answer> = (0..rng.below(4))
                .map(|a| {
                    let text = sentence(&mut rng, theme, &focus, 15, 40);
                    Answer {
                        id: format!("{}", n + i * 4 + a),
                        url: format!("/t/{i}#a{a}"),
                        author: user(&mut rng),
                        created: date(day + 1),
                        score: rng.zipf(20) as i64,
                        accepted: a == 0 && rng.unit() < 0.5,
                        body_html: format!("<p>{text}</p>"),
                        body_text: text,
                        comments: Vec::new(),
                    }
                })
                .collect();
            let mut topic = Topic {
                id: format!("{i}"),
                title,
                url: format!("/t/{i}"),
                tags: vec![word(COMMON_WORDS + theme * THEME_WORDS), word(rng.zipf(200))],
                author: user(&mut rng),
                created: date(day),
                last_activity: date(day + 2),
                score: rng.zipf(50) as i64,
                views: Some(rng.zipf(5000) as u64),
                body_html: body.iter().map(|p| format!("<p>{p}</p>")).collect(),
                body_text: body.join("\n\n"),
                answers,
                comments: Vec::new(),
                participants: Vec::new(),
                links: Vec::new(),
            };
            crate::ingest::finish(&mut topic);
            topics.push(topic);
            themes.push(theme);
        }
        let mut paired: Vec<(Topic, usize)> = topics.into_iter().zip(themes).collect();
        paired.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        let (topics, themes) = paired.into_iter().unzip();
        Forum { topics, themes, encoder, themes_count }
    }

    /// A question a visitor might ask about `theme`, different from every topic's text.
    pub fn query(&self, rng: &mut Rng) -> String {
        let theme = rng.below(self.themes_count);
        let focus: Vec<usize> = (0..2).map(|_| COMMON_WORDS + theme * THEME_WORDS + rng.below(THEME_WORDS)).collect();
        sentence(rng, theme, &focus, 5, 6)
    }
}

/// The 10 best hits, ties by position.
fn best10(mut hits: Vec<search::TopicHit>) -> Vec<TopicRef> {
    hits.sort_by(|a, b| b.cos.total_cmp(&a.cos).then((a.topic.cluster, a.topic.slot).cmp(&(b.topic.cluster, b.topic.slot))));
    hits.into_iter().take(10).map(|h| h.topic).collect()
}

/// Bytes one page view fetched: raw, gzip-compressed, and raw by kind of file.
#[derive(Debug, Default)]
struct PageFetch {
    raw: u64,
    gzip: u64,
    by_role: BTreeMap<String, u64>,
}

impl PageFetch {
    fn count(&mut self, name: &str, bytes: &[u8]) {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(bytes).expect("in memory");
        self.raw += bytes.len() as u64;
        self.gzip += gz.finish().expect("in memory").len() as u64;
        let role = name.split(['-', '.']).next().unwrap_or(name);
        *self.by_role.entry(role.to_string()).or_default() += bytes.len() as u64;
    }
}

/// The fetches of many page views.
#[derive(Debug, Default)]
struct Fetches(Vec<PageFetch>);

impl Fetches {
    /// A page view that has fetched the manifest.
    fn page(manifest: &[u8]) -> PageFetch {
        let mut p = PageFetch::default();
        p.count(MANIFEST_FILE, manifest);
        p
    }

    fn add(&mut self, p: PageFetch) {
        self.0.push(p);
    }

    fn mean(&self, f: impl Fn(&PageFetch) -> u64) -> u64 {
        self.0.iter().map(f).sum::<u64>() / self.0.len().max(1) as u64
    }

    fn max_raw(&self) -> u64 {
        self.0.iter().map(|p| p.raw).max().unwrap_or(0)
    }

    fn mean_by_role(&self) -> BTreeMap<String, u64> {
        let mut sum: BTreeMap<String, u64> = BTreeMap::new();
        for p in &self.0 {
            for (r, b) in &p.by_role {
                *sum.entry(r.clone()).or_default() += b;
            }
        }
        sum.values_mut().for_each(|b| *b /= self.0.len().max(1) as u64);
        sum
    }
}

impl PageFetch {
    /// Counts a fetched file and hands its bytes on.
    fn fetch(&mut self, name: &str, bytes: Vec<u8>) -> Result<Vec<u8>> {
        self.count(name, &bytes);
        Ok(bytes)
    }
}

/// What `cairn bench index` reports (its last line, as JSON).
#[derive(Debug, Clone, Serialize)]
pub struct IndexBench {
    /// Topics.
    pub n: usize,
    /// Seconds to build and write the index (clustering, links, postings, shards), the encoder excluded.
    pub build_s: f64,
    /// Seconds the synthetic encoder took (not part of `build_s`).
    pub embed_s: f64,
    /// Bytes of every file of the index.
    pub disk_bytes: u64,
    /// Files of the index.
    pub files: usize,
    /// Mean bytes a browser fetches (manifest and shards) to show related topics for one topic.
    pub related_fetch_bytes: u64,
    /// The same, each file gzip-compressed (as a CDN serves them).
    pub related_fetch_gzip_bytes: u64,
    /// Mean related-topics bytes by kind of file (manifest, catalog, directory, cards, links).
    pub related_fetch_by_role: BTreeMap<String, u64>,
    /// Most bytes any sampled topic needed.
    pub related_fetch_bytes_max: u64,
    /// Mean bytes a browser fetches (manifest and shards, not the model) to answer one question.
    pub query_fetch_bytes: u64,
    /// The same, each file gzip-compressed.
    pub query_fetch_gzip_bytes: u64,
    /// Mean question bytes by kind of file.
    pub query_fetch_by_role: BTreeMap<String, u64>,
    /// Most bytes any sampled question needed.
    pub query_fetch_bytes_max: u64,
    /// Mean recall@10 of the clustered search against brute force over every vector.
    pub recall10: f64,
    /// Questions the recall is measured on.
    pub queries: usize,
    /// Mean recall@10 of the nearest-topic lists stored on the cards against brute force
    /// (exact up to [`build::EXACT_SIMILAR_LIMIT`] topics), over 200 sampled topics.
    pub similar_recall10: f64,
}

/// Builds an index of `n` synthetic topics in `out` and measures it (see [`IndexBench`]).
/// `progress` hears each phase as it starts.
pub fn bench_index(n: usize, out: &Path, queries: usize, progress: &dyn Fn(&str)) -> Result<IndexBench> {
    progress("generating topics");
    let mut forum = Forum::generate(n, 7);
    progress("embedding (synthetic encoder)");
    let t = Instant::now();
    // In parts, so that only one part's texts and f32 vectors (keyword
    // candidates included, ~25 KB a topic) are in memory at a time; the
    // topics themselves are dropped once embedded (only their ids are needed).
    const EMBED_PART: usize = 20_000;
    let ids: Vec<String> = forum.topics.iter().map(|t| t.id.clone()).collect();
    let topics = std::mem::take(&mut forum.topics);
    let mut entries = Vec::with_capacity(n);
    for part in topics.chunks(EMBED_PART) {
        let plan = prepare::plan(part, "synthetic", None);
        let vectors: Vec<Vec<f32>> = plan.texts.par_iter().map(|s| forum.encoder.embed(s)).collect();
        entries.extend(plan.finish(vectors)?);
    }
    drop(topics);
    let embed_s = t.elapsed().as_secs_f64();

    progress("building the index");
    let t = Instant::now();
    let model = ModelInfo { name: "synthetic bag of words".into(), weights_id: "synthetic".into(), dim: DIM };
    let built = build::build(&entries, model, LeftOut::default(), None, None, BuildOptions::default())?;
    drop(entries);
    progress("writing the index");
    build::write(out, &built, &|| {})?;
    let build_s = t.elapsed().as_secs_f64();
    drop(built);

    let listing = std::fs::read_dir(out).map_err(|e| Error::io(out, e))?;
    let (mut disk_bytes, mut files) = (0u64, 0usize);
    for e in listing {
        let e = e.map_err(|e| Error::io(out, e))?;
        disk_bytes += e.metadata().map_err(|err| Error::io(e.path(), err))?.len();
        files += 1;
    }
    let manifest = std::fs::read(out.join(MANIFEST_FILE)).map_err(|e| Error::io(out.join(MANIFEST_FILE), e))?;
    let read = |name: &str| std::fs::read(out.join(name)).map_err(|e| Error::io(out.join(name), e));

    // What a visitor's browser fetches: a fresh store per page view, the manifest included.
    progress("measuring fetches");
    const SAMPLES: usize = 50;
    let mut rng = Rng::new(11);
    let none = HashSet::new();
    let mut related_fetches = Fetches::default();
    for _ in 0..SAMPLES {
        let id = ids[rng.below(n)].clone();
        let mut store = Store::from_manifest(&manifest)?;
        let mut page = Fetches::page(&manifest);
        store.resolve(|name| page.fetch(name, read(name)?), |s| related::related(s, &id, 10, &none))?;
        related_fetches.add(page);
    }
    let mut query_fetches = Fetches::default();
    for _ in 0..SAMPLES {
        let text = forum.query(&mut rng);
        let vector = forum.encoder.embed(&text);
        let query = diagnose::prepare(&text);
        let mut store = Store::from_manifest(&manifest)?;
        let mut page = Fetches::page(&manifest);
        store.resolve(|name| page.fetch(name, read(name)?), |s| assist::ask(s, &query, Some(vector.as_slice()), AskOptions::default()))?;
        query_fetches.add(page);
    }

    // Recall: the probed clusters' top 10 against every vector's.
    progress("measuring recall against brute force");
    let mut all = DirStore::open(out)?;
    all.load_all()?;
    let store = &all.store;
    let k = store.clusters();
    // Brute force: every live vector's cosine to `q`, best 10 (ties by position), `skip` left out.
    let exact_top10 = |q: &[f32], skip: Option<TopicRef>| -> Vec<TopicRef> {
        let qn = q.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        let mut every: Vec<search::TopicHit> = Vec::new();
        for c in 0..k as u16 {
            let cv = store.vectors(c, &mut Needs::default()).expect("loaded");
            for s in (0..cv.vectors.len()).filter(|&s| cv.norms[s] > 0.0) {
                let r = TopicRef { cluster: c, slot: s as u16 };
                if Some(r) == skip {
                    continue;
                }
                let dot = search::dot_f32_i8(q, cv.vectors.row(s));
                every.push(search::TopicHit { topic: r, cos: dot / (qn * cv.norms[s]) });
            }
        }
        best10(every)
    };
    let cards = store.loaded_cards();
    let sampled: Vec<(TopicRef, &crate::index::format::TopicCard)> = (0..200.min(cards.len())).map(|_| cards[rng.below(cards.len())]).collect();
    let similar: Vec<f64> = sampled
        .par_iter()
        .map(|(r, _)| {
            let cv = store.vectors(r.cluster, &mut Needs::default()).expect("loaded");
            let q: Vec<f32> = cv.vectors.row(r.slot as usize).iter().map(|&c| c as f32).collect();
            let exact = exact_top10(&q, Some(*r));
            let links = store.links(*r, &mut Needs::default()).expect("loaded");
            let stored: Vec<TopicRef> = links.similar.iter().take(10).map(|s| s.topic).collect();
            exact.iter().filter(|x| stored.contains(x)).count() as f64 / exact.len().max(1) as f64
        })
        .collect();
    let similar_recall10 = similar.iter().sum::<f64>() / similar.len().max(1) as f64;
    let qs: Vec<Vec<f32>> = (0..queries).map(|_| forum.encoder.embed(&forum.query(&mut rng))).collect();
    let recalls: Vec<f64> = qs
        .par_iter()
        .map(|q| {
            let mut needs = Needs::default();
            let probed = best10(search::search(store, q, &mut needs).expect("every vector shard is loaded"));
            let exact = exact_top10(q, None);
            exact.iter().filter(|r| probed.contains(r)).count() as f64 / exact.len().max(1) as f64
        })
        .collect();
    let recall10 = recalls.iter().sum::<f64>() / recalls.len().max(1) as f64;
    Ok(IndexBench {
        n,
        build_s,
        embed_s,
        disk_bytes,
        files,
        related_fetch_bytes: related_fetches.mean(|p| p.raw),
        related_fetch_gzip_bytes: related_fetches.mean(|p| p.gzip),
        related_fetch_bytes_max: related_fetches.max_raw(),
        related_fetch_by_role: related_fetches.mean_by_role(),
        query_fetch_bytes: query_fetches.mean(|p| p.raw),
        query_fetch_gzip_bytes: query_fetches.mean(|p| p.gzip),
        query_fetch_bytes_max: query_fetches.max_raw(),
        query_fetch_by_role: query_fetches.mean_by_role(),
        recall10,
        queries,
        similar_recall10,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_distinct_and_forums_reproducible() {
        let words: HashSet<String> = (0..20_000).map(word).collect();
        assert_eq!(words.len(), 20_000);
        let (a, b) = (Forum::generate(50, 3), Forum::generate(50, 3));
        assert_eq!(a.topics.iter().map(|t| &t.title).collect::<Vec<_>>(), b.topics.iter().map(|t| &t.title).collect::<Vec<_>>());
    }

    #[test]
    fn texts_of_one_theme_are_closer_than_texts_of_two() {
        let f = Forum::generate(2000, 5);
        let v: Vec<Vec<f32>> = f.topics.iter().map(|t| f.encoder.embed(&t.embedding_text())).collect();
        let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let (mut same, mut ns, mut other, mut no) = (0f32, 0, 0f32, 0);
        for i in 0..200 {
            for j in i + 1..400 {
                if f.themes[i] == f.themes[j] {
                    same += cos(&v[i], &v[j]);
                    ns += 1;
                } else {
                    other += cos(&v[i], &v[j]);
                    no += 1;
                }
            }
        }
        assert!(ns > 0 && same / ns as f32 > other / no as f32 + 0.2, "same theme {} vs other {}", same / ns as f32, other / no as f32);
    }
}
