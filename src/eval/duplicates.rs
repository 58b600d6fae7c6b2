//! Duplicate-question retrieval, the protocol of `shared/data/README.md`:
//! corpus = every distinct question of a labelled-pairs TSV (title + body, HTML
//! stripped, whitespace collapsed); each side of each duplicate pair is a query
//! once, with the other side its single relevant document; the query itself is
//! excluded from its own ranking; nDCG@10, Recall@10 and MRR@10 over all queries.

use super::bm25::{self, Bm25};
use crate::error::{Error, Result};
use crate::ingest::html;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// Cut-off of every metric.
pub const K: usize = 10;

/// The labelled pairs, as corpus positions.
pub struct DuplicateSet {
    /// Distinct question texts (title + body, plain text, single spaces).
    pub corpus: Vec<String>,
    /// (query, relevant) corpus positions; each duplicate pair gives two.
    pub queries: Vec<(usize, usize)>,
}

/// Plain text with runs of whitespace collapsed to one space.
fn clean(raw: &str) -> String {
    html::to_text(raw).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads a TSV of `label<TAB>question 1<TAB>question 2` rows (label `duplicate` or anything else).
pub fn load(path: &Path) -> Result<DuplicateSet> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut corpus = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    let mut queries = Vec::new();
    let mut intern = |q: &str, corpus: &mut Vec<String>| -> usize {
        let c = clean(q);
        *position.entry(c.clone()).or_insert_with(|| {
            corpus.push(c);
            corpus.len() - 1
        })
    };
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() != 3 {
            return Err(Error::Input { location: format!("{} line {}", path.display(), i + 1), message: format!("expected 3 tab-separated columns, found {}", cols.len()) });
        }
        let (a, b) = (intern(cols[1], &mut corpus), intern(cols[2], &mut corpus));
        if cols[0] == "duplicate" && a != b {
            queries.push((a, b));
            queries.push((b, a));
        }
    }
    Ok(DuplicateSet { corpus, queries })
}

/// The figures of one run; the last line `cairn eval duplicates` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Mean nDCG@10.
    pub ndcg10: f64,
    /// Share of queries whose relevant document is in the top 10.
    pub recall10: f64,
    /// Mean reciprocal rank, 0 past rank 10.
    pub mrr10: f64,
    /// Number of queries.
    pub queries: usize,
    /// "dense", "bm25" or "hybrid".
    pub method: String,
    /// The model (path) for dense and hybrid runs.
    pub model: String,
    /// For a hybrid run: nDCG@10 of its two sides alone, from the same vectors and index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baselines: Option<Baselines>,
}

/// What a hybrid run is compared with, in the same run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Baselines {
    /// Dense retrieval alone, nDCG@10.
    pub dense: f64,
    /// BM25 alone, nDCG@10.
    pub bm25: f64,
}

/// Scores queries with `score(query) -> scores over the corpus` and computes the metrics.
pub fn evaluate(set: &DuplicateSet, score: impl Fn(usize) -> Vec<f32> + Sync, method: &str, model: &str) -> Report {
    use rayon::prelude::*;
    let per_query: Vec<(f64, f64, f64)> = set
        .queries
        .par_iter()
        .map(|&(q, rel)| {
            let scores = score(q);
            let target = scores[rel];
            // Rank of the relevant document: 1 + documents scoring higher (ties count against it), query excluded.
            let rank = 1 + scores.iter().enumerate().filter(|&(i, &s)| i != q && i != rel && s >= target).count();
            if rank <= K {
                (1.0 / (rank as f64 + 1.0).log2(), 1.0, 1.0 / rank as f64)
            } else {
                (0.0, 0.0, 0.0)
            }
        })
        .collect();
    let n = per_query.len().max(1) as f64;
    Report {
        ndcg10: per_query.iter().map(|x| x.0).sum::<f64>() / n,
        recall10: per_query.iter().map(|x| x.1).sum::<f64>() / n,
        mrr10: per_query.iter().map(|x| x.2).sum::<f64>() / n,
        queries: per_query.len(),
        method: method.into(),
        model: model.into(),
        baselines: None,
    }
}

/// BM25 over the corpus.
pub fn run_bm25(set: &DuplicateSet) -> Report {
    let docs: Vec<Vec<String>> = set.corpus.iter().map(|d| bm25::tokenize(d)).collect();
    let index = Bm25::new(&docs);
    evaluate(set, |q| index.scores(&docs[q]), "bm25", "")
}

/// Cosine similarity over unit-length embeddings of the corpus (`vectors[i]` for `corpus[i]`).
pub fn run_dense(set: &DuplicateSet, vectors: &[Vec<f32>], model: &str) -> Report {
    evaluate(
        set,
        |q| vectors.iter().map(|v| v.iter().zip(&vectors[q]).map(|(a, b)| a * b).sum()).collect(),
        "dense",
        model,
    )
}

/// Dense and BM25 fused by reciprocal rank ([`crate::rank::fusion`]), equal weights;
/// [`Report::baselines`] holds each side alone, measured in the same run.
pub fn run_hybrid(set: &DuplicateSet, vectors: &[Vec<f32>], model: &str) -> Report {
    use crate::rank::fusion::{reciprocal_rank, Ranking};
    let docs: Vec<Vec<String>> = set.corpus.iter().map(|d| bm25::tokenize(d)).collect();
    let index = Bm25::new(&docs);
    let report = evaluate(
        set,
        |q| {
            let dense: Vec<Option<f32>> = vectors.iter().map(|v| Some(v.iter().zip(&vectors[q]).map(|(a, b)| a * b).sum())).collect();
            // Documents sharing no term with the query are not retrieved by BM25 at all.
            let lexical: Vec<Option<f32>> = index.scores(&docs[q]).into_iter().map(|s| (s > 0.0).then_some(s)).collect();
            let lists = [Ranking { scores: &dense, weight: 1.0 }, Ranking { scores: &lexical, weight: 1.0 }];
            reciprocal_rank(&lists, set.corpus.len(), Some(q))
        },
        "hybrid",
        model,
    );
    Report { baselines: Some(Baselines { dense: run_dense(set, vectors, model).ndcg10, bm25: run_bm25(set).ndcg10 }), ..report }
}
