//! Nearest topics by cosine similarity over the int8 index vectors.
//!
//! Exact (brute force) scoring: every topic is scored, the best `k` kept.
//! The same functions run in the CLI and, compiled to wasm, in the browser.

use super::format::{Index, Vectors};
use crate::error::{Error, Result};
use std::cmp::Ordering;

/// One result: a topic (by position in the index) and its cosine similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Position of the topic in [`Index::topics`].
    pub index: usize,
    /// Cosine similarity in [-1, 1].
    pub score: f32,
}

/// Integer dot product of two code rows.
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| x as i32 * y as i32).sum()
}

/// Euclidean norm of each code row (count,); scales cancel in a cosine.
pub fn code_norms(v: &Vectors) -> Vec<f32> {
    (0..v.len()).map(|i| (dot_i8(v.row(i), v.row(i)) as f32).sqrt()).collect()
}

/// Keeps the `k` best hits, best first; ties go to the lower index so results are deterministic.
fn top_k(mut hits: Vec<Hit>, k: usize) -> Vec<Hit> {
    let order = |a: &Hit, b: &Hit| b.score.partial_cmp(&a.score).unwrap_or(Ordering::Equal).then(a.index.cmp(&b.index));
    if hits.len() > k && k > 0 {
        hits.select_nth_unstable_by(k - 1, order);
        hits.truncate(k);
    }
    hits.sort_by(order);
    hits.truncate(k);
    hits
}

impl Index {
    /// Position of the topic with source id `id`.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.topics.iter().position(|t| t.id == id)
    }

    /// The `k` topics most similar to the topic `id`, itself excluded.
    pub fn related(&self, id: &str, k: usize) -> Result<Vec<Hit>> {
        let at = self.position(id).ok_or_else(|| Error::NotFound(format!("no topic with id {id:?} in the index")))?;
        let norms = &self.norms;
        let me = self.vectors.row(at);
        let hits = (0..self.vectors.len())
            .filter(|&i| i != at)
            .map(|i| {
                let denom = norms[at] * norms[i];
                let score = if denom > 0.0 { dot_i8(me, self.vectors.row(i)) as f32 / denom } else { 0.0 };
                Hit { index: i, score }
            })
            .collect();
        Ok(top_k(hits, k))
    }

    /// Cosine similarity of the topics at positions `a` and `b`.
    pub fn similarity(&self, a: usize, b: usize) -> f32 {
        let denom = self.norms[a] * self.norms[b];
        if denom > 0.0 { dot_i8(self.vectors.row(a), self.vectors.row(b)) as f32 / denom } else { 0.0 }
    }

    /// The `k` topics most similar to a query vector (dim,), e.g. an encoded question.
    pub fn nearest(&self, query: &[f32], k: usize) -> Vec<Hit> {
        nearest_in(&self.vectors, &self.norms, query, k, None)
    }
}

/// Brute force over any int8 vectors: the `k` most similar to `query` (dim,)
/// by cosine, best first, ties to the lower position, `exclude` left out.
/// `norms` are the code norms ([`Index::norms`]).
pub fn nearest_in(vectors: &Vectors, norms: &[f32], query: &[f32], k: usize, exclude: Option<usize>) -> Vec<Hit> {
    assert_eq!(query.len(), vectors.dim, "query width");
    let qn = query.iter().map(|x| x * x).sum::<f32>().sqrt();
    let hits = (0..vectors.len())
        .filter(|&i| Some(i) != exclude)
        .map(|i| {
            let dot: f32 = query.iter().zip(vectors.row(i)).map(|(q, &c)| q * c as f32).sum();
            let denom = qn * norms[i];
            Hit { index: i, score: if denom > 0.0 { dot / denom } else { 0.0 } }
        })
        .collect();
    top_k(hits, k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_and_breaks_ties_by_index() {
        let hits = vec![
            Hit { index: 0, score: 0.1 },
            Hit { index: 1, score: 0.9 },
            Hit { index: 2, score: 0.5 },
            Hit { index: 3, score: 0.9 },
        ];
        let got: Vec<usize> = top_k(hits, 3).iter().map(|h| h.index).collect();
        assert_eq!(got, vec![1, 3, 2]);
    }
}
