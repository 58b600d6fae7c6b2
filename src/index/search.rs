//! Vector search over int8 topic vectors: exact scoring within clusters, and
//! the choice of which clusters a query visits (inverted-file search).
//!
//! A query visits clusters in order of centroid similarity until it has seen
//! at least [`MIN_CANDIDATES`] topics, so any index up to that size is
//! searched exhaustively (and answers exactly as brute force does) while a
//! large one fetches only the few shards nearest the query.

use super::format::{Centroids, TopicRef, Vectors};
use super::store::{Needs, Store};
use std::cmp::Ordering;

/// Topics a query scores at least (when the index has that many).
pub const MIN_CANDIDATES: usize = 2048;
/// Clusters a query visits at least (when the index has that many).
pub const MIN_CLUSTERS: usize = 3;

/// One result: a topic (by position in whatever was searched) and its cosine similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Position of the row in the searched vectors.
    pub index: usize,
    /// Cosine similarity in [-1, 1].
    pub score: f32,
}

/// Integer dot product of two code rows (integer sums reassociate, so this vectorises).
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| x as i32 * y as i32).sum()
}

/// Dot product of an f32 query with an int8 code row; eight partial sums let
/// the compiler vectorise without reassociating.
pub fn dot_f32_i8(q: &[f32], codes: &[i8]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (cq, cc) = (q.chunks_exact(8), codes.chunks_exact(8));
    let (rq, rc) = (cq.remainder(), cc.remainder());
    for (x, y) in cq.zip(cc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i] as f32;
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, &y) in rq.iter().zip(rc) {
        s += x * y as f32;
    }
    s
}

/// Euclidean norm of each code row (count,); scales cancel in a cosine. Empty slots give 0.
pub fn code_norms(v: &Vectors) -> Vec<f32> {
    (0..v.len()).map(|i| if v.live(i) { (dot_i8(v.row(i), v.row(i)) as f32).sqrt() } else { 0.0 }).collect()
}

/// Cosine of two code rows given their norms.
pub fn cosine_i8(a: &[i8], na: f32, b: &[i8], nb: f32) -> f32 {
    let d = na * nb;
    if d > 0.0 { dot_i8(a, b) as f32 / d } else { 0.0 }
}

/// Keeps the `k` best hits, best first; ties go to the lower index.
pub fn top_k(mut hits: Vec<Hit>, k: usize) -> Vec<Hit> {
    let order = |a: &Hit, b: &Hit| b.score.partial_cmp(&a.score).unwrap_or(Ordering::Equal).then(a.index.cmp(&b.index));
    if hits.len() > k && k > 0 {
        hits.select_nth_unstable_by(k - 1, order);
        hits.truncate(k);
    }
    hits.sort_by(order);
    hits.truncate(k);
    hits
}

/// Brute force over int8 vectors: the `k` rows most similar to `query` (dim,)
/// by cosine, best first, ties to the lower row, `exclude` and empty slots left
/// out. `norms` are the code norms ([`code_norms`]).
pub fn nearest_in(vectors: &Vectors, norms: &[f32], query: &[f32], k: usize, exclude: Option<usize>) -> Vec<Hit> {
    assert_eq!(query.len(), vectors.dim, "query width");
    let qn = query.iter().map(|x| x * x).sum::<f32>().sqrt();
    let hits = (0..vectors.len())
        .filter(|&i| Some(i) != exclude && norms[i] > 0.0)
        .map(|i| {
            let dot = dot_f32_i8(query, vectors.row(i));
            let denom = qn * norms[i];
            Hit { index: i, score: if denom > 0.0 { dot / denom } else { 0.0 } }
        })
        .collect();
    top_k(hits, k)
}

/// The clusters a query visits, nearest centroid first: enough to cover
/// [`MIN_CANDIDATES`] topics and at least [`MIN_CLUSTERS`] clusters.
pub fn probe(centroids: &Centroids, query: &[f32]) -> Vec<u16> {
    let scores: Vec<f32> = (0..centroids.len()).map(|c| crate::backend::cpu::dot(centroids.row(c), query)).collect();
    probe_scored(&centroids.sizes, &scores)
}

/// [`probe`] given each centroid's similarity to the query (`scores[c]`) and
/// the clusters' sizes: the same clusters in the same order (ties to the lower
/// cluster). Only the nearest few are sorted, so a builder probing for every
/// one of a million topics pays for a selection, not a sort of 4,096 clusters.
pub fn probe_scored(sizes: &[u32], scores: &[f32]) -> Vec<u16> {
    let mut order: Vec<(f32, usize)> = (0..sizes.len()).filter(|&c| sizes[c] > 0).map(|c| (scores[c], c)).collect();
    let cmp = |a: &(f32, usize), b: &(f32, usize)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
    let mut head = 32.min(order.len());
    loop {
        if head < order.len() {
            order.select_nth_unstable_by(head - 1, cmp);
        }
        order[..head].sort_by(cmp);
        let mut seen = 0usize;
        let mut out = Vec::new();
        for &(_, c) in &order[..head] {
            if seen >= MIN_CANDIDATES && out.len() >= MIN_CLUSTERS {
                return out;
            }
            seen += sizes[c] as usize;
            out.push(c as u16);
        }
        if head == order.len() {
            return out;
        }
        head = (head * 4).min(order.len());
    }
}

/// A topic found by a vector search, with its cosine to the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopicHit {
    /// The topic.
    pub topic: TopicRef,
    /// Cosine to the query.
    pub cos: f32,
}

/// Every live topic of the probed clusters scored against `query` (dim,), or
/// `None` with `needs` filled while the centroids or a vector shard is missing.
/// Unordered; the caller ranks (ties must be broken by topic id, not position).
pub fn search(store: &Store, query: &[f32], needs: &mut Needs) -> Option<Vec<TopicHit>> {
    let centroids = store.centroids(needs)?;
    let clusters = probe(centroids, query);
    let qn = query.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    let mut hits = Vec::new();
    for c in clusters {
        let Some(cv) = store.vectors(c, needs) else { continue };
        for slot in 0..cv.vectors.len() {
            if cv.norms[slot] == 0.0 {
                continue;
            }
            let dot = dot_f32_i8(query, cv.vectors.row(slot));
            hits.push(TopicHit { topic: TopicRef { cluster: c, slot: slot as u16 }, cos: dot / (qn * cv.norms[slot]) });
        }
    }
    needs.is_empty().then_some(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_and_breaks_ties_by_index() {
        let hits = vec![Hit { index: 0, score: 0.1 }, Hit { index: 1, score: 0.9 }, Hit { index: 2, score: 0.5 }, Hit { index: 3, score: 0.9 }];
        let got: Vec<usize> = top_k(hits, 3).iter().map(|h| h.index).collect();
        assert_eq!(got, vec![1, 3, 2]);
    }

    #[test]
    fn probing_covers_enough_topics_nearest_first() {
        let c = Centroids { dim: 2, sizes: vec![1500, 1000, 0, 10], data: vec![1.0, 0.0, 0.0, 1.0, 0.7, 0.7, -1.0, 0.0] };
        // Nearest to (0.9, 0.1): cluster 0, then 1 (the empty cluster 2 is skipped), then 3.
        assert_eq!(probe(&c, &[0.9, 0.1]), vec![0, 1, 3]);
        let small = Centroids { dim: 2, sizes: vec![5, 5], data: vec![1.0, 0.0, 0.0, 1.0] };
        assert_eq!(probe(&small, &[0.0, 1.0]), vec![1, 0], "small indexes are searched exhaustively");
    }

    #[test]
    fn probing_from_scores_matches_a_full_sort() {
        // The oracle sorts every non-empty cluster and takes clusters until both minimums hold.
        let reference = |sizes: &[u32], scores: &[f32]| -> Vec<u16> {
            let mut order: Vec<usize> = (0..sizes.len()).filter(|&c| sizes[c] > 0).collect();
            order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
            let (mut seen, mut out) = (0usize, Vec::new());
            for c in order {
                if seen >= MIN_CANDIDATES && out.len() >= MIN_CLUSTERS {
                    break;
                }
                seen += sizes[c] as usize;
                out.push(c as u16);
            }
            out
        };
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Cluster counts below, at and far above the first selection of 32; tiny
        // clusters force the selection to widen; repeated scores test the tie order.
        for k in [1usize, 5, 32, 33, 200, 4096] {
            for size_cap in [3u64, 40, 500] {
                let sizes: Vec<u32> = (0..k).map(|_| (next() % size_cap) as u32).collect();
                let scores: Vec<f32> = (0..k).map(|_| (next() % 50) as f32 / 50.0).collect();
                assert_eq!(probe_scored(&sizes, &scores), reference(&sizes, &scores), "{k} clusters of up to {size_cap}");
            }
        }
    }
}
