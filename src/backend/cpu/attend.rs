//! Self-attention for a ragged batch, in f32, vectorised.
//!
//! Per sequence and head: K is transposed once into a zero-padded (d, n16)
//! panel, so scores are rows of 16 keys at a time accumulated over d (4 query
//! rows share each key load); softmax is the vectorised one; P V runs 4 query
//! rows at once with the head's d values held in registers. Head widths of 32
//! and 64 get fully unrolled kernels; any other width takes a plain loop.

use super::isa::Isa;
use super::vmath::{self, dispatch};


/// Query rows handled together.
const QROWS: usize = 4;
/// Keys per score chunk.
const KCHUNK: usize = 16;

/// Scratch for [`attention`], sized for sequences of up to `max_len` tokens.
#[derive(Debug, Clone, Default)]
pub struct AttnScratch {
    kt: Vec<f32>,     // (head_dim, n16)
    scores: Vec<f32>, // (n, n16)
}

impl AttnScratch {
    /// Room for sequences of `max_len` tokens and heads of `head_dim` values.
    pub fn new(max_len: usize, head_dim: usize) -> Self {
        let n16 = max_len.div_ceil(KCHUNK) * KCHUNK;
        AttnScratch { kt: vec![0.0; head_dim * n16], scores: vec![0.0; max_len * n16] }
    }
}

/// Attention over each sequence of a batch: qkv (tokens, 3*hidden) holds Q | K | V
/// per row, `seqs` the (start row, length) of each sequence; ctx (tokens, hidden)
/// receives the heads side by side. Same result as `ops::attention` per sequence.
pub fn attention(isa: Isa, qkv: &[f32], seqs: &[(usize, usize)], hidden: usize, heads: usize, ctx: &mut [f32], scratch: &mut AttnScratch) {
    let d = hidden / heads;
    for &(start, n) in seqs {
        let n16 = n.div_ceil(KCHUNK) * KCHUNK;
        if scratch.kt.len() < d * n16 || scratch.scores.len() < n * n16 {
            *scratch = AttnScratch::new(n, d);
        }
        for h in 0..heads {
            head(isa, qkv, start, n, hidden, h, d, ctx, &mut scratch.kt[..d * n16], &mut scratch.scores[..n * n16]);
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn head_body(qkv: &[f32], start: usize, n: usize, hidden: usize, h: usize, d: usize, ctx: &mut [f32], kt: &mut [f32], scores: &mut [f32]) {
    let stride = 3 * hidden;
    let n16 = kt.len() / d;
    let (qo, ko, vo) = (h * d, hidden + h * d, 2 * hidden + h * d);
    // kt[c][j] = K[j][c], zero for j >= n.
    kt.fill(0.0);
    for j in 0..n {
        let k = &qkv[(start + j) * stride + ko..(start + j) * stride + ko + d];
        for (c, &v) in k.iter().enumerate() {
            kt[c * n16 + j] = v;
        }
    }
    let scale = 1.0 / (d as f32).sqrt();
    let q_row = |i: usize| &qkv[(start + i) * stride + qo..(start + i) * stride + qo + d];
    // scores[i][j] = q_i . k_j, QROWS rows by KCHUNK keys at a time.
    let mut i = 0;
    while i < n {
        let nr = (n - i).min(QROWS);
        let qs: [&[f32]; QROWS] = std::array::from_fn(|r| q_row(i + r.min(nr - 1)));
        for j in (0..n16).step_by(KCHUNK) {
            let mut acc = [[0.0f32; KCHUNK]; QROWS];
            for c in 0..d {
                let k = &kt[c * n16 + j..c * n16 + j + KCHUNK];
                for r in 0..QROWS {
                    let qv = qs[r][c];
                    for l in 0..KCHUNK {
                        acc[r][l] += qv * k[l];
                    }
                }
            }
            for r in 0..nr {
                scores[(i + r) * n16 + j..(i + r) * n16 + j + KCHUNK].copy_from_slice(&acc[r]);
            }
        }
        i += nr;
    }
    for i in 0..n {
        vmath::softmax_body(&mut scores[i * n16..i * n16 + n], scale);
    }
    match d {
        32 => pv::<32>(qkv, start, n, hidden, vo, h, scores, n16, ctx),
        64 => pv::<64>(qkv, start, n, hidden, vo, h, scores, n16, ctx),
        _ => pv_any(qkv, start, n, hidden, vo, h, d, scores, n16, ctx),
    }
}

dispatch! {
    /// One head of one sequence (see [`attention`]).
    #[allow(clippy::too_many_arguments)]
    fn head(qkv: &[f32], start: usize, n: usize, hidden: usize, h: usize, d: usize, ctx: &mut [f32], kt: &mut [f32], scores: &mut [f32]) = head_body;
}

/// ctx[i][h*D..] = sum_j p[i][j] v_j for a head of D values, QROWS rows at a time.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pv<const D: usize>(qkv: &[f32], start: usize, n: usize, hidden: usize, vo: usize, h: usize, scores: &[f32], n16: usize, ctx: &mut [f32]) {
    let stride = 3 * hidden;
    let mut i = 0;
    while i < n {
        let nr = (n - i).min(QROWS);
        let mut acc = [[0.0f32; D]; QROWS];
        for j in 0..n {
            let v: &[f32; D] = qkv[(start + j) * stride + vo..(start + j) * stride + vo + D].try_into().expect("D values");
            for r in 0..QROWS {
                let p = scores[(i + r.min(nr - 1)) * n16 + j];
                for c in 0..D {
                    acc[r][c] += p * v[c];
                }
            }
        }
        for r in 0..nr {
            ctx[(start + i + r) * hidden + h * D..(start + i + r) * hidden + (h + 1) * D].copy_from_slice(&acc[r]);
        }
        i += nr;
    }
}

/// [`pv`] for any head width.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pv_any(qkv: &[f32], start: usize, n: usize, hidden: usize, vo: usize, h: usize, d: usize, scores: &[f32], n16: usize, ctx: &mut [f32]) {
    let stride = 3 * hidden;
    for i in 0..n {
        let out = &mut ctx[(start + i) * hidden + h * d..(start + i) * hidden + (h + 1) * d];
        out.fill(0.0);
        for j in 0..n {
            let p = scores[i * n16 + j];
            let v = &qkv[(start + j) * stride + vo..(start + j) * stride + vo + d];
            for (o, &vv) in out.iter_mut().zip(v) {
                *o += p * vv;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_attention_matches_the_reference_on_every_path() {
        const TOL: f32 = 2e-5;
        let mut seed = 99u32;
        let mut rnd = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1 << 24) as f32 * 4.0 - 2.0
        };
        let (run, skip): (Vec<Isa>, Vec<Isa>) = Isa::ALL.into_iter().partition(|i| i.supported());
        eprintln!("attention: testing {:?}, skipping {:?}", run.iter().map(|i| i.name()).collect::<Vec<_>>(), skip.iter().map(|i| i.name()).collect::<Vec<_>>());
        // (hidden, heads): head widths 32 and 64 (unrolled) and 6 (plain loop).
        for &(hidden, heads) in &[(64, 2), (128, 2), (18, 3)] {
            let lens = [1, 5, 16, 17, 33];
            let seqs: Vec<(usize, usize)> = lens.iter().scan(0, |at, &n| { let s = (*at, n); *at += n; Some(s) }).collect();
            let tokens: usize = lens.iter().sum();
            let qkv: Vec<f32> = (0..tokens * 3 * hidden).map(|_| rnd()).collect();
            let mut want = vec![0.0; tokens * hidden];
            for &(s, n) in &seqs {
                let mut sc = vec![0.0; n * n];
                super::super::ops::attention(&qkv[s * 3 * hidden..(s + n) * 3 * hidden], n, hidden, heads, &mut want[s * hidden..(s + n) * hidden], &mut sc);
            }
            for &isa in &run {
                let mut got = vec![f32::NAN; tokens * hidden];
                let mut scratch = AttnScratch::new(4, hidden / heads); // too small: must grow
                attention(isa, &qkv, &seqs, hidden, heads, &mut got, &mut scratch);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!((g - w).abs() <= TOL * (1.0 + w.abs()), "{} hidden {hidden} heads {heads} index {i}: got {g}, expected {w}", isa.name());
                }
            }
        }
    }
}
