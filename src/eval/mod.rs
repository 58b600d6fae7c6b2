//! Offline evaluations on real data, each printing its figures as one JSON line.

pub mod bm25;
pub mod duplicates;
pub mod recs;
