//! Offline evaluation of recommendations on real participation histories.
//!
//! From a forum dump: every (person, thread, first time they took part). For
//! each person with at least [`MIN_THREADS`] threads, the last thread they took
//! part in is held out; the candidates are the questions that existed at that
//! moment and are not in their history; each method ranks the candidates using
//! only what was known then (participation before that moment). HR@10, nDCG@10
//! and catalogue coverage are reported per method, all in one run.

use crate::ingest::Topic;
use crate::rank::coparticipation::CoParticipation;
use crate::rank::feed::{self, Signals, TagChain};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// People with fewer threads are not evaluated.
pub const MIN_THREADS: usize = 3;
/// Cut-off of the metrics.
pub const K: usize = 10;

/// Figures of one method.
#[derive(Debug, Clone, Serialize)]
pub struct MethodReport {
    /// Share of people whose held-out thread is in the top 10.
    pub hr10: f64,
    /// Mean nDCG@10 (one relevant item).
    pub ndcg10: f64,
    /// Share of all topics recommended to someone in a top 10.
    pub coverage: f64,
}

/// The last line of `cairn eval recs`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// People evaluated.
    pub users: usize,
    /// Per method: "popular", "content", "coparticipation", "blend".
    pub methods: BTreeMap<String, MethodReport>,
}

pub use crate::rank::feed::days;

/// 1-based rank of `target` among `candidates` by `scores` (higher first; ties go to the newer topic).
fn rank_of(target: usize, scores: &[f32], created: &[f64]) -> usize {
    let t = scores[target];
    1 + (0..scores.len()).filter(|&i| i != target && (scores[i] > t || (scores[i] == t && created[i] > created[target]))).count()
}

fn top_k(scores: &[f32], created: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(created[b].total_cmp(&created[a])));
    order.truncate(K);
    order
}

/// Runs every method over the topics of one forum; `vectors[i]` is the unit embedding of `topics[i]`.
pub fn evaluate(topics: &[Topic], vectors: &[Vec<f32>]) -> Report {
    use rayon::prelude::*;
    // Every participation: (days, topic, user).
    let mut events: Vec<(f64, usize, &str)> = Vec::new();
    for (t, topic) in topics.iter().enumerate() {
        for p in &topic.participants {
            events.push((days(&p.at), t, p.user.as_str()));
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut first: HashMap<&str, HashMap<usize, f64>> = HashMap::new();
    for &(at, t, u) in &events {
        first.entry(u).or_default().entry(t).or_insert(at);
    }
    let mut people: Vec<(&str, Vec<(usize, f64)>)> = first
        .into_iter()
        .filter(|(_, ts)| ts.len() >= MIN_THREADS)
        .map(|(u, ts)| {
            let mut v: Vec<(usize, f64)> = ts.into_iter().collect();
            v.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            (u, v)
        })
        .collect();
    people.sort_by(|a, b| a.0.cmp(b.0));
    let created: Vec<f64> = topics.iter().map(|t| days(&t.created)).collect();
    let cos = |a: usize, b: usize| -> f32 { vectors[a].iter().zip(&vectors[b]).map(|(x, y)| x * y).sum() };

    const METHODS: [&str; 4] = ["popular", "content", "coparticipation", "blend"];
    // Per person: for each method, (rank of the held-out thread, its top 10).
    let results: Vec<Vec<(usize, Vec<usize>)>> = people
        .par_iter()
        .map(|(_, threads)| {
            let (held, at) = *threads.last().expect("at least MIN_THREADS");
            let history: Vec<usize> = threads[..threads.len() - 1].iter().map(|x| x.0).collect();
            let seen: HashSet<usize> = history.iter().copied().collect();
            let cands: Vec<usize> = (0..topics.len()).filter(|&c| created[c] <= at && !seen.contains(&c)).collect();
            let before = events.iter().take_while(|e| e.0 < at);
            let cp = CoParticipation::build(topics.len(), before.map(|e| (e.1, e.2)));
            // The feed's own signals (rank::feed), computed from what was known at that moment.
            let weights: Vec<f32> = threads[..threads.len() - 1].iter().map(|&(_, t)| feed::visit_weight(at - t, 0.0, false)).collect();
            let max_w = weights.iter().copied().fold(0.0f32, f32::max).max(1e-9);
            let chain = TagChain::from_sequence(history.iter().map(|&h| topics[h].tags.as_slice()));
            let counts_then = |c: usize| {
                let t = &topics[c];
                let answers = t.answers.iter().filter(|a| days(&a.created) < at).count() as u32;
                let comments = t.comments.iter().chain(t.answers.iter().flat_map(|a| &a.comments)).filter(|x| days(&x.created) < at).count() as u32;
                (answers, comments)
            };
            let signals: Vec<Signals> = cands
                .iter()
                .map(|&c| {
                    let (answers, comments) = counts_then(c);
                    Signals {
                        content: history.iter().zip(&weights).map(|(&h, w)| w / max_w * cos(c, h)).fold(f32::MIN, f32::max),
                        people: history.iter().zip(&weights).map(|(&h, w)| w / max_w * cp.similarity(h, c)).sum(),
                        tags: chain.prior(&topics[c].tags),
                        popular: feed::popularity(answers, comments, 0),
                        fresh: feed::freshness(at - created[c]),
                    }
                })
                .collect();
            let blended = feed::blend(&signals);
            let popular: Vec<f32> = cands.iter().map(|&c| (1.0 + cp.participants(c) as f32).ln()).collect();
            let content: Vec<f32> = cands.iter().map(|&c| history.iter().map(|&h| cos(c, h)).fold(f32::MIN, f32::max)).collect();
            let coparticipation: Vec<f32> = cands.iter().map(|&c| history.iter().map(|&h| cp.similarity(h, c)).sum()).collect();
            let cand_created: Vec<f64> = cands.iter().map(|&c| created[c]).collect();
            let target = cands.iter().position(|&c| c == held).expect("the held-out thread existed then");
            [&popular, &content, &coparticipation, &blended]
                .iter()
                .map(|scores| {
                    let top = top_k(scores, &cand_created).into_iter().map(|i| cands[i]).collect();
                    (rank_of(target, scores, &cand_created), top)
                })
                .collect()
        })
        .collect();

    let n = results.len().max(1) as f64;
    let methods = METHODS
        .iter()
        .enumerate()
        .map(|(m, name)| {
            let ranks = results.iter().map(|r| r[m].0);
            let hr = ranks.clone().filter(|&r| r <= K).count() as f64 / n;
            let ndcg = ranks.map(|r| if r <= K { 1.0 / (r as f64 + 1.0).log2() } else { 0.0 }).sum::<f64>() / n;
            let covered: HashSet<usize> = results.iter().flat_map(|r| r[m].1.iter().copied()).collect();
            (name.to_string(), MethodReport { hr10: hr, ndcg10: ndcg, coverage: covered.len() as f64 / topics.len().max(1) as f64 })
        })
        .collect();
    Report { users: results.len(), methods }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_counts_better_scores_and_newer_ties() {
        let scores = [0.5, 0.9, 0.5, 0.1];
        let created = [1.0, 1.0, 2.0, 3.0];
        assert_eq!(rank_of(0, &scores, &created), 3); // behind 0.9 and the newer tie
        assert_eq!(rank_of(1, &scores, &created), 1);
        assert_eq!(top_k(&scores, &created), vec![1, 2, 0, 3]);
    }
}
