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
            for row in data.chunks_exact(cols) {
                for block in row.chunks(Q4_BLOCK) {
                    let scale = best_q4_scale(block);
                    out.extend_from_slice(&f16::from_f32(scale).to_le_bytes());
                    let s = f16::from_f32(scale).to_f32(); // quantise against the scale readers will see
                    let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
                    let mut nibbles = [0u8; Q4_BLOCK / 2];
                    for (i, v) in block.iter().enumerate() {
                        let q = ((v * inv).round().clamp(-8.0, 7.0) as i8 + 8) as u8;
                        nibbles[i / 2] |= if i % 2 == 0 { q } else { q << 4 };
                    }
                    // A short last block pads with the code for zero.
                    for i in block.len()..Q4_BLOCK {
                        nibbles[i / 2] |= if i % 2 == 0 { 8 } else { 8 << 4 };
                    }
                    out.extend_from_slice(&nibbles);
                }
            }
        }
    }
    debug_assert_eq!(out.len(), scheme.bytes(rows, cols));
    out
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

/// The int4 scale minimising the block's squared error, searched around amax/7.
fn best_q4_scale(block: &[f32]) -> f32 {
    let a = amax(block);
    if a == 0.0 {
        return 0.0;
    }
    let err = |s: f32| -> f32 {
        block.iter().map(|v| {
            let q = (v / s).round().clamp(-8.0, 7.0);
            (v - q * s).powi(2)
        }).sum()
    };
    let mut best = (err(a / 7.0), a / 7.0);
    for step in 0..=16 {
        let s = a / (6.0 + step as f32 * 0.125); // divisors 6 .. 8
        let e = err(s);
        if e < best.0 {
            best = (e, s);
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
                    Scheme::Q4Block32 => amax(row) / 4.0, // scales lie in [amax/8, amax/6]; clamping costs at most amax/8
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
    fn zero_rows_stay_zero() {
        let d = vec![0.0; 64];
        for scheme in [Scheme::Q8Row, Scheme::Q8Block32, Scheme::Q4Block32] {
            assert_eq!(dequantise(scheme, &quantise(scheme, &d, 2, 32), 2, 32).unwrap(), d);
        }
    }
}
