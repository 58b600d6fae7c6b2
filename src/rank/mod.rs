//! Ranking: what a visitor is shown, and why.
//!
//! Related topics blend three signals: meaning (cosine of topic vectors),
//! co-participation (the same people took part in both threads) and shared
//! tags; maximal marginal relevance then keeps the list from repeating itself.
//! Every suggestion carries a short reason that is true of the data.

pub mod coparticipation;
pub mod fusion;

use crate::error::{Error, Result};
use crate::index::{Index, TopicMeta};
use serde::Serialize;
use std::collections::HashMap;

/// Candidates taken from the vector search before blending.
pub const CANDIDATES: usize = 50;
/// Weight of meaning (cosine in [-1, 1]).
pub const W_MEANING: f32 = 1.0;
/// Weight of co-participation similarity (in [0, 1]).
pub const W_PEOPLE: f32 = 0.2;
/// Weight of tag overlap (Jaccard, in [0, 1]).
pub const W_TAGS: f32 = 0.1;
/// Maximal marginal relevance: 1 ranks by relevance alone, lower values favour variety.
pub const MMR_LAMBDA: f32 = 0.9;
/// Cosine from which "Similar question" is given as a reason even when other reasons exist.
pub const SIMILAR_REASON_MIN_COSINE: f32 = 0.5;

/// One suggested topic, as the widget renders it and `cairn related` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    /// The topic's source id.
    pub id: String,
    /// Its title, plain text.
    pub title: String,
    /// Its link.
    pub url: String,
    /// Blended relevance to the topic being read (meaning + people + tags).
    pub score: f32,
    /// Its tags.
    pub tags: Vec<String>,
    /// Number of answers.
    pub answers: u32,
    /// Whether an answer was accepted.
    pub accepted: bool,
    /// Why it is suggested, in a few words.
    pub reason: String,
}

/// Related topics for one topic page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Related {
    /// The topic being read.
    pub topic: TopicMeta,
    /// The suggestions, best first.
    pub related: Vec<Suggestion>,
}

/// What is known about one candidate.
#[derive(Debug, Clone, Copy, Default)]
struct Evidence {
    meaning: f32,
    people: f32,
    shared_people: u32,
    tags: f32,
}

impl Evidence {
    fn relevance(&self) -> f32 {
        W_MEANING * self.meaning + W_PEOPLE * self.people + W_TAGS * self.tags
    }
}

fn jaccard(a: &[String], b: &[String]) -> f32 {
    let inter = a.iter().filter(|t| b.contains(t)).count();
    let union = a.len() + b.len() - inter;
    if union == 0 { 0.0 } else { inter as f32 / union as f32 }
}

/// A short, true reason for suggesting `cand` beside `topic`.
fn reason(topic: &TopicMeta, cand: &TopicMeta, e: &Evidence) -> String {
    let mut parts = Vec::new();
    if e.meaning >= SIMILAR_REASON_MIN_COSINE || (e.shared_people == 0 && e.tags == 0.0) {
        parts.push("Similar question".to_string());
    }
    match e.shared_people {
        0 => {}
        1 => parts.push("1 person took part in both".to_string()),
        n => parts.push(format!("{n} people took part in both")),
    }
    if let Some(tag) = cand.tags.iter().find(|t| topic.tags.contains(t)) {
        parts.push(format!("Also tagged {tag}"));
    }
    parts.join(" · ")
}

/// How many nearest vectors [`related_from`] wants for `k` suggestions.
pub fn candidates_for(k: usize) -> usize {
    CANDIDATES.max(k)
}

/// The `k` topics most related to topic `id`, with candidates from the CPU's brute-force search.
pub fn related(index: &Index, id: &str, k: usize) -> Result<Related> {
    let hits = index.related(id, candidates_for(k))?;
    related_from(index, id, k, &hits)
}

/// The `k` topics most related to topic `id`, given its [`candidates_for`]`(k)`
/// nearest topics by cosine (itself excluded) from any backend: the CPU's
/// [`Index::related`] or the GPU ranker.
pub fn related_from(index: &Index, id: &str, k: usize, nearest: &[crate::index::Hit]) -> Result<Related> {
    let at = index.position(id).ok_or_else(|| Error::NotFound(format!("no topic with id {id:?} in the index")))?;
    let topic = &index.topics[at];
    let mut evidence: HashMap<usize, Evidence> = HashMap::new();
    for hit in nearest.iter().filter(|h| h.index != at) {
        evidence.entry(hit.index).or_default().meaning = hit.score;
    }
    for nb in &index.neighbours[at] {
        let t = nb.topic as usize;
        let e = evidence.entry(t).or_insert_with(|| Evidence { meaning: index.similarity(at, t), ..Default::default() });
        e.people = nb.sim;
        e.shared_people = nb.shared;
    }
    for (&t, e) in evidence.iter_mut() {
        e.tags = jaccard(&topic.tags, &index.topics[t].tags);
    }

    // Maximal marginal relevance over the candidates, deterministic order.
    let mut pool: Vec<(usize, Evidence)> = evidence.into_iter().collect();
    pool.sort_by_key(|p| p.0);
    let mut chosen: Vec<(usize, Evidence, f32)> = Vec::with_capacity(k);
    while chosen.len() < k && !pool.is_empty() {
        let mmr = |(t, e): &(usize, Evidence)| {
            let redundancy = chosen.iter().map(|(c, _, _)| index.similarity(*t, *c)).fold(0.0f32, f32::max);
            MMR_LAMBDA * e.relevance() - (1.0 - MMR_LAMBDA) * redundancy
        };
        let best = (0..pool.len()).max_by(|&a, &b| mmr(&pool[a]).total_cmp(&mmr(&pool[b])).then(b.cmp(&a))).expect("pool is not empty");
        let (t, e) = pool.swap_remove(best);
        chosen.push((t, e, e.relevance()));
    }

    let related = chosen
        .into_iter()
        .map(|(t, e, score)| {
            let c = &index.topics[t];
            Suggestion {
                id: c.id.clone(),
                title: c.title.clone(),
                url: c.url.clone(),
                score,
                tags: c.tags.clone(),
                answers: c.answers,
                accepted: c.accepted,
                reason: reason(topic, c, &e),
            }
        })
        .collect();
    Ok(Related { topic: topic.clone(), related })
}
