//! A compact parity check of every encoder kernel against the CPU reference,
//! runnable anywhere the GPU backend runs (the browser has no `cargo test`).
//! `tests/gpu.rs` covers more shapes natively; this covers one awkward shape
//! per kernel and weight format, so a browser's shader compiler is checked too.

use super::context::GpuContext;
use super::kernels::Epilogue;
use super::ops;
use super::weights::BlockMatrix;
use crate::backend::cpu::{self, Linear};
use crate::error::Result;
use crate::quant::{self, Scheme};
use serde::Serialize;

/// The outcome for one kernel case.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelCheck {
    /// Which kernel and case, e.g. "matmul 9x37x70 Q8Block32 Gelu".
    pub kernel: String,
    /// Largest |gpu - cpu| over the output.
    pub max_error: f32,
    /// Largest |cpu| over the output (scale for the error).
    pub max_expected: f32,
    /// Where the largest error is.
    pub worst_index: usize,
    /// The GPU's value there.
    pub got: f32,
    /// The CPU's value there.
    pub expected: f32,
}

fn compare(kernel: String, got: &[f32], want: &[f32]) -> KernelCheck {
    let mut c = KernelCheck { kernel, max_error: 0.0, max_expected: 0.0, worst_index: 0, got: 0.0, expected: 0.0 };
    if got.len() != want.len() {
        c.max_error = f32::INFINITY;
        return c;
    }
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let e = if g.is_nan() { f32::INFINITY } else { (g - w).abs() };
        c.max_expected = c.max_expected.max(w.abs());
        if e > c.max_error || i == 0 {
            (c.max_error, c.worst_index, c.got, c.expected) = (e, i, g, w);
        }
    }
    c
}

/// Deterministic values in [-scale, scale).
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 23) as f32 - 1.0) * scale
        })
        .collect()
}

/// Runs every case; never fails on a mismatch (the caller judges), only on a GPU error.
pub async fn run(ctx: &GpuContext) -> Result<Vec<KernelCheck>> {
    let mut out = Vec::new();
    // Matmul: 9 tokens (more than a tile), K = 37 (not a multiple of 4 or 32), N = 70 (not a multiple of 64).
    let (t, k, n) = (9, 37, 70);
    let (w, b, x, r) = (values(n * k, 1, 0.5), values(n, 2, 0.1), values(t * k, 3, 1.0), values(t * n, 4, 1.0));
    for scheme in [Scheme::F32, Scheme::Q8Block32, Scheme::Q4Block32] {
        let m = BlockMatrix::from_stored(scheme, &quant::quantise(scheme, &w, n, k), n, k).expect("own encoding");
        let wd: Vec<f32> = (0..n * k).map(|i| m.value(i / k, i % k)).collect();
        let mut base = vec![0.0; t * n];
        Linear::new(&wd, &b, n, k).forward(&x, t, &mut base);
        for epi in [Epilogue::None, Epilogue::Gelu, Epilogue::Residual] {
            let mut want = base.clone();
            match epi {
                Epilogue::None => {}
                Epilogue::Gelu => cpu::gelu(&mut want),
                Epilogue::Residual => cpu::add_in_place(&mut want, &r),
            }
            let got = ops::matmul(ctx, &x, t, &m, &b, (epi == Epilogue::Residual).then_some(&r[..]), epi).await?;
            out.push(compare(format!("matmul {t}x{k}x{n} {scheme:?} {epi:?}"), &got, &want));
        }
    }
    // LayerNorm over 129-wide rows.
    let h = 129;
    let (x, g, bb) = (values(5 * h, 5, 3.0), values(h, 6, 1.0), values(h, 7, 0.5));
    let mut want = x.clone();
    cpu::layer_norm(&mut want, h, &g, &bb, 1e-12);
    out.push(compare(format!("layer_norm 5x{h}"), &ops::layer_norm(ctx, &x, h, &g, &bb, 1e-12).await?, &want));
    // Embedding gather of an int8 per-row table, ragged lengths 1, 3, 7.
    let (vocab, h, lens) = (11, 37, [1usize, 3, 7]);
    let table = values(vocab * h, 8, 0.2);
    let position = values(8 * h, 9, 0.2);
    let ids: Vec<u32> = (0..11u32).map(|i| (i * 7) % vocab as u32).collect();
    let m = BlockMatrix::from_stored(Scheme::Q8Row, &quant::quantise(Scheme::Q8Row, &table, vocab, h), vocab, h).expect("own encoding");
    let mut want = Vec::new();
    let mut at = 0;
    for &len in &lens {
        for p in 0..len {
            want.extend((0..h).map(|c| m.value(ids[at] as usize, c) + position[p * h + c]));
            at += 1;
        }
    }
    let (g, bb) = (values(h, 10, 1.0), values(h, 11, 0.1));
    cpu::layer_norm(&mut want, h, &g, &bb, 1e-12);
    out.push(compare("embed 11 tokens Q8Row".into(), &ops::embed(ctx, &ids, &lens, &m, &position, &g, &bb, 1e-12).await?, &want));
    // Attention: head width 10, a sequence longer than the workgroup.
    let (h, heads, lens) = (20, 2, [3usize, 70]);
    let total: usize = lens.iter().sum();
    let qkv = values(total * 3 * h, 12, 2.0);
    let mut want = vec![0.0; total * h];
    let mut start = 0;
    for &len in &lens {
        let mut scores = vec![0.0; len * len];
        cpu::attention(&qkv[start * 3 * h..(start + len) * 3 * h], len, h, heads, &mut want[start * h..(start + len) * h], &mut scores);
        start += len;
    }
    out.push(compare(format!("attention h {h} heads {heads} lens {lens:?}"), &ops::attention(ctx, &qkv, &lens, h, heads).await?, &want));
    // Pooling: an empty sequence among others.
    let (h, lens) = (130, [0usize, 2, 5]);
    let total: usize = lens.iter().sum();
    let x = values(total * h, 13, 1.0);
    let mut want = Vec::new();
    let mut start = 0;
    for &len in &lens {
        let mut v = vec![0.0; h];
        cpu::mean_rows(&x[start * h..(start + len) * h], len, h, &mut v);
        cpu::l2_normalize(&mut v);
        want.extend(v);
        start += len;
    }
    out.push(compare(format!("pool h {h} lens {lens:?}"), &ops::pool(ctx, &x, &lens, h).await?, &want));
    ctx.check()?;
    Ok(out)
}
