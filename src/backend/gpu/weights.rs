//! Weight matrices in the layouts the WGSL kernels read.
//!
//! A pack stores each matrix in one of the [`Scheme`]s of [`crate::quant`]. For
//! the GPU it becomes a [`BlockMatrix`] (codes or f32 values plus one scale per
//! block of a row), which is then laid out either
//!
//! * **interleaved** for `matmul.wgsl`: blocks of 32 input values, word
//!   `(kb * words_per_block + j) * rows + r` holding word j of block kb of row r,
//!   so the invocations of a workgroup (consecutive rows) read consecutive
//!   words; scales `(kb * rows + r)`. Rows are padded with zeros to a multiple of 32.
//! * **row-major** for `embed.wgsl`, which gathers whole rows of a table.
//!
//! Nothing is dequantised: int8 and int4 codes reach the shader as they are in
//! the pack, four or eight to a u32 word, lowest bits first.

use crate::quant::{self, Scheme, Q4_BLOCK, Q4_BLOCK_BYTES, Q8_BLOCK, Q8_BLOCK_BYTES};
use half::f16;

/// Values per block in the interleaved layout (and per kernel loop step).
pub const GPU_BLOCK: usize = 32;

/// Storage format of a matrix on the GPU; the numbers match `FORMAT_*` in `shaders/common.wgsl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One f32 per word.
    F32 = 0,
    /// Four int8 codes per word.
    Q8 = 1,
    /// Eight int4 codes (value + 8) per word.
    Q4 = 2,
}

impl Format {
    /// Codes (values) per u32 word.
    pub fn per_word(self) -> usize {
        match self {
            Format::F32 => 1,
            Format::Q8 => 4,
            Format::Q4 => 8,
        }
    }
}

/// A (rows, cols) matrix as codes and per-block scales, decoded from a pack's bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockMatrix {
    /// How the values are coded.
    pub format: Format,
    /// Rows (output channels, or table entries).
    pub rows: usize,
    /// Columns (input width).
    pub cols: usize,
    /// Values sharing one scale: 32, or `cols` for one scale per row.
    pub block: usize,
    /// (rows, cols) f32 values; empty unless `format` is F32.
    pub values: Vec<f32>,
    /// (rows, cols) int8 or int4 codes (int4 as -8..=7); empty for F32.
    pub codes: Vec<i8>,
    /// (rows, blocks per row) scales; empty for F32.
    pub scales: Vec<f32>,
}

impl BlockMatrix {
    /// Decodes a tensor stored in `scheme` (as written by [`quant::quantise`]).
    /// None when the byte count does not fit the shape.
    pub fn from_stored(scheme: Scheme, bytes: &[u8], rows: usize, cols: usize) -> Option<Self> {
        if bytes.len() != scheme.bytes(rows, cols) {
            return None;
        }
        let mut m = BlockMatrix { format: Format::F32, rows, cols, block: cols, values: vec![], codes: vec![], scales: vec![] };
        match scheme {
            Scheme::F32 => m.values = quant::dequantise(scheme, bytes, rows, cols)?,
            Scheme::Q8Row => {
                let (scales, codes) = bytes.split_at(rows * 4);
                m.format = Format::Q8;
                m.scales = scales.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                m.codes = codes.iter().map(|&c| c as i8).collect();
            }
            Scheme::Q8Block32 | Scheme::Q4Block32 => {
                let q4 = scheme == Scheme::Q4Block32;
                let (block, block_bytes) = if q4 { (Q4_BLOCK, Q4_BLOCK_BYTES) } else { (Q8_BLOCK, Q8_BLOCK_BYTES) };
                m.format = if q4 { Format::Q4 } else { Format::Q8 };
                m.block = block;
                let blocks = cols.div_ceil(block);
                m.codes.reserve(rows * cols);
                for row in bytes.chunks_exact(blocks * block_bytes) {
                    let start = m.codes.len();
                    for b in row.chunks_exact(block_bytes) {
                        m.scales.push(f16::from_le_bytes([b[0], b[1]]).to_f32());
                        if q4 {
                            for &byte in &b[2..] {
                                m.codes.push((byte & 0x0f) as i8 - 8);
                                m.codes.push((byte >> 4) as i8 - 8);
                            }
                        } else {
                            m.codes.extend(b[2..].iter().map(|&c| c as i8));
                        }
                    }
                    m.codes.truncate(start + cols);
                }
            }
        }
        Some(m)
    }

    /// Scales per row.
    pub fn blocks_per_row(&self) -> usize {
        self.cols.div_ceil(self.block)
    }

    /// The value at (r, c), dequantised: what the kernels compute with.
    pub fn value(&self, r: usize, c: usize) -> f32 {
        match self.format {
            Format::F32 => self.values[r * self.cols + c],
            _ => self.codes[r * self.cols + c] as f32 * self.scales[r * self.blocks_per_row() + c / self.block],
        }
    }

    /// The same matrix with int4 codes held as int8 ([`Format::Q8`]): exact, for
    /// running layers of both widths through one int8 kernel. Other formats are unchanged.
    pub fn widened(self) -> BlockMatrix {
        match self.format {
            Format::Q4 => BlockMatrix { format: Format::Q8, ..self },
            _ => self,
        }
    }

    /// Stacks matrices of equal width and format on top of each other (Q, K and V
    /// become one (3 hidden, hidden) matrix, so one dispatch computes all three).
    pub fn stack(parts: &[BlockMatrix]) -> Option<BlockMatrix> {
        let first = parts.first()?;
        if parts.iter().any(|p| p.format != first.format || p.cols != first.cols || p.block != first.block) {
            return None;
        }
        let mut m = first.clone();
        for p in &parts[1..] {
            m.rows += p.rows;
            m.values.extend_from_slice(&p.values);
            m.codes.extend_from_slice(&p.codes);
            m.scales.extend_from_slice(&p.scales);
        }
        Some(m)
    }

    /// Code of (r, c) as the low bits of a word slot, or 0 (the code of zero) past the row.
    fn packed_code(&self, r: usize, c: usize) -> u32 {
        if c >= self.cols {
            return match self.format {
                Format::Q4 => 8, // value + 8
                _ => 0,
            };
        }
        let code = self.codes[r * self.cols + c];
        match self.format {
            Format::Q4 => (code + 8) as u32 & 0xf,
            _ => code as u8 as u32,
        }
    }

    /// Word `w` of row `r` when the row (padded to `padded` values) is packed densely.
    fn row_word(&self, r: usize, w: usize) -> u32 {
        match self.format {
            Format::F32 => {
                let c = w;
                if c < self.cols { self.values[r * self.cols + c].to_bits() } else { 0 }
            }
            f => {
                let per = f.per_word();
                let bits = 32 / per;
                (0..per).fold(0u32, |acc, m| acc | self.packed_code(r, w * per + m) << (bits * m))
            }
        }
    }

    /// The layout `matmul.wgsl` reads: (words, scales), see the module docs.
    pub fn interleaved(&self) -> (Vec<u32>, Vec<f32>) {
        let kb_count = self.cols.div_ceil(GPU_BLOCK);
        let wpb = GPU_BLOCK / self.format.per_word();
        let mut words = vec![0u32; kb_count * wpb * self.rows];
        for kb in 0..kb_count {
            for j in 0..wpb {
                for r in 0..self.rows {
                    words[(kb * wpb + j) * self.rows + r] = self.row_word(r, kb * wpb + j);
                }
            }
        }
        let mut scales = Vec::new();
        if self.format != Format::F32 {
            // A per-row scale (block == cols) or a 32-block scale, seen per 32-block.
            let bpr = self.blocks_per_row();
            scales = vec![0.0; kb_count * self.rows];
            for kb in 0..kb_count {
                for r in 0..self.rows {
                    scales[kb * self.rows + r] = self.scales[r * bpr + (kb * GPU_BLOCK) / self.block];
                }
            }
        }
        (words, scales)
    }

    /// The layout `embed.wgsl` reads: each row's words back to back, then
    /// its scales; returns (words, scales, words per row).
    pub fn row_major(&self) -> (Vec<u32>, Vec<f32>, usize) {
        let row_words = self.cols.div_ceil(self.format.per_word());
        let mut words = Vec::with_capacity(self.rows * row_words);
        for r in 0..self.rows {
            words.extend((0..row_words).map(|w| self.row_word(r, w)));
        }
        (words, self.scales.clone(), row_words)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(rows: usize, cols: usize) -> Vec<f32> {
        (0..rows * cols).map(|i| ((i * 7919 % 1013) as f32 / 506.0 - 1.0) * if i % 17 == 0 { 4.0 } else { 1.0 }).collect()
    }

    #[test]
    fn widened_int4_holds_the_same_values() {
        let (rows, cols) = (3, 70);
        let m = BlockMatrix::from_stored(Scheme::Q4Block32, &quant::quantise(Scheme::Q4Block32, &data(rows, cols), rows, cols), rows, cols).unwrap();
        let w = m.clone().widened();
        assert_eq!(w.format, Format::Q8);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(w.value(r, c), m.value(r, c));
            }
        }
    }

    /// Decoding the GPU layouts on the CPU gives back exactly what dequantise gives.
    #[test]
    fn layouts_hold_exactly_the_stored_values() {
        let (rows, cols) = (5, 70);
        let d = data(rows, cols);
        for scheme in [Scheme::F32, Scheme::Q8Row, Scheme::Q8Block32, Scheme::Q4Block32] {
            let bytes = quant::quantise(scheme, &d, rows, cols);
            let want = quant::dequantise(scheme, &bytes, rows, cols).unwrap();
            let m = BlockMatrix::from_stored(scheme, &bytes, rows, cols).unwrap();
            let per = m.format.per_word();
            let bits = 32 / per;
            let decode = |word: u32, m_: usize| -> f32 {
                match m.format {
                    Format::F32 => f32::from_bits(word),
                    Format::Q8 => ((word >> (bits * m_)) & 0xff) as u8 as i8 as f32,
                    Format::Q4 => (((word >> (bits * m_)) & 0xf) as i32 - 8) as f32,
                }
            };
            let (words, scales) = m.interleaved();
            let (rwords, rscales, row_words) = m.row_major();
            let wpb = GPU_BLOCK / per;
            for r in 0..rows {
                for c in 0..cols {
                    let (kb, w, slot) = (c / GPU_BLOCK, (c % GPU_BLOCK) / per, c % per);
                    let s = if m.format == Format::F32 { 1.0 } else { scales[kb * rows + r] };
                    let got = decode(words[(kb * wpb + w) * rows + r], slot) * s;
                    assert_eq!(got, want[r * cols + c], "{scheme:?} interleaved [{r},{c}]");
                    let s = if m.format == Format::F32 { 1.0 } else { rscales[r * m.blocks_per_row() + c / m.block] };
                    let got = decode(rwords[r * row_words + c / per], slot) * s;
                    assert_eq!(got, want[r * cols + c], "{scheme:?} row-major [{r},{c}]");
                    assert_eq!(m.value(r, c), want[r * cols + c]);
                }
                // Padding past the row decodes to zero.
                for c in cols..cols.next_multiple_of(GPU_BLOCK) {
                    let (kb, w, slot) = (c / GPU_BLOCK, (c % GPU_BLOCK) / per, c % per);
                    assert_eq!(decode(words[(kb * wpb + w) * rows + r], slot), 0.0, "{scheme:?} padding [{r},{c}]");
                }
            }
        }
    }

    #[test]
    fn stacking_appends_rows() {
        let a = BlockMatrix::from_stored(Scheme::Q8Block32, &quant::quantise(Scheme::Q8Block32, &data(2, 40), 2, 40), 2, 40).unwrap();
        let b = BlockMatrix::from_stored(Scheme::Q8Block32, &quant::quantise(Scheme::Q8Block32, &data(3, 40), 3, 40), 3, 40).unwrap();
        let s = BlockMatrix::stack(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(s.rows, 5);
        assert_eq!(s.value(3, 39), b.value(1, 39));
        assert_eq!(s.value(1, 7), a.value(1, 7));
        let f = BlockMatrix::from_stored(Scheme::F32, &quant::quantise(Scheme::F32, &data(2, 40), 2, 40), 2, 40).unwrap();
        assert!(BlockMatrix::stack(&[a, f]).is_none());
    }
}
