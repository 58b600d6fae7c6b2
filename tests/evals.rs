//! The evaluation commands on real data: they run, print the documented JSON last
//! line, and reproduce the figures they are meant to.

mod common;
use std::process::Command;

fn last_json_line(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn")).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().expect("a last line")).unwrap()
}

/// BM25 must reproduce rank_bm25's figures on the Ask Ubuntu pairs (shared/data/README.md).
const BM25_REFERENCE_NDCG10: f64 = 0.304;
const BM25_TOLERANCE: f64 = 0.01;

#[test]
fn bm25_duplicate_retrieval_reproduces_the_reference() {
    let tsv = common::root().join("tests/data/askubuntu_noclue_val.tsv");
    let r = last_json_line(&["eval", "duplicates", "--method", "bm25", "--tsv", tsv.to_str().unwrap()]);
    assert_eq!(r["queries"], 1000);
    assert_eq!(r["method"], "bm25");
    let ndcg = r["ndcg10"].as_f64().unwrap();
    assert!((ndcg - BM25_REFERENCE_NDCG10).abs() <= BM25_TOLERANCE, "nDCG@10 {ndcg}");
    let (recall, mrr) = (r["recall10"].as_f64().unwrap(), r["mrr10"].as_f64().unwrap());
    assert!(mrr <= ndcg && ndcg <= recall, "MRR@10 <= nDCG@10 <= Recall@10 with one relevant document");
}

/// The blend must beat the best single baseline by this factor in HR@10 (issue 6's goal).
const BLEND_OVER_BEST_BASELINE: f64 = 1.1;

#[test]
fn recommendation_blend_beats_every_baseline_on_the_sample() {
    let model = common::model_dir();
    let dump = common::sample_dump();
    let r = last_json_line(&["eval", "recs", "--stackexchange", dump.to_str().unwrap(), "--model", model.to_str().unwrap()]);
    assert!(r["users"].as_u64().unwrap() >= 100, "{r}");
    let m = &r["methods"];
    for name in ["popular", "content", "coparticipation", "blend"] {
        for key in ["hr10", "ndcg10", "coverage"] {
            let v = m[name][key].as_f64().unwrap_or(-1.0);
            assert!((0.0..=1.0).contains(&v), "{name}.{key} = {v}");
        }
    }
    let best = ["popular", "content", "coparticipation"].iter().map(|n| m[*n]["hr10"].as_f64().unwrap()).fold(0.0, f64::max);
    let blend = m["blend"]["hr10"].as_f64().unwrap();
    assert!(blend >= BLEND_OVER_BEST_BASELINE * best, "blend HR@10 {blend} vs best baseline {best}");
}

