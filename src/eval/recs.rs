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

/// Days since 1970-01-01 of an ISO 8601 UTC timestamp ("2018-03-12T17:00:45.567").
pub fn days(iso: &str) -> f64 {
    let num = |r: std::ops::Range<usize>| iso.get(r).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let secs = num(11..13) * 3600 + num(14..16) * 60 + num(17..19);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146097 + doe - 719468) as f64 + secs as f64 / 86400.0
}

/// Scores of every candidate under each signal, before blending.
struct Signals {
    popular: Vec<f32>,
    content: Vec<f32>,
    coparticipation: Vec<f32>,
    freshness: Vec<f32>,
}

/// Subtracts the mean and divides by the standard deviation (all-equal inputs become zeros).
fn standardise(v: &[f32]) -> Vec<f32> {
    let n = v.len().max(1) as f32;
    let mean = v.iter().sum::<f32>() / n;
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n).sqrt();
    v.iter().map(|x| if sd > 0.0 { (x - mean) / sd } else { 0.0 }).collect()
}

/// The blend: meaning and co-participation first, popularity and freshness as priors.
pub fn blend(content: &[f32], coparticipation: &[f32], popular: &[f32], freshness: &[f32]) -> Vec<f32> {
    const W_CONTENT: f32 = 1.0;
    const W_COPARTICIPATION: f32 = 0.6;
    const W_POPULAR: f32 = 0.5;
    const W_FRESH: f32 = 0.3;
    let (c, p, q, f) = (standardise(content), standardise(coparticipation), standardise(popular), standardise(freshness));
    (0..c.len()).map(|i| W_CONTENT * c[i] + W_COPARTICIPATION * p[i] + W_POPULAR * q[i] + W_FRESH * f[i]).collect()
}

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
            let sig = Signals {
                popular: cands.iter().map(|&c| (1.0 + cp.participants(c) as f32).ln()).collect(),
                content: cands.iter().map(|&c| history.iter().map(|&h| cos(c, h)).fold(f32::MIN, f32::max)).collect(),
                coparticipation: cands.iter().map(|&c| history.iter().map(|&h| cp.similarity(h, c)).sum()).collect(),
                freshness: cands.iter().map(|&c| -((at - created[c]).max(0.0) as f32 + 1.0).ln()).collect(),
            };
            let blended = blend(&sig.content, &sig.coparticipation, &sig.popular, &sig.freshness);
            let cand_created: Vec<f64> = cands.iter().map(|&c| created[c]).collect();
            let target = cands.iter().position(|&c| c == held).expect("the held-out thread existed then");
            [&sig.popular, &sig.content, &sig.coparticipation, &blended]
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
    fn days_counts_from_the_epoch() {
        assert_eq!(days("1970-01-01T00:00:00.000"), 0.0);
        assert_eq!(days("2018-03-12T12:00:00.000"), 17602.5);
    }

    #[test]
    fn rank_counts_better_scores_and_newer_ties() {
        let scores = [0.5, 0.9, 0.5, 0.1];
        let created = [1.0, 1.0, 2.0, 3.0];
        assert_eq!(rank_of(0, &scores, &created), 3); // behind 0.9 and the newer tie
        assert_eq!(rank_of(1, &scores, &created), 1);
        assert_eq!(top_k(&scores, &created), vec![1, 2, 0, 3]);
    }
}
