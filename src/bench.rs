//! `cairn bench encode`: encoder speed on real questions, every model of one
//! invocation measured the same way, the first as the named baseline.

use crate::error::Result;
use crate::model::Encoder;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// Figures for one model.
#[derive(Debug, Clone, Serialize)]
pub struct EncodeFigures {
    /// The model path.
    pub model: String,
    /// Seconds to load it.
    pub load_s: f64,
    /// Documents (title + body, truncated at the model's length) per second, all cores.
    pub docs_per_s: f64,
    /// Median latency of one short query (first 80 characters of a question), one thread, ms.
    pub query_p50_ms: f64,
    /// 95th percentile of the same, ms.
    pub query_p95_ms: f64,
    /// Resident memory of the process after loading and running this model, MB.
    pub rss_mb: f64,
    /// docs_per_s divided by the baseline's.
    pub docs_speedup: f64,
    /// Baseline p50 divided by this p50.
    pub query_speedup: f64,
}

/// Resident set size in MB (Linux; 0 elsewhere).
fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Measures each model on `docs` (throughput) and `queries` (latency at batch 1).
pub fn encode(models: &[&Path], docs: &[String], queries: &[String]) -> Result<Vec<EncodeFigures>> {
    let mut out: Vec<EncodeFigures> = Vec::new();
    for path in models {
        let t = Instant::now();
        let enc = Encoder::open(path)?;
        let load_s = t.elapsed().as_secs_f64();
        enc.embed_many(&docs[..docs.len().min(8)], &|| {})?; // warm caches and threads
        let t = Instant::now();
        enc.embed_many(docs, &|| {})?;
        let docs_per_s = docs.len() as f64 / t.elapsed().as_secs_f64();
        let mut ws = enc.workspace();
        let mut lat: Vec<f64> = queries
            .iter()
            .map(|q| {
                let t = Instant::now();
                enc.embed_with(q, &mut ws).map(|_| t.elapsed().as_secs_f64() * 1000.0)
            })
            .collect::<Result<_>>()?;
        lat.sort_by(f64::total_cmp);
        let (p50, p95) = (percentile(&lat, 0.5), percentile(&lat, 0.95));
        let (base_docs, base_p50) = out.first().map(|b| (b.docs_per_s, b.query_p50_ms)).unwrap_or((docs_per_s, p50));
        out.push(EncodeFigures {
            model: path.display().to_string(),
            load_s,
            docs_per_s,
            query_p50_ms: p50,
            query_p95_ms: p95,
            rss_mb: rss_mb(),
            docs_speedup: docs_per_s / base_docs,
            query_speedup: base_p50 / p50.max(1e-9),
        });
    }
    Ok(out)
}
