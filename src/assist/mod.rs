//! The assistant: a visitor's question or pasted error in, the forum's best
//! threads and the passages that answer it out.
//!
//! Retrieval is hybrid. The dense side scores the query vector against the
//! topic vectors of the clusters nearest to it; the lexical side scores BM25
//! over the term shards of the query's own terms. The two rankings are fused
//! by reciprocal rank ([`crate::rank::fusion`]), so neither score scale needs
//! calibrating per forum; how much the lexical side weighs depends on what was
//! asked ([`LEXICAL_WEIGHT_QUESTION`], [`LEXICAL_WEIGHT_ERROR`]). For the best threads, each passage of the question
//! and its best answers is scored by meaning (its own vector) and by how much
//! of the query's term weight it contains; the best are returned with the
//! matching words marked. Without a query vector (the model could not load)
//! the same code answers from the lexical side alone.
//!
//! A thread counts as an answer only if it is close enough: cosine at least
//! [`RELEVANT_COSINE`], or, lexically, containing at least
//! [`RELEVANT_COVERAGE`] of the query's term weight. When none is, the answer
//! says so (`confident: false`) and the widget offers to open a new topic.

pub mod diagnose;

use crate::error::Result;
use crate::fetch_first;
use crate::index::format::{PassageKind, TopicCard, TopicRef};
use crate::index::lexical;
use crate::index::search;
use crate::index::store::{Needs, Step, Store};
use crate::rank::fusion::RRF_K;
use diagnose::{Mode, Query};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Weight of the lexical ranking in the fusion for a question (the dense one weighs 1).
/// Questions rank by meaning: on the Ask Ubuntu duplicates (int8 pack, 2026-12-04)
/// every lexical share lowered nDCG@10 against dense alone (0.546): RRF weight 0.1
/// gave 0.510, 0.5 gave 0.440, 1.0 gave 0.397; adding 0.05 of max-normalised BM25
/// to the cosine gave 0.542. Lexical matches still count for the relevance bar,
/// the highlights, and when the model cannot load.
pub const LEXICAL_WEIGHT_QUESTION: f32 = 0.0;
/// ... and for a pasted error, which is matched by its exact words (messages,
/// identifiers, codes) as much as by meaning.
pub const LEXICAL_WEIGHT_ERROR: f32 = 1.0;
/// Candidates each side contributes to the fusion.
pub const DEPTH: usize = 50;
/// A thread at least this close in meaning answers the query.
pub const RELEVANT_COSINE: f32 = 0.5;
/// ... or, lexically, one that contains this share of the query's idf weight.
pub const RELEVANT_COVERAGE: f32 = 0.6;
/// Weight of term coverage against cosine when scoring passages.
pub const PASSAGE_COVERAGE_WEIGHT: f32 = 0.3;
/// Passage bonus by kind: what answers beats what asks.
pub const ACCEPTED_BONUS: f32 = 0.08;
/// See [`ACCEPTED_BONUS`].
pub const ANSWER_BONUS: f32 = 0.04;

/// How much to return.
#[derive(Debug, Clone, Copy)]
pub struct AskOptions {
    /// Threads at most.
    pub threads: usize,
    /// Passages per thread at most (0: threads only, as the composer wants).
    pub passages: usize,
    /// Minimum cosine for a thread to count (defaults to [`RELEVANT_COSINE`]).
    pub min_cosine: f32,
}

impl Default for AskOptions {
    fn default() -> Self {
        AskOptions { threads: 5, passages: 2, min_cosine: RELEVANT_COSINE }
    }
}

/// A passage quoted as evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// The post it is from.
    pub post: String,
    /// Link to that post.
    pub url: String,
    /// Question, accepted answer or answer.
    pub kind: PassageKind,
    /// Votes on the post.
    pub votes: i64,
    /// The passage, plain text.
    pub text: String,
    /// Its score for this query.
    pub score: f32,
    /// Words matching the query, as `[start, end)` offsets in UTF-16 code units (JavaScript string indices).
    pub highlights: Vec<[u32; 2]>,
}

/// A thread that answers the query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Thread {
    /// Source id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Link.
    pub url: String,
    /// Tags.
    pub tags: Vec<String>,
    /// ISO 8601 creation time.
    pub created: String,
    /// Answers it has.
    pub answers: u32,
    /// Whether one was accepted.
    pub accepted: bool,
    /// Fused rank score.
    pub score: f32,
    /// Cosine of the query to the topic (absent without a query vector).
    pub cosine: Option<f32>,
    /// Share of the query's idf weight the thread contains.
    pub coverage: f32,
    /// The passages that answer best.
    pub passages: Vec<Evidence>,
}

/// What the assistant says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    /// Question or pasted error.
    pub mode: Mode,
    /// The text retrieval used (errors are normalised).
    pub query: String,
    /// Whether any thread is relevant enough.
    pub confident: bool,
    /// Whether meaning was used (a query vector was given).
    pub dense: bool,
    /// The threads, best first (only relevant ones).
    pub threads: Vec<Thread>,
}

/// Competition ranks ("1224") of a scored list: a topic's rank is the number of
/// topics scoring strictly more, so tied topics share a rank and the fusion
/// does not depend on where topics lie in the index. Only ranks below
/// [`DEPTH`] are kept (all ties at the boundary included).
fn ranks(scores: &HashMap<TopicRef, f32>) -> HashMap<TopicRef, usize> {
    let mut v: Vec<(TopicRef, f32)> = scores.iter().map(|(r, s)| (*r, *s)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut out = HashMap::new();
    let mut rank = 0;
    for (i, (r, s)) in v.iter().enumerate() {
        if i > 0 && *s < v[i - 1].1 {
            rank = i;
        }
        if rank >= DEPTH {
            break;
        }
        out.insert(*r, rank);
    }
    out
}

/// Words of `text` whose terms are query terms, as UTF-16 ranges.
pub fn highlights(text: &str, terms: &HashSet<String>) -> Vec<[u32; 2]> {
    let mut out: Vec<[u32; 2]> = Vec::new();
    let mut utf16 = 0u32;
    let mut word_start: Option<(usize, u32)> = None;
    let push = |start_b: usize, start_u: u32, end_b: usize, end_u: u32, out: &mut Vec<[u32; 2]>| {
        if lexical::tokens(&text[start_b..end_b]).iter().any(|t| terms.contains(t)) {
            out.push([start_u, end_u]);
        }
    };
    for (b, c) in text.char_indices() {
        let word = c.is_alphanumeric() || c == '_';
        match (word, word_start) {
            (true, None) => word_start = Some((b, utf16)),
            (false, Some((sb, su))) => {
                push(sb, su, b, utf16, &mut out);
                word_start = None;
            }
            _ => {}
        }
        utf16 += c.len_utf16() as u32;
    }
    if let Some((sb, su)) = word_start {
        push(sb, su, text.len(), utf16, &mut out);
    }
    out
}

/// The cosine of every topic the vector search visits, or `None` while shards are missing.
fn dense(store: &Store, vector: &[f32], needs: &mut Needs) -> Option<HashMap<TopicRef, f32>> {
    Some(search::search(store, vector, needs)?.into_iter().map(|h| (h.topic, h.cos)).collect())
}

/// Answers `query`; `vector` is the query text's embedding by the index's model, when available.
pub fn ask(store: &Store, query: &Query, vector: Option<&[f32]>, opts: AskOptions) -> Result<Step<Answer>> {
    let mut needs = Needs::default();
    let cosines = match vector {
        Some(v) => dense(store, v, &mut needs),
        None => Some(HashMap::new()),
    };
    let lexical = lexical::search(store, &query.terms, &mut needs);
    fetch_first!(needs);
    let (cosines, lexical) = (cosines.unwrap_or_default(), lexical.unwrap_or_default());
    let bm25: HashMap<TopicRef, f32> = lexical.hits.iter().map(|(r, h)| (*r, h.bm25)).collect();

    // Reciprocal rank fusion of the two sides.
    let (dr, lr) = (ranks(&cosines), ranks(&bm25));
    let lexical_weight = if vector.is_none() {
        1.0
    } else if query.mode == Mode::Error {
        LEXICAL_WEIGHT_ERROR
    } else {
        LEXICAL_WEIGHT_QUESTION
    };
    let mut fused: HashMap<TopicRef, f32> = HashMap::new();
    for (r, rank) in &dr {
        *fused.entry(*r).or_insert(0.0) += 1.0 / (RRF_K + *rank as f32 + 1.0);
    }
    for (r, rank) in &lr {
        *fused.entry(*r).or_insert(0.0) += lexical_weight / (RRF_K + *rank as f32 + 1.0);
    }
    let mut order: Vec<(TopicRef, f32)> = fused.into_iter().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    // Look a little deeper than asked (some of the best may fall below the bar),
    // keeping every topic tied with the last one.
    let keep = opts.threads * 2;
    if order.len() > keep {
        let bar = order[keep - 1].1;
        order.retain(|(_, s)| *s >= bar);
    }
    for (r, _) in &order {
        store.card(*r, &mut needs);
    }
    fetch_first!(needs);
    let mut found: Vec<(TopicRef, &TopicCard, f32)> = order.into_iter().filter_map(|(r, s)| store.card(r, &mut needs).map(|c| (r, c, s))).collect();
    found.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.1.id.cmp(&b.1.id)));
    let mut threads: Vec<(TopicRef, &TopicCard, f32, Option<f32>, f32)> = Vec::new();
    for (r, card, score) in found {
        let cosine = vector.map(|_| cosines.get(&r).copied().unwrap_or_else(|| live_cosine(store, r, vector.expect("some"))));
        let cov = lexical.hits.get(&r).map_or(0.0, |h| h.coverage);
        let relevant = match cosine {
            Some(c) => c >= opts.min_cosine || (c >= opts.min_cosine - 0.1 && cov >= RELEVANT_COVERAGE),
            None => cov >= RELEVANT_COVERAGE,
        };
        if relevant {
            threads.push((r, card, score, cosine, cov));
        }
    }
    threads.truncate(opts.threads);

    if opts.passages > 0 {
        for (r, _, _, _, _) in &threads {
            store.passages(*r, &mut needs);
        }
        fetch_first!(needs);
    }
    // Marked in passages: the query's content words ("a" and "can" everywhere would hide them).
    let query_terms: HashSet<String> = query.terms.iter().filter(|t| !crate::index::keywords::is_stopword(t)).cloned().collect();
    let threads: Vec<Thread> = threads
        .into_iter()
        .map(|(r, card, score, cosine, cov)| Thread {
            id: card.id.clone(),
            title: card.title.clone(),
            url: card.url.clone(),
            tags: card.tags.clone(),
            created: card.created.clone(),
            answers: card.answers,
            accepted: card.accepted,
            score,
            cosine,
            coverage: cov,
            passages: if opts.passages == 0 { Vec::new() } else { evidence(store, r, card, vector, &lexical, &query_terms, opts.passages) },
        })
        .collect();
    Ok(Step::Ready(Answer { mode: query.mode, query: query.text.clone(), confident: !threads.is_empty(), dense: vector.is_some(), threads }))
}

/// Cosine of `vector` to topic `r` when the dense side did not score it (it is in a cluster the query did not visit).
fn live_cosine(store: &Store, r: TopicRef, vector: &[f32]) -> f32 {
    let mut needs = Needs::default();
    store.vectors(r.cluster, &mut needs).map_or(0.0, |cv| {
        let row = cv.vectors.row(r.slot as usize);
        let qn = vector.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        let n = cv.norms[r.slot as usize];
        if n > 0.0 { vector.iter().zip(row).map(|(q, &c)| q * c as f32).sum::<f32>() / (qn * n) } else { 0.0 }
    })
}

/// The best passages of one thread for the query.
fn evidence(store: &Store, r: TopicRef, card: &TopicCard, vector: Option<&[f32]>, lexical: &lexical::LexicalResult, terms: &HashSet<String>, n: usize) -> Vec<Evidence> {
    let mut needs = Needs::default();
    let Some(chunk) = store.passages(r, &mut needs) else { return Vec::new() };
    let span = card.passages;
    let qn = vector.map(|v| v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12));
    let has_answers = (span.first..span.first + span.count).any(|i| chunk.passages[i as usize].kind != PassageKind::Question);
    let mut scored: Vec<(f32, usize)> = (span.first..span.first + span.count)
        .map(|i| i as usize)
        .filter(|&i| !has_answers || chunk.passages[i].kind != PassageKind::Question)
        .map(|i| {
            let p = &chunk.passages[i];
            let tokens = lexical::tokens(&p.text);
            let cov = lexical.coverage_of(tokens.iter().map(String::as_str));
            let cos = match (vector, qn) {
                (Some(v), Some(qn)) => {
                    let row = chunk.vectors.row(i);
                    let n = (crate::index::search::dot_i8(row, row) as f32).sqrt();
                    if n > 0.0 { v.iter().zip(row).map(|(q, &c)| q * c as f32).sum::<f32>() / (qn * n) } else { 0.0 }
                }
                _ => 0.0,
            };
            let bonus = match p.kind {
                PassageKind::Accepted => ACCEPTED_BONUS,
                PassageKind::Answer => ANSWER_BONUS,
                PassageKind::Question => 0.0,
            };
            (cos + PASSAGE_COVERAGE_WEIGHT * cov + bonus, i)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored
        .into_iter()
        .take(n)
        .map(|(score, i)| {
            let p = &chunk.passages[i];
            Evidence { post: p.post.clone(), url: p.url.clone(), kind: p.kind, votes: p.score, text: p.text.clone(), score, highlights: highlights(&p.text, terms) }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_mark_matching_words_in_utf16() {
        let terms: HashSet<String> = ["qiskit", "install"].iter().map(|s| s.to_string()).collect();
        let text = "Installing is easy: pip install Qiskit.";
        let h = highlights(text, &terms);
        let words: Vec<&str> = h.iter().map(|[a, b]| &text[*a as usize..*b as usize]).collect();
        assert_eq!(words, vec!["install", "Qiskit"]);
        // Non-BMP characters count two UTF-16 units.
        let h = highlights("😀 qiskit", &terms);
        assert_eq!(h, vec![[3, 9]]);
    }

    #[test]
    fn coverage_is_the_share_of_idf_weight() {
        let r = lexical::LexicalResult { weights: [("a".to_string(), 3.0), ("b".to_string(), 1.0)].into(), hits: HashMap::new() };
        assert!((r.coverage_of(["a", "x"]) - 0.75).abs() < 1e-6);
        assert_eq!(lexical::LexicalResult::default().coverage_of(["a"]), 0.0);
    }
}
