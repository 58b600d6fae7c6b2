//! Related topics for a topic page.
//!
//! Candidates are the topic's nearest topics by meaning and the topics the
//! same people took part in, both stored in its links by the index builder (so
//! a page needs no vectors, only the topic's links and its candidates' cards).
//! Each candidate is scored
//! `W_MEANING * cosine + W_PEOPLE * co-participation + W_TAGS * tag Jaccard`,
//! less [`READ_PENALTY`] when the visitor already read it, then picked by
//! maximal marginal relevance so the list does not repeat itself. Only the
//! [`POOL_PER_SUGGESTION`] * k candidates with the highest possible score (and
//! those tied with them) are looked at: their cards are what a page downloads. Redundancy between two
//! candidates is their cosine when either card lists the other among its
//! nearest topics, else the smaller of their lists' last cosines (an upper
//! bound on it). Every choice is ordered by topic id on ties, so the answer
//! does not depend on where topics lie in the index.

use super::{jaccard, Reason, Suggestion};
use crate::error::{Error, Result};
use crate::fetch_first;
use crate::index::format::{Similar, TopicCard, TopicLinks, TopicRef};
use crate::index::store::{Needs, Step, Store};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

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
/// Relevance a candidate loses when the visitor has read it already.
pub const READ_PENALTY: f32 = 0.15;
/// Candidates considered per suggestion asked for, best possible score first.
pub const POOL_PER_SUGGESTION: usize = 2;
/// Candidates considered at least.
pub const MIN_POOL: usize = 12;

/// The topic a related list is for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicSummary {
    /// Source id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Link.
    pub url: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Key phrases.
    pub keywords: Vec<String>,
}

impl TopicSummary {
    /// The summary of a card.
    pub fn of(card: &TopicCard) -> Self {
        TopicSummary { id: card.id.clone(), title: card.title.clone(), url: card.url.clone(), tags: card.tags.clone(), keywords: card.keywords.clone() }
    }
}

/// Related topics for one topic page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Related {
    /// The topic being read.
    pub topic: TopicSummary,
    /// The suggestions, best first.
    pub related: Vec<Suggestion>,
}

/// A candidate by meaning found by a live vector search (instead of the card's stored list).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// The topic.
    pub topic: TopicRef,
    /// Cosine to the topic of the page.
    pub cos: f32,
}

/// What is known about one candidate.
#[derive(Debug, Clone, Copy, Default)]
struct Evidence {
    meaning: f32,
    people: f32,
    shared_people: u32,
    tags: f32,
    read: bool,
}

impl Evidence {
    fn relevance(&self) -> f32 {
        W_MEANING * self.meaning + W_PEOPLE * self.people + W_TAGS * self.tags - if self.read { READ_PENALTY } else { 0.0 }
    }

    /// The highest relevance the candidate can reach once its card is known (full tag overlap, unread).
    fn best_possible(&self) -> f32 {
        W_MEANING * self.meaning + W_PEOPLE * self.people + W_TAGS
    }
}

/// Short, true reasons for suggesting `cand` beside `topic`.
fn reasons(topic: &TopicCard, cand: &TopicCard, e: &Evidence) -> Vec<Reason> {
    let mut parts = Vec::new();
    if e.meaning >= SIMILAR_REASON_MIN_COSINE || (e.shared_people == 0 && e.tags == 0.0) {
        parts.push(Reason::Similar);
    }
    if e.shared_people > 0 {
        parts.push(Reason::People { count: e.shared_people as u32 });
    }
    if let Some(tag) = cand.tags.iter().find(|t| topic.tags.contains(t)) {
        parts.push(Reason::AlsoTagged { tag: tag.clone() });
    }
    parts
}

/// Cosine of two cards' topics as far as their stored lists tell (see the module docs).
pub fn stored_similarity(a: (TopicRef, &TopicCard), b: (TopicRef, &TopicCard)) -> f32 {
    listed_similarity((a.0, &a.1.near), (b.0, &b.1.near))
}

/// Cosine of two topics as far as their lists of nearest topics (best first) tell:
/// the listed cosine when either lists the other, else the smaller of the lists' last cosines.
pub fn listed_similarity(a: (TopicRef, &[Similar]), b: (TopicRef, &[Similar])) -> f32 {
    if let Some(s) = a.1.iter().find(|s| s.topic == b.0) {
        return s.cos;
    }
    if let Some(s) = b.1.iter().find(|s| s.topic == a.0) {
        return s.cos;
    }
    let last = |list: &[Similar]| list.last().map_or(0.0, |s| s.cos);
    last(a.1).min(last(b.1))
}

/// The card and links of the topic with source id `id`, or a `Need`.
pub fn find<'s>(store: &'s Store, id: &str, needs: &mut Needs) -> Result<Option<(TopicRef, &'s TopicCard, &'s TopicLinks)>> {
    let Some(loc) = store.locate(id, needs) else { return Ok(None) };
    let r = loc.ok_or_else(|| Error::NotFound(format!("no topic with id {id:?} in the index")))?;
    let (card, links) = (store.card(r, needs), store.links(r, needs));
    if !needs.is_empty() {
        return Ok(None);
    }
    match (card, links) {
        (Some(card), Some(links)) => Ok(Some((r, card, links))),
        _ => Err(Error::index(format!("topic {id}"), "the directory points at an empty slot")),
    }
}

/// The `k` topics most related to topic `id`, from its stored candidates; `read` holds the ids the visitor has read.
pub fn related(store: &Store, id: &str, k: usize, read: &HashSet<String>) -> Result<Step<Related>> {
    related_with(store, id, k, read, None)
}

/// As [`related`], with the candidates by meaning from a live search when `live` is given.
pub fn related_with(store: &Store, id: &str, k: usize, read: &HashSet<String>, live: Option<&[Candidate]>) -> Result<Step<Related>> {
    let mut needs = Needs::default();
    let Some((at, topic, links)) = find(store, id, &mut needs)? else { return Ok(needs.step()) };

    let mut evidence: BTreeMap<TopicRef, Evidence> = BTreeMap::new();
    match live {
        Some(cands) => cands.iter().for_each(|c| evidence.entry(c.topic).or_default().meaning = c.cos),
        None => links.similar.iter().for_each(|s| evidence.entry(s.topic).or_default().meaning = s.cos),
    }
    for p in &links.people {
        let e = evidence.entry(p.topic).or_insert_with(|| Evidence { meaning: p.cos, ..Default::default() });
        e.people = p.sim;
        e.shared_people = p.shared;
    }
    evidence.remove(&at);
    // The pool: the candidates that can score best, and every one tied with
    // the last (so where topics lie never decides). Their cards are needed to
    // show them and to judge redundancy.
    let mut pool: Vec<(TopicRef, Evidence)> = evidence.into_iter().collect();
    pool.sort_by(|a, b| b.1.best_possible().total_cmp(&a.1.best_possible()));
    let size = (k * POOL_PER_SUGGESTION).max(MIN_POOL);
    if pool.len() > size {
        let bar = pool[size - 1].1.best_possible();
        pool.retain(|(_, e)| e.best_possible() >= bar);
    }
    for (r, _) in &pool {
        store.card(*r, &mut needs);
    }
    fetch_first!(needs);

    let candidates = pool;
    let mut pool: Vec<(TopicRef, &TopicCard, Evidence)> = Vec::new();
    for (r, mut e) in candidates {
        let Some(card) = store.card(r, &mut needs) else { continue }; // a slot emptied since: skip
        e.tags = jaccard(&topic.tags, &card.tags);
        e.read = read.contains(&card.id);
        pool.push((r, card, e));
    }
    pool.sort_by(|a, b| a.1.id.cmp(&b.1.id));

    let mut chosen: Vec<(TopicRef, &TopicCard, Evidence)> = Vec::with_capacity(k);
    while chosen.len() < k && !pool.is_empty() {
        let mmr = |(r, card, e): &(TopicRef, &TopicCard, Evidence)| {
            let redundancy = chosen.iter().map(|(cr, cc, _)| stored_similarity((*r, card), (*cr, cc))).fold(0.0f32, f32::max);
            MMR_LAMBDA * e.relevance() - (1.0 - MMR_LAMBDA) * redundancy
        };
        let best = (0..pool.len()).max_by(|&a, &b| mmr(&pool[a]).total_cmp(&mmr(&pool[b])).then(b.cmp(&a))).expect("pool is not empty");
        chosen.push(pool.remove(best));
    }

    let related = chosen
        .into_iter()
        .map(|(_, c, e)| (c, e, reasons(topic, c, &e)))
        .map(|(c, e, why)| Suggestion {
            id: c.id.clone(),
            title: c.title.clone(),
            url: c.url.clone(),
            score: e.relevance(),
            tags: c.tags.clone(),
            answers: c.answers,
            accepted: c.accepted,
            reason: Suggestion::english(&why),
            why,
        })
        .collect();
    Ok(Step::Ready(Related { topic: TopicSummary::of(topic), related }))
}
