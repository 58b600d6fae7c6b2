//! Weight quantisation: block layouts, quantise / dequantise, and error reports.
//!
//! Two layouts, both symmetric (zero maps to zero):
//!
//! * [`Scheme::Q8Row`]: int8 with one f32 scale per row (per output channel of a
//!   linear layer, per token of an embedding table). `rows*4 + rows*cols` bytes.
//! * [`Scheme::Q4Block32`]: int4 in blocks of 32 consecutive values of a row, each
//!   block an f16 scale then 16 bytes of nibbles (value + 8, low nibble first).
//!   18 bytes per 32 values.

use half::f16;

/// Values per int4 block.
pub const Q4_BLOCK: usize = 32;
/// Bytes per int4 block: an f16 scale and 32 nibbles.
pub const Q4_BLOCK_BYTES: usize = 2 + Q4_BLOCK / 2;
const _: () = assert!(Q4_BLOCK_BYTES == 18);
/// Values per int8 block.
pub const Q8_BLOCK: usize = 32;
/// Bytes per int8 block: an f16 scale and 32 codes.
pub const Q8_BLOCK_BYTES: usize = 2 + Q8_BLOCK;

/// How a tensor is stored in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// Little-endian f32, unchanged.
    F32,
    /// int8, one f32 scale per row.
    Q8Row,
    /// int4 in blocks of 32 with an f16 scale.
    Q4Block32,
    /// int8 in blocks of 32 with an f16 scale.
    Q8Block32,
}

impl Scheme {
    /// Bytes needed for a (rows, cols) tensor.
    pub fn bytes(self, rows: usize, cols: usize) -> usize {
        match self {
            Scheme::F32 => rows * cols * 4,
            Scheme::Q8Row => rows * 4 + rows * cols,
            Scheme::Q4Block32 => rows * cols.div_ceil(Q4_BLOCK) * Q4_BLOCK_BYTES,
            Scheme::Q8Block32 => rows * cols.div_ceil(Q8_BLOCK) * Q8_BLOCK_BYTES,
        }
    }
}

/// Encodes a row-major (rows, cols) tensor.
pub fn quantise(scheme: Scheme, data: &[f32], rows: usize, cols: usize) -> Vec<u8> {
    assert_eq!(data.len(), rows * cols, "tensor is not (rows, cols)");
    let mut out = Vec::with_capacity(scheme.bytes(rows, cols));
    match scheme {
        Scheme::F32 => data.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        Scheme::Q8Row => {
            let scales: Vec<f32> = data.chunks_exact(cols).map(|r| amax(r) / 127.0).collect();
            scales.iter().for_each(|s| out.extend_from_slice(&s.to_le_bytes()));
            for (row, &s) in data.chunks_exact(cols).zip(&scales) {
                let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
                out.extend(row.iter().map(|v| (v * inv).round().clamp(-127.0, 127.0) as i8 as u8));
            }
        }
        Scheme::Q8Block32 => {
            for row in data.chunks_exact(cols) {
                for block in row.chunks(Q8_BLOCK) {
                    let s = f16::from_f32(amax(block) / 127.0);
                    out.extend_from_slice(&s.to_le_bytes());
                    let s = s.to_f32();
                    let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
                    out.extend(block.iter().map(|v| (v * inv).round().clamp(-127.0, 127.0) as i8 as u8));
                    out.extend(std::iter::repeat_n(0u8, Q8_BLOCK - block.len()));
                }
            }
        }
        Scheme::Q4Block32 => {
            let mut codes = Vec::with_capacity(rows * cols);
            let mut scales = Vec::with_capacity(rows * cols.div_ceil(Q4_BLOCK));
            for row in data.chunks_exact(cols) {
                for block in row.chunks(Q4_BLOCK) {
                    let s = f16::from_f32(best_q4_scale(block));
                    scales.push(s);
                    let s = s.to_f32(); // quantise against the scale readers will see
                    codes.extend(block.iter().map(|&v| q4_code(v, s)));
                }
            }
            out = encode_q4(&codes, &scales, rows, cols);
        }
    }
    debug_assert_eq!(out.len(), scheme.bytes(rows, cols));
    out
}

/// The int4 code (-8..=7) nearest to `v` for scale `s` (0 for a zero scale).
fn q4_code(v: f32, s: f32) -> i8 {
    if s == 0.0 { 0 } else { (v / s).round().clamp(-8.0, 7.0) as i8 }
}

/// Writes (rows, cols) int4 codes and their (rows, cols/32) f16 scales in the
/// [`Scheme::Q4Block32`] layout.
fn encode_q4(codes: &[i8], scales: &[f16], rows: usize, cols: usize) -> Vec<u8> {
    let nb = cols.div_ceil(Q4_BLOCK);
    let mut out = Vec::with_capacity(rows * nb * Q4_BLOCK_BYTES);
    for (r, row) in codes.chunks_exact(cols).enumerate() {
        for (b, block) in row.chunks(Q4_BLOCK).enumerate() {
            out.extend_from_slice(&scales[r * nb + b].to_le_bytes());
            // A short last block pads with the code for zero.
            let mut nibbles = [0x88u8; Q4_BLOCK / 2];
            for (i, &q) in block.iter().enumerate() {
                let q = (q + 8) as u8;
                nibbles[i / 2] = if i % 2 == 0 { (nibbles[i / 2] & 0xf0) | q } else { (nibbles[i / 2] & 0x0f) | (q << 4) };
            }
            out.extend_from_slice(&nibbles);
        }
    }
    out
}

/// [`Scheme::Q4Block32`] bytes for the weight W (rows = outputs, cols = inputs) of a
/// linear layer, rounded with GPTQ (Frantar et al., 2022) against `hessian`, the
/// (cols, cols) sum of x x^T over calibration inputs x of the layer: columns are
/// quantised left to right and each one's rounding error, weighted by the inverse
/// Hessian, is folded into the columns not yet quantised, so the layer's *output*
/// error on inputs like the calibration ones is what gets minimised, not the
/// weights' own. Each block's scale is chosen when its first column is reached,
/// from the weights as updated by then. Same layout as [`quantise`] writes.
pub fn quantise_q4_gptq(data: &[f32], rows: usize, cols: usize, hessian: &[f64], damp: f64) -> Vec<u8> {
    assert_eq!(data.len(), rows * cols, "tensor is not (rows, cols)");
    assert_eq!(hessian.len(), cols * cols, "hessian is not (cols, cols)");
    let n = cols;
    let nb = n.div_ceil(Q4_BLOCK);
    let mut h = hessian.to_vec();
    let mut w: Vec<f32> = data.to_vec();
    // Inputs never seen in calibration: their weights cannot matter, keep H invertible.
    for i in 0..n {
        if h[i * n + i] <= 0.0 {
            h[i * n + i] = 1.0;
        }
    }
    let mean_diag = (0..n).map(|i| h[i * n + i]).sum::<f64>() / n as f64;
    for i in 0..n {
        h[i * n + i] += damp * mean_diag;
    }
    let u = upper_inverse_cholesky(&h, n);
    let mut codes = vec![0i8; rows * n];
    let mut scales = vec![f16::ZERO; rows * nb];
    for i in 0..n {
        let b = i / Q4_BLOCK;
        if i % Q4_BLOCK == 0 {
            let end = ((b + 1) * Q4_BLOCK).min(n);
            for r in 0..rows {
                scales[r * nb + b] = f16::from_f32(best_q4_scale(&w[r * n + i..r * n + end]));
            }
        }
        let d = u[i * n + i];
        let urow = &u[i * n + i + 1..(i + 1) * n];
        for r in 0..rows {
            let s = scales[r * nb + b].to_f32();
            let wr = &mut w[r * n..(r + 1) * n];
            let q = q4_code(wr[i], s);
            codes[r * n + i] = q;
            let err = (wr[i] - q as f32 * s) / d;
            for (x, &uu) in wr[i + 1..].iter_mut().zip(urow) {
                *x -= err * uu;
            }
        }
    }
    encode_q4(&codes, &scales, rows, cols)
}

/// Re-fits the f16 scales of a [`Scheme::Q4Block32`] linear weight, codes kept,
/// to minimise each row's output error (w - w~)^T H (w - w~) against the
/// original row `data` (an nb x nb least-squares problem per row, nb blocks).
/// A row keeps its old scales unless the new ones (after f16 rounding) do better.
pub fn refit_q4_scales(bytes: &mut [u8], data: &[f32], rows: usize, cols: usize, hessian: &[f64]) {
    let n = cols;
    let nb = n.div_ceil(Q4_BLOCK);
    let w = QWeights::from_stored(Scheme::Q4Block32, bytes, rows, cols).expect("own layout");
    let row_bytes = nb * Q4_BLOCK_BYTES;
    let mut v = vec![0f64; nb * n];
    for r in 0..rows {
        let q = &w.codes[r * n..(r + 1) * n];
        let wr = &data[r * n..(r + 1) * n];
        // v[b] = H[:, block b] q_b
        v.fill(0.0);
        for b in 0..nb {
            let vb = &mut v[b * n..(b + 1) * n];
            for k in b * Q4_BLOCK..((b + 1) * Q4_BLOCK).min(n) {
                let qk = q[k] as f64;
                if qk != 0.0 {
                    for (x, &hv) in vb.iter_mut().zip(&hessian[k * n..(k + 1) * n]) {
                        *x += qk * hv;
                    }
                }
            }
        }
        let mut a = vec![0f64; nb * nb];
        let mut c = vec![0f64; nb];
        for b in 0..nb {
            let vb = &v[b * n..(b + 1) * n];
            c[b] = vb.iter().zip(wr).map(|(x, &y)| x * y as f64).sum();
            for b2 in 0..nb {
                let range = b2 * Q4_BLOCK..((b2 + 1) * Q4_BLOCK).min(n);
                a[b * nb + b2] = range.map(|k| vb[k] * q[k] as f64).sum();
            }
        }
        let old: Vec<f64> = w.scales[r * nb..(r + 1) * nb].iter().map(|&s| s as f64).collect();
        let obj = |s: &[f64]| -> f64 {
            let mut o = 0.0;
            for b in 0..nb {
                o -= 2.0 * c[b] * s[b];
                for b2 in 0..nb {
                    o += s[b] * a[b * nb + b2] * s[b2];
                }
            }
            o
        };
        // Solve (A + eps I) s = c + eps s_old by Cholesky.
        let eps = 1e-6 * (0..nb).map(|b| a[b * nb + b]).sum::<f64>() / nb as f64 + 1e-30;
        let mut m = a.clone();
        let mut rhs = c.clone();
        for b in 0..nb {
            m[b * nb + b] += eps;
            rhs[b] += eps * old[b];
        }
        let Some(sol) = solve_spd(&mut m, &mut rhs, nb) else { continue };
        let new: Vec<f64> = sol.iter().map(|&s| f16::from_f32(s as f32).to_f32() as f64).collect();
        if new.iter().all(|s| s.is_finite()) && obj(&new) < obj(&old) {
            for b in 0..nb {
                let off = r * row_bytes + b * Q4_BLOCK_BYTES;
                bytes[off..off + 2].copy_from_slice(&f16::from_f64(new[b]).to_le_bytes());
            }
        }
    }
}

/// Solves m x = rhs for a symmetric positive definite (n, n) m, in place; None if it is not.
fn solve_spd(m: &mut [f64], rhs: &mut [f64], n: usize) -> Option<Vec<f64>> {
    for i in 0..n {
        for j in 0..=i {
            let dot: f64 = (0..j).map(|k| m[i * n + k] * m[j * n + k]).sum();
            let a = m[i * n + j] - dot;
            if i == j {
                if a <= 0.0 {
                    return None;
                }
                m[i * n + i] = a.sqrt();
            } else {
                m[i * n + j] = a / m[j * n + j];
            }
        }
    }
    let mut y = vec![0f64; n];
    for i in 0..n {
        y[i] = (rhs[i] - (0..i).map(|k| m[i * n + k] * y[k]).sum::<f64>()) / m[i * n + i];
    }
    let mut x = vec![0f64; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| m[k * n + i] * x[k]).sum::<f64>()) / m[i * n + i];
    }
    Some(x)
}

/// U upper triangular with H^-1 = U^T U, for a symmetric positive definite (n, n)
/// H: U = R^-1 where H = R R^T with R upper (a Cholesky factorisation taken
/// from the last index to the first). Returned as f32, row-major.
fn upper_inverse_cholesky(h: &[f64], n: usize) -> Vec<f32> {
    // Lower Cholesky L of the flipped matrix H'[i][j] = H[n-1-i][n-1-j]; then R = P L P.
    let mut l = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..=i {
            let dot: f64 = l[i * n..i * n + j].iter().zip(&l[j * n..j * n + j]).map(|(a, b)| a * b).sum();
            let a = h[(n - 1 - i) * n + (n - 1 - j)] - dot;
            if i == j {
                l[i * n + i] = a.max(1e-12).sqrt();
            } else {
                l[i * n + j] = a / l[j * n + j];
            }
        }
    }
    // M = L^-1 (lower), row by row: row i = -(sum_{k<i} L[i][k] M[k]) / L[i][i].
    let mut m = vec![0f64; n * n];
    let mut acc = vec![0f64; n];
    for i in 0..n {
        acc[..i].fill(0.0);
        for k in 0..i {
            let lik = l[i * n + k];
            if lik != 0.0 {
                for (a, &mk) in acc[..=k].iter_mut().zip(&m[k * n..k * n + k + 1]) {
                    *a += lik * mk;
                }
            }
        }
        let inv = 1.0 / l[i * n + i];
        for j in 0..i {
            m[i * n + j] = -acc[j] * inv;
        }
        m[i * n + i] = inv;
    }
    // U = R^-1 = P M P.
    let mut u = vec![0f32; n * n];
    for i in 0..n {
        for j in i..n {
            u[i * n + j] = m[(n - 1 - i) * n + (n - 1 - j)] as f32;
        }
    }
    u
}

/// Decodes bytes written by [`quantise`] back to a row-major (rows, cols) f32 tensor.
/// Returns None when `bytes` has the wrong length for the shape.
pub fn dequantise(scheme: Scheme, bytes: &[u8], rows: usize, cols: usize) -> Option<Vec<f32>> {
    if bytes.len() != scheme.bytes(rows, cols) {
        return None;
    }
    let mut out = Vec::with_capacity(rows * cols);
    match scheme {
        Scheme::F32 => out.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        Scheme::Q8Row => {
            let (scales, codes) = bytes.split_at(rows * 4);
            for (r, row) in codes.chunks_exact(cols).enumerate() {
                let s = f32::from_le_bytes(scales[r * 4..r * 4 + 4].try_into().unwrap());
                out.extend(row.iter().map(|&c| c as i8 as f32 * s));
            }
        }
        Scheme::Q8Block32 => {
            let blocks_per_row = cols.div_ceil(Q8_BLOCK);
            for row in bytes.chunks_exact(blocks_per_row * Q8_BLOCK_BYTES) {
                let start = out.len();
                for block in row.chunks_exact(Q8_BLOCK_BYTES) {
                    let s = f16::from_le_bytes([block[0], block[1]]).to_f32();
                    out.extend(block[2..].iter().map(|&c| c as i8 as f32 * s));
                }
                out.truncate(start + cols);
            }
        }
        Scheme::Q4Block32 => {
            let blocks_per_row = cols.div_ceil(Q4_BLOCK);
            for row in bytes.chunks_exact(blocks_per_row * Q4_BLOCK_BYTES) {
                let start = out.len();
                for block in row.chunks_exact(Q4_BLOCK_BYTES) {
                    let s = f16::from_le_bytes([block[0], block[1]]).to_f32();
                    for &b in &block[2..] {
                        out.push(((b & 0x0f) as i32 - 8) as f32 * s);
                        out.push(((b >> 4) as i32 - 8) as f32 * s);
                    }
                }
                out.truncate(start + cols);
            }
        }
    }
    Some(out)
}

/// A quantised (rows, cols) matrix as codes and per-block scales in row-major
/// order: what a `Q8Block32`, `Q4Block32` or `Q8Row` tensor decodes to, and what
/// the CPU's integer kernels pack from.
#[derive(Debug, Clone, PartialEq)]
pub struct QWeights {
    /// Output features (rows).
    pub rows: usize,
    /// Input features (columns).
    pub cols: usize,
    /// Columns sharing one scale: 32, or `cols` for one scale per row.
    pub block: usize,
    /// (rows, cols) codes; int4 codes are -8..=7.
    pub codes: Vec<i8>,
    /// (rows, cols.div_ceil(block)) scales.
    pub scales: Vec<f32>,
}

impl QWeights {
    /// The scale of element (r, k).
    pub fn scale(&self, r: usize, k: usize) -> f32 {
        self.scales[r * self.cols.div_ceil(self.block) + k / self.block]
    }

    /// Stacks layers with the same input (Q, K, V) into one: rows concatenated.
    /// None when widths or block sizes differ.
    pub fn stack(parts: &[QWeights]) -> Option<QWeights> {
        let first = parts.first()?;
        if parts.iter().any(|p| p.cols != first.cols || p.block != first.block) {
            return None;
        }
        Some(QWeights {
            rows: parts.iter().map(|p| p.rows).sum(),
            cols: first.cols,
            block: first.block,
            codes: parts.iter().flat_map(|p| p.codes.iter().copied()).collect(),
            scales: parts.iter().flat_map(|p| p.scales.iter().copied()).collect(),
        })
    }
}

impl QWeights {
    /// Decodes a tensor stored in `scheme` without dequantising it. None for
    /// [`Scheme::F32`] or when `bytes` has the wrong length for the shape.
    pub fn from_stored(scheme: Scheme, bytes: &[u8], rows: usize, cols: usize) -> Option<QWeights> {
        if bytes.len() != scheme.bytes(rows, cols) {
            return None;
        }
        match scheme {
            Scheme::F32 => None,
            Scheme::Q8Row => {
                let (scales, codes) = bytes.split_at(rows * 4);
                Some(QWeights {
                    rows,
                    cols,
                    block: cols.max(1),
                    codes: codes.iter().map(|&c| c as i8).collect(),
                    scales: scales.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
                })
            }
            Scheme::Q8Block32 | Scheme::Q4Block32 => {
                let q4 = scheme == Scheme::Q4Block32;
                let (block, block_bytes) = if q4 { (Q4_BLOCK, Q4_BLOCK_BYTES) } else { (Q8_BLOCK, Q8_BLOCK_BYTES) };
                let mut codes = Vec::with_capacity(rows * cols);
                let mut scales = Vec::with_capacity(rows * cols.div_ceil(block));
                for row in bytes.chunks_exact(cols.div_ceil(block) * block_bytes) {
                    let start = codes.len();
                    for b in row.chunks_exact(block_bytes) {
                        scales.push(f16::from_le_bytes([b[0], b[1]]).to_f32());
                        if q4 {
                            for &byte in &b[2..] {
                                codes.push((byte & 0x0f) as i8 - 8);
                                codes.push((byte >> 4) as i8 - 8);
                            }
                        } else {
                            codes.extend(b[2..].iter().map(|&c| c as i8));
                        }
                    }
                    codes.truncate(start + cols);
                }
                Some(QWeights { rows, cols, block, codes, scales })
            }
        }
    }
}

/// Decodes row `r` of a (rows, cols) tensor stored in `scheme` into `out` (cols,),
/// so that a lookup table (the word embeddings) can stay quantised in memory.
/// Panics when `bytes` does not fit the shape (callers check with [`Scheme::bytes`]).
pub fn dequantise_row(scheme: Scheme, bytes: &[u8], rows: usize, cols: usize, r: usize, out: &mut [f32]) {
    assert!(bytes.len() == scheme.bytes(rows, cols) && r < rows && out.len() == cols, "row {r} of a ({rows}, {cols}) {scheme:?} tensor");
    match scheme {
        Scheme::F32 => {
            for (o, b) in out.iter_mut().zip(bytes[r * cols * 4..(r + 1) * cols * 4].chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        Scheme::Q8Row => {
            let s = f32::from_le_bytes(bytes[r * 4..r * 4 + 4].try_into().expect("4 bytes"));
            let codes = &bytes[rows * 4 + r * cols..rows * 4 + (r + 1) * cols];
            out.iter_mut().zip(codes).for_each(|(o, &c)| *o = c as i8 as f32 * s);
        }
        Scheme::Q8Block32 | Scheme::Q4Block32 => {
            let q4 = scheme == Scheme::Q4Block32;
            let (block, block_bytes) = if q4 { (Q4_BLOCK, Q4_BLOCK_BYTES) } else { (Q8_BLOCK, Q8_BLOCK_BYTES) };
            let row_bytes = cols.div_ceil(block) * block_bytes;
            for (b, chunk) in bytes[r * row_bytes..(r + 1) * row_bytes].chunks_exact(block_bytes).enumerate() {
                let s = f16::from_le_bytes([chunk[0], chunk[1]]).to_f32();
                for (i, o) in out[b * block..((b + 1) * block).min(cols)].iter_mut().enumerate() {
                    let code = if q4 { ((chunk[2 + i / 2] >> (4 * (i % 2))) & 0x0f) as i32 - 8 } else { chunk[2 + i] as i8 as i32 };
                    *o = code as f32 * s;
                }
            }
        }
    }
}

fn amax(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, x| m.max(x.abs()))
}

fn q4_err(block: &[f32], s: f32) -> f32 {
    let s = f16::from_f32(s).to_f32();
    if s == 0.0 || !s.is_finite() {
        return f32::INFINITY;
    }
    block.iter().map(|&v| (v - q4_code(v, s) as f32 * s).powi(2)).sum()
}

/// The int4 scale (as f16 will store it) minimising the block's squared error:
/// divisors 5 to 13 of the largest magnitude, each sign (a negative scale puts
/// the largest value on code -8, the one code without a positive twin), then a
/// few least-squares steps (for fixed codes q the best scale is sum(w q) / sum(q q)).
fn best_q4_scale(block: &[f32]) -> f32 {
    let a = amax(block);
    if a == 0.0 {
        return 0.0;
    }
    let mut best = (q4_err(block, a / 7.0), a / 7.0);
    let consider = |s: f32, best: &mut (f32, f32)| {
        let e = q4_err(block, s);
        if e < best.0 {
            *best = (e, s);
        }
    };
    for step in 0..=80 {
        let d = 5.0 + step as f32 * 0.1;
        consider(a / d, &mut best);
        consider(-a / d, &mut best);
    }
    for _ in 0..4 {
        let s = f16::from_f32(best.1).to_f32();
        let (mut wq, mut qq) = (0.0f32, 0.0f32);
        for &v in block {
            let q = q4_code(v, s) as f32;
            wq += v * q;
            qq += q * q;
        }
        if qq > 0.0 {
            consider(wq / qq, &mut best);
        }
    }
    best.1
}

/// Largest absolute difference between a tensor and its round trip through `scheme`.
pub fn max_error(scheme: Scheme, data: &[f32], rows: usize, cols: usize) -> f32 {
    let back = dequantise(scheme, &quantise(scheme, data, rows, cols), rows, cols).expect("own output decodes");
    data.iter().zip(&back).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * if i % 13 == 0 { 3.0 } else { 1.0 }).collect()
    }

    #[test]
    fn round_trips_stay_within_half_a_step() {
        let (rows, cols) = (5, 70); // cols not a multiple of the block
        let d = data(rows * cols);
        for scheme in [Scheme::F32, Scheme::Q8Row, Scheme::Q8Block32, Scheme::Q4Block32] {
            let bytes = quantise(scheme, &d, rows, cols);
            assert_eq!(bytes.len(), scheme.bytes(rows, cols), "{scheme:?} size");
            let back = dequantise(scheme, &bytes, rows, cols).unwrap();
            for r in 0..rows {
                let row = &d[r * cols..(r + 1) * cols];
                let step = match scheme {
                    Scheme::F32 => 0.0,
                    Scheme::Q8Row | Scheme::Q8Block32 => amax(row) / 127.0 * 1.001, // f16 scales round
                    Scheme::Q4Block32 => amax(row) * 0.92, // scales lie in [amax/13, amax/5]: clipping costs at most 6/13 amax
                };
                for c in 0..cols {
                    let (a, b) = (row[c], back[r * cols + c]);
                    assert!((a - b).abs() <= step * 0.5 + 1e-3 * step + 1e-7, "{scheme:?} [{r},{c}]: {a} -> {b} (step {step})");
                }
            }
            assert!(dequantise(scheme, &bytes[..bytes.len() - 1], rows, cols).is_none());
        }
    }

    #[test]
    fn codes_and_rows_decode_to_what_dequantise_gives() {
        let (rows, cols) = (4, 70);
        let d = data(rows * cols);
        for scheme in [Scheme::F32, Scheme::Q8Row, Scheme::Q8Block32, Scheme::Q4Block32] {
            let bytes = quantise(scheme, &d, rows, cols);
            let full = dequantise(scheme, &bytes, rows, cols).unwrap();
            let mut row = vec![f32::NAN; cols];
            for r in 0..rows {
                dequantise_row(scheme, &bytes, rows, cols, r, &mut row);
                assert_eq!(row, full[r * cols..(r + 1) * cols], "{scheme:?} row {r}");
            }
            match QWeights::from_stored(scheme, &bytes, rows, cols) {
                None => assert_eq!(scheme, Scheme::F32),
                Some(w) => {
                    for i in 0..rows * cols {
                        let (r, c) = (i / cols, i % cols);
                        assert_eq!(w.codes[i] as f32 * w.scale(r, c), full[i], "{scheme:?} [{r},{c}]");
                    }
                    assert!(QWeights::from_stored(scheme, &bytes[1..], rows, cols).is_none());
                }
            }
        }
    }

    #[test]
    fn q4_scales_beat_plain_rounding() {
        let d = data(32 * 40);
        for block in d.chunks(32) {
            let plain = q4_err(block, amax(block) / 7.0);
            assert!(q4_err(block, best_q4_scale(block)) <= plain, "{block:?}");
        }
    }

    /// (rows, cols) weights and a Hessian X^T X of correlated inputs.
    fn layer(rows: usize, cols: usize, tokens: usize) -> (Vec<f32>, Vec<f64>) {
        let w = data(rows * cols);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let mut h = vec![0f64; cols * cols];
        for _ in 0..tokens {
            let base = rnd();
            let x: Vec<f64> = (0..cols).map(|k| base * (k % 3) as f64 + rnd() * (1.0 + (k % 5) as f64)).collect();
            for i in 0..cols {
                for j in 0..cols {
                    h[i * cols + j] += x[i] * x[j];
                }
            }
        }
        (w, h)
    }

    fn output_error(w: &[f32], q: &[f32], h: &[f64], cols: usize) -> f64 {
        w.chunks_exact(cols).zip(q.chunks_exact(cols)).map(|(a, b)| {
            let e: Vec<f64> = a.iter().zip(b).map(|(x, y)| (x - y) as f64).collect();
            (0..cols).map(|i| (0..cols).map(|j| e[i] * h[i * cols + j] * e[j]).sum::<f64>()).sum::<f64>()
        }).sum()
    }

    #[test]
    fn upper_inverse_cholesky_factors_the_inverse() {
        let (_, h) = layer(1, 40, 200);
        let n = 40;
        let u = upper_inverse_cholesky(&h, n);
        // U^T U H = I
        for i in 0..n {
            for j in 0..n {
                let v: f64 = (0..n).map(|k| (0..n).map(|m| u[m * n + i] as f64 * u[m * n + k] as f64).sum::<f64>() * h[k * n + j]).sum();
                assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-3, "[{i},{j}] {v}");
            }
            for j in 0..i {
                assert_eq!(u[i * n + j], 0.0);
            }
        }
    }

    #[test]
    fn gptq_and_refitting_lower_the_output_error() {
        let (rows, cols) = (24, 70); // a short last block
        let (w, h) = layer(rows, cols, 300);
        let rtn = dequantise(Scheme::Q4Block32, &quantise(Scheme::Q4Block32, &w, rows, cols), rows, cols).unwrap();
        let mut bytes = quantise_q4_gptq(&w, rows, cols, &h, 0.01);
        assert_eq!(bytes.len(), Scheme::Q4Block32.bytes(rows, cols));
        let gptq = dequantise(Scheme::Q4Block32, &bytes, rows, cols).unwrap();
        refit_q4_scales(&mut bytes, &w, rows, cols, &h);
        let refit = dequantise(Scheme::Q4Block32, &bytes, rows, cols).unwrap();
        let (e_rtn, e_gptq, e_refit) = (output_error(&w, &rtn, &h, cols), output_error(&w, &gptq, &h, cols), output_error(&w, &refit, &h, cols));
        assert!(e_gptq < 0.9 * e_rtn && e_refit <= e_gptq, "round to nearest {e_rtn}, GPTQ {e_gptq}, refitted {e_refit}");
    }

    #[test]
    fn zero_rows_stay_zero() {
        let d = vec![0.0; 64];
        for scheme in [Scheme::Q8Row, Scheme::Q8Block32, Scheme::Q4Block32] {
            assert_eq!(dequantise(scheme, &quantise(scheme, &d, 2, 32), 2, 32).unwrap(), d);
        }
    }
}
