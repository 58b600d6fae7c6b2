//! The lexical side of retrieval: tokens, and BM25 over the index's term shards.
//!
//! Tokens are lowercased runs of letters, digits and underscores (Python's
//! `\w+`), except that runs of Han, Kana and Hangul characters, which are
//! written without spaces, become overlapping character bigrams (a lone
//! character stays a unigram). The same function runs in the CLI, in the
//! evaluation and, compiled to wasm, in the browser, so a query and the index
//! always agree on what a term is.
//!
//! Scoring is Okapi BM25 with Lucene's non-negative idf,
//! `ln(1 + (N - df + 0.5) / (df + 0.5))`, k1 = 1.2, b = 0.75; the collection
//! statistics come from the manifest, each posting carries its document's
//! length, so a query needs only the shards of its own terms.

use super::format::{fnv1a, TopicRef};
use super::store::{Needs, Store};
use std::collections::HashMap;

/// Term saturation.
pub const K1: f32 = 1.2;
/// Length normalisation.
pub const B: f32 = 0.75;
/// Postings kept per term, highest impact first: a term in more documents than
/// this (a near stopword at scale) keeps only its strongest postings.
pub const MAX_POSTINGS: usize = 4000;

/// Whether `c` belongs to a script written without spaces between words.
fn unsegmented(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30ff      // Hiragana, Katakana
        | 0x3400..=0x4dbf    // CJK Extension A
        | 0x4e00..=0x9fff    // CJK Unified Ideographs
        | 0xac00..=0xd7af    // Hangul syllables
        | 0xf900..=0xfaff    // CJK Compatibility Ideographs
        | 0x20000..=0x2ffff) // CJK Extensions B..
}

/// The terms of `text`, in order (see the module docs).
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut run: Vec<char> = Vec::new();
    let flush_run = |run: &mut Vec<char>, out: &mut Vec<String>| {
        match run.len() {
            0 => {}
            1 => out.push(run[0].to_string()),
            _ => out.extend(run.windows(2).map(|w| w.iter().collect::<String>())),
        }
        run.clear();
    };
    for c in text.chars() {
        if unsegmented(c) {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            run.push(c);
        } else if c.is_alphanumeric() || c == '_' {
            flush_run(&mut run, &mut out);
            word.extend(c.to_lowercase());
        } else {
            flush_run(&mut run, &mut out);
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
        }
    }
    flush_run(&mut run, &mut out);
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Term frequencies and length of a document given as its tokens.
pub fn term_counts(tokens: &[String]) -> (HashMap<&str, u32>, u32) {
    let mut tf: HashMap<&str, u32> = HashMap::new();
    for t in tokens {
        *tf.entry(t.as_str()).or_insert(0) += 1;
    }
    (tf, tokens.len() as u32)
}

/// Lucene's BM25 idf: never negative.
pub fn idf(docs: u32, df: u32) -> f32 {
    let (n, df) = (docs as f32, df as f32);
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

/// The BM25 contribution of one occurrence count in a document of `len` tokens (idf excluded).
pub fn impact(tf: u32, len: u32, avg_len: f32) -> f32 {
    let tf = tf as f32;
    tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len as f32 / avg_len.max(1e-6)))
}

/// The bucket of `term` among `buckets` term shards.
pub fn bucket(term: &str, buckets: u32) -> u32 {
    fnv1a(term) % buckets.max(1)
}

/// What one topic scored for a query.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LexicalHit {
    /// BM25.
    pub bm25: f32,
    /// Share of the query's idf weight among the terms the topic contains, in [0, 1].
    pub coverage: f32,
}

/// The lexical side's answer to a query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LexicalResult {
    /// idf of each distinct query term (0 for a term no topic has). Ordered, so
    /// every sum over it runs in one order and answers are bit-for-bit reproducible.
    pub weights: std::collections::BTreeMap<String, f32>,
    /// Every topic that contains a query term. Unordered.
    pub hits: HashMap<TopicRef, LexicalHit>,
}

impl LexicalResult {
    /// Share of the query's idf weight among `tokens` (a passage's, say).
    pub fn coverage_of<'a>(&self, tokens: impl IntoIterator<Item = &'a str>) -> f32 {
        let total: f32 = self.weights.values().sum();
        if total <= 0.0 {
            return 0.0;
        }
        let have: std::collections::HashSet<&str> = tokens.into_iter().collect();
        self.weights.iter().filter(|(t, _)| have.contains(t.as_str())).map(|(_, w)| w).sum::<f32>() / total
    }
}

/// BM25 over the term shards of `query`'s terms (each distinct term counts
/// once), or `None` with `needs` filled while a term shard is missing.
pub fn search(store: &Store, query: &[String], needs: &mut Needs) -> Option<LexicalResult> {
    let stats = store.manifest.lexical;
    let buckets = store.manifest.layout.term_buckets;
    let mut terms: Vec<&str> = query.iter().map(String::as_str).collect();
    terms.sort_unstable();
    terms.dedup();
    let mut shards = Vec::new();
    for t in &terms {
        if let Some(s) = store.terms(bucket(t, buckets), needs) {
            shards.push((*t, s));
        }
    }
    if !needs.is_empty() {
        return None;
    }
    let mut out = LexicalResult::default();
    for (term, shard) in &shards {
        let w = shard.get(term).map_or(0.0, |(df, _)| idf(stats.docs, df));
        out.weights.insert(term.to_string(), w);
    }
    let total: f32 = out.weights.values().sum();
    for (term, shard) in shards {
        let Some((_, postings)) = shard.get(term) else { continue };
        let w = out.weights[term];
        for p in postings {
            let hit = out.hits.entry(p.topic).or_default();
            hit.bm25 += w * impact(p.tf as u32, p.len as u32, stats.avg_len);
            if total > 0.0 {
                hit.coverage += w / total;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercase_runs_and_cjk_becomes_bigrams() {
        assert_eq!(tokens("Ubuntu 14.04: can't mount_exFAT!"), vec!["ubuntu", "14", "04", "can", "t", "mount_exfat"]);
        assert_eq!(tokens("量子计算机 on Qiskit"), vec!["量子", "子计", "计算", "算机", "on", "qiskit"]);
        assert_eq!(tokens("a中b"), vec!["a", "中", "b"]);
        assert_eq!(tokens("Ünïcode ÉTÉ"), vec!["ünïcode", "été"]);
        assert!(tokens("  ,.;  ").is_empty());
    }

    #[test]
    fn idf_is_positive_and_falls_with_df() {
        assert!(idf(100, 1) > idf(100, 50) && idf(100, 100) > 0.0);
        assert!(impact(2, 10, 10.0) > impact(1, 10, 10.0) && impact(1, 5, 10.0) > impact(1, 20, 10.0));
    }
}
