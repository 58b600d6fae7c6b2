//! The quantised matmul on AVX2. Int8 layers: `vpmaddubsw` multiplies |q| (u8)
//! by the weight codes with q's sign moved onto them (`vpsignb`) and adds pairs
//! into i16 (no saturation: 2 x 127 x 127 < 32768), `vpmaddwd` by ones adds
//! those pairs into i32. Int16 layers: `vpmaddwd` on i16 pairs directly. One
//! 16-column panel is two 8-lane halves; a tile is R rows x one panel, the rows
//! sharing each weight load.

use super::qlinear::{ActBits, Epilogue, QActs, QLinear, QBLOCK, QPANEL};
use std::arch::x86_64::*;

/// Rows per tile.
const ROWS: usize = 4;

/// a (rows, kp) @ W^T -> y (rows, out) with the epilogue. The caller checked the CPU.
pub fn matmul(w: &QLinear, a: &QActs, y: &mut [f32], epi: Epilogue) {
    // SAFETY: qlinear only calls this when Isa::Avx2 is supported.
    unsafe {
        match w.bits {
            ActBits::Int8 => matmul_avx2::<false>(w, a, y, &epi),
            ActBits::Int16 => matmul_avx2::<true>(w, a, y, &epi),
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn matmul_avx2<const WIDE: bool>(w: &QLinear, a: &QActs, y: &mut [f32], epi: &Epilogue) {
    for p in 0..w.n_panels() {
        let mut r0 = 0;
        while r0 < a.rows {
            let nr = (a.rows - r0).min(ROWS);
            match nr {
                4 => tile::<4, WIDE>(w, a, r0, p, y, epi),
                3 => tile::<3, WIDE>(w, a, r0, p, y, epi),
                2 => tile::<2, WIDE>(w, a, r0, p, y, epi),
                _ => tile::<1, WIDE>(w, a, r0, p, y, epi),
            }
            r0 += nr;
        }
    }
}

/// One R x 16 tile of y: rows r0.., panel p.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tile<const R: usize, const WIDE: bool>(w: &QLinear, a: &QActs, r0: usize, p: usize, y: &mut [f32], epi: &Epilogue) {
    let (kp, out) = (w.kp, w.out_dim);
    let nb = kp / QBLOCK;
    let steps = if WIDE { QBLOCK / 2 } else { QBLOCK / 4 };
    let panel_bytes = kp * QPANEL * if WIDE { 2 } else { 1 };
    let row_bytes = kp * if WIDE { 2 } else { 1 };
    // SAFETY (whole body): pointers stay inside panel p, rows r0..r0+R of `a`,
    // and the rows*out values of `y` and the residual; a partial panel is
    // finished through a stack buffer.
    let wp: *const u8 = if WIDE { w.panels16.as_ptr().cast() } else { w.panels8.as_ptr().cast() };
    let wp = wp.add(p * panel_bytes);
    let xp: *const u8 = if WIDE { a.codes16.as_ptr().add(r0 * kp).cast() } else { a.codes8.as_ptr().add(r0 * kp).cast() };
    let sp = w.scales.as_ptr().add(p * nb * QPANEL);
    let ones = _mm256_set1_epi16(1);
    let mut facc = [[_mm256_setzero_ps(); 2]; R];
    for b in 0..nb {
        let mut iacc = [[_mm256_setzero_si256(); 2]; R];
        for g in b * steps..(b + 1) * steps {
            let w0 = _mm256_loadu_si256(wp.add(g * 64).cast());
            let w1 = _mm256_loadu_si256(wp.add(g * 64 + 32).cast());
            for r in 0..R {
                let xv = _mm256_set1_epi32(xp.add(r * row_bytes + g * 4).cast::<i32>().read_unaligned());
                let (p0, p1) = if WIDE {
                    (_mm256_madd_epi16(xv, w0), _mm256_madd_epi16(xv, w1))
                } else {
                    let ax = _mm256_abs_epi8(xv);
                    let s0 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(w0, xv));
                    let s1 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(w1, xv));
                    (_mm256_madd_epi16(s0, ones), _mm256_madd_epi16(s1, ones))
                };
                iacc[r][0] = _mm256_add_epi32(iacc[r][0], p0);
                iacc[r][1] = _mm256_add_epi32(iacc[r][1], p1);
            }
        }
        let s0 = _mm256_loadu_ps(sp.add(b * QPANEL));
        let s1 = _mm256_loadu_ps(sp.add(b * QPANEL + 8));
        for r in 0..R {
            let sx = if WIDE { _mm256_set1_ps(1.0) } else { _mm256_set1_ps(a.scales[(r0 + r) * nb + b]) };
            facc[r][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[r][0]), _mm256_mul_ps(s0, sx), facc[r][0]);
            facc[r][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[r][1]), _mm256_mul_ps(s1, sx), facc[r][1]);
        }
    }
    let o0 = p * QPANEL;
    let valid = (out - o0).min(QPANEL);
    for r in 0..R {
        let row = r0 + r;
        let sx = _mm256_set1_ps(if WIDE { a.scales[row] } else { 1.0 });
        let mut t = [0.0f32; QPANEL];
        for h in 0..2 {
            let bs = _mm256_loadu_ps(w.bias.as_ptr().add(o0 + 8 * h));
            _mm256_storeu_ps(t.as_mut_ptr().add(8 * h), _mm256_fmadd_ps(sx, facc[r][h], bs));
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
