//! The quantised matmul on wasm32 SIMD, single-threaded.
//!
//! Int16 layers: `i32x4.dot_i16x8_s` of four weight columns x 2 inputs with the
//! broadcast pair of activation codes gives one i32 per column directly.
//! Int8 layers, with `relaxed-simd` compiled in: `i32x4.relaxed_dot_i8x16_i7x16_add_s`
//! does what `vpdpbusd` does natively, 16 products added in fours; its second
//! operand is |q| (at most 127, so every engine gives the same integers) and
//! q's sign is moved onto the weights. Without relaxed-simd, int8 codes are
//! widened to i16 and multiplied with `dot_i16x8`, two partial sums per
//! column, folded at the end of each block.

use super::qlinear::{ActBits, Epilogue, QActs, QLinear, QBLOCK, QPANEL};
use core::arch::wasm32::*;

/// Rows per tile.
const ROWS: usize = 4;

/// a (rows, kp) @ W^T -> y (rows, out) with the epilogue.
pub fn matmul(w: &QLinear, a: &QActs, y: &mut [f32], epi: Epilogue) {
    for p in 0..w.n_panels() {
        let mut r0 = 0;
        while r0 < a.rows {
            let nr = (a.rows - r0).min(ROWS);
            match nr {
                4 => tile::<4>(w, a, r0, p, y, &epi),
                3 => tile::<3>(w, a, r0, p, y, &epi),
                2 => tile::<2>(w, a, r0, p, y, &epi),
                _ => tile::<1>(w, a, r0, p, y, &epi),
            }
            r0 += nr;
        }
    }
}

/// Loads 16 bytes at `p`.
#[inline(always)]
fn load(bytes: &[u8], at: usize) -> v128 {
    assert!(at + 16 <= bytes.len());
    // SAFETY: checked just above; v128_load has no alignment requirement.
    unsafe { v128_load(bytes.as_ptr().add(at).cast()) }
}

/// Four consecutive activation bytes (codes) at `at`, as a u32 to broadcast.
#[inline(always)]
fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Exact integer sums of block `b` for R rows x 16 columns: 4 vectors of 4 columns per row.
#[inline(always)]
fn block_sums<const R: usize>(w: &QLinear, a: &QActs, p: usize, r0: usize, b: usize) -> [[v128; 4]; R] {
    let kp = w.kp;
    let mut acc = [[i32x4_splat(0); 4]; R];
    if w.bits == ActBits::Int16 {
        let panel: &[u8] = bytemuck::cast_slice(&w.panels16[p * kp * QPANEL..(p + 1) * kp * QPANEL]);
        let codes: &[u8] = bytemuck::cast_slice(&a.codes16[r0 * kp..(r0 + R) * kp]);
        for g in b * QBLOCK / 2..(b + 1) * QBLOCK / 2 {
            let wv: [v128; 4] = std::array::from_fn(|q| load(panel, g * 64 + 16 * q));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let xv = u32x4_splat(word(codes, r * kp * 2 + g * 4));
                for q in 0..4 {
                    acc_r[q] = i32x4_add(acc_r[q], i32x4_dot_i16x8(wv[q], xv));
                }
            }
        }
        return acc;
    }
    let panel: &[u8] = bytemuck::cast_slice(&w.panels8[p * kp * QPANEL..(p + 1) * kp * QPANEL]);
    let codes: &[u8] = bytemuck::cast_slice(&a.codes8[r0 * kp..(r0 + R) * kp]);
    #[cfg(target_feature = "relaxed-simd")]
    for g in b * QBLOCK / 4..(b + 1) * QBLOCK / 4 {
        let wv: [v128; 4] = std::array::from_fn(|q| load(panel, g * 64 + 16 * q));
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let xv = u32x4_splat(word(codes, r * kp + g * 4));
            let (ax, neg) = (i8x16_abs(xv), i8x16_shr(xv, 7));
            for q in 0..4 {
                // (w ^ neg) - neg is w with q's sign: -w where q < 0.
                let ws = i8x16_sub(v128_xor(wv[q], neg), neg);
                acc_r[q] = i32x4_relaxed_dot_i8x16_i7x16_add(ws, ax, acc_r[q]);
            }
        }
    }
    #[cfg(not(target_feature = "relaxed-simd"))]
    {
        // Per 16 bytes of weights (4 columns x 4 inputs) two i16x8 halves; lanes of
        // the dot products are (column, input pair) partial sums, folded below.
        let mut part = [[[i32x4_splat(0); 2]; 4]; R];
        for g in b * QBLOCK / 4..(b + 1) * QBLOCK / 4 {
            let mut wv = [[i16x8_splat(0); 2]; 4];
            for (q, wq) in wv.iter_mut().enumerate() {
                let v = load(panel, g * 64 + 16 * q);
                *wq = [i16x8_extend_low_i8x16(v), i16x8_extend_high_i8x16(v)];
            }
            for r in 0..R {
                // [x0 x1 x2 x3] as i16, twice.
                let xv = i16x8_extend_low_i8x16(u32x4_splat(word(codes, r * kp + g * 4)));
                for q in 0..4 {
                    part[r][q][0] = i32x4_add(part[r][q][0], i32x4_dot_i16x8(wv[q][0], xv));
                    part[r][q][1] = i32x4_add(part[r][q][1], i32x4_dot_i16x8(wv[q][1], xv));
                }
            }
        }
        for r in 0..R {
            for q in 0..4 {
                // lanes (c0a, c0b, c1a, c1b) and (c2a, c2b, c3a, c3b) -> (c0, c1, c2, c3)
                let (lo, hi) = (part[r][q][0], part[r][q][1]);
                acc[r][q] = i32x4_add(i32x4_shuffle::<0, 2, 4, 6>(lo, hi), i32x4_shuffle::<1, 3, 5, 7>(lo, hi));
            }
        }
    }
    acc
}

/// One R x 16 tile of y: rows r0.., panel p.
#[inline(always)]
fn tile<const R: usize>(w: &QLinear, a: &QActs, r0: usize, p: usize, y: &mut [f32], epi: &Epilogue) {
    let (kp, out) = (w.kp, w.out_dim);
    let nb = kp / QBLOCK;
    let wide = w.bits == ActBits::Int16;
    let scales = &w.scales[p * nb * QPANEL..(p + 1) * nb * QPANEL];
    let mut facc = [[f32x4_splat(0.0); 4]; R];
    for b in 0..nb {
        let sums = block_sums::<R>(w, a, p, r0, b);
        for q in 0..4 {
            let s = load(bytemuck::cast_slice(scales), (b * QPANEL + 4 * q) * 4);
            for r in 0..R {
                let s = if wide { s } else { f32x4_mul(s, f32x4_splat(a.scales[(r0 + r) * nb + b])) };
                facc[r][q] = f32x4_add(facc[r][q], f32x4_mul(f32x4_convert_i32x4(sums[r][q]), s));
            }
        }
    }
    let o0 = p * QPANEL;
    let valid = (out - o0).min(QPANEL);
    for r in 0..R {
        let row = r0 + r;
        let sx = f32x4_splat(if wide { a.scales[row] } else { 1.0 });
        let mut t = [0.0f32; QPANEL];
        for q in 0..4 {
            let bs = load(bytemuck::cast_slice(&w.bias), (o0 + 4 * q) * 4);
            let v = f32x4_add(f32x4_mul(sx, facc[r][q]), bs);
            // SAFETY: t holds 16 floats; this stores 4 of them.
            unsafe { v128_store(t.as_mut_ptr().add(4 * q).cast(), v) };
        }
        let at = row * out + o0;
        match epi {
            Epilogue::None => {}
            Epilogue::Gelu => t.iter_mut().for_each(|e| *e = super::vmath::gelu_scalar(*e)),
            Epilogue::Residual(res) => t[..valid].iter_mut().zip(&res[at..at + valid]).for_each(|(e, r)| *e += r),
        }
        y[at..at + valid].copy_from_slice(&t[..valid]);
    }
}
