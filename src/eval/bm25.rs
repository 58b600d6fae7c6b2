//! Okapi BM25 over a small in-memory corpus: the lexical baseline of the
//! duplicate-retrieval evaluation.
//!
//! Scoring follows the widely used `rank_bm25.BM25Okapi` so figures can be
//! compared with published ones: k1 = 1.5, b = 0.75, idf = ln((N - n + 0.5) /
//! (n + 0.5)), idfs below zero replaced by 0.25 x the mean idf, and every query
//! token counted as often as it occurs in the query.

use std::collections::HashMap;

/// Term saturation.
pub const K1: f32 = 1.5;
/// Length normalisation.
pub const B: f32 = 0.75;
/// Floor for negative idfs, as a fraction of the mean idf.
pub const EPSILON: f32 = 0.25;

/// The index's terms ([`crate::index::lexical::tokens`]): lowercased `\w+`
/// runs (CJK as bigrams), so the evaluation measures what the product searches.
pub fn tokenize(text: &str) -> Vec<String> {
    crate::index::lexical::tokens(text)
}

/// A BM25 index over tokenised documents.
pub struct Bm25 {
    /// Term frequencies per document.
    docs: Vec<HashMap<String, u32>>,
    /// Length of each document in tokens.
    lengths: Vec<f32>,
    avg_len: f32,
    idf: HashMap<String, f32>,
}

impl Bm25 {
    /// Indexes documents given as token lists.
    pub fn new(docs: &[Vec<String>]) -> Self {
        let n = docs.len() as f32;
        let mut df: HashMap<String, u32> = HashMap::new();
        let tf: Vec<HashMap<String, u32>> = docs
            .iter()
            .map(|d| {
                let mut m = HashMap::new();
                for t in d {
                    *m.entry(t.clone()).or_insert(0) += 1;
                }
                for t in m.keys() {
                    *df.entry(t.clone()).or_insert(0) += 1;
                }
                m
            })
            .collect();
        let lengths: Vec<f32> = docs.iter().map(|d| d.len() as f32).collect();
        let avg_len = lengths.iter().sum::<f32>() / n.max(1.0);
        let mut idf: HashMap<String, f32> = df.iter().map(|(t, &f)| (t.clone(), ((n - f as f32 + 0.5) / (f as f32 + 0.5)).ln())).collect();
        let mean = idf.values().sum::<f32>() / idf.len().max(1) as f32;
        for v in idf.values_mut() {
            if *v < 0.0 {
                *v = EPSILON * mean;
            }
        }
        Bm25 { docs: tf, lengths, avg_len, idf }
    }

    /// Score of every document for a tokenised query.
    pub fn scores(&self, query: &[String]) -> Vec<f32> {
        let mut scores = vec![0.0f32; self.docs.len()];
        for q in query {
            let Some(&idf) = self.idf.get(q) else { continue };
            for (i, doc) in self.docs.iter().enumerate() {
                if let Some(&f) = doc.get(q) {
                    let f = f as f32;
                    scores[i] += idf * f * (K1 + 1.0) / (f + K1 * (1.0 - B + B * self.lengths[i] / self.avg_len));
                }
            }
        }
        scores
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_lowercase_word_runs() {
        assert_eq!(tokenize("Ubuntu 14.04: can't mount_exFAT!"), vec!["ubuntu", "14", "04", "can", "t", "mount_exfat"]);
    }

    #[test]
    fn rarer_matching_terms_score_higher() {
        let docs: Vec<Vec<String>> = ["the cat sat", "the dog sat", "the cat and the cat", "a bird", "a fish"].iter().map(|d| tokenize(d)).collect();
        let bm = Bm25::new(&docs);
        let s = bm.scores(&tokenize("cat"));
        assert!(s[2] > s[0] && s[0] > 0.0 && s[1] == 0.0 && s[3] == 0.0 && s[4] == 0.0, "{s:?}");
    }
}
