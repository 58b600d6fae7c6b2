//! The quantised matmul on AVX-512 VNNI. Int8 layers: `vpdpbusd` multiplies 64
//! u8 activation codes (q + 128) by 64 i8 weight codes and adds them in fours
//! into 16 i32 lanes, whose start value `-128 * sum c` cancels the offset.
//! Int16 layers: `vpdpwssd` does the same with 32 i16 pairs. One instruction per
//! step of 4 (or 2) inputs x 16 output columns.
//!
//! A tile is R rows x C panels (up to 6 x 2: 12 integer and 12 f32 accumulators,
//! 2 weight registers and a broadcast, 27 of 32 registers). Panel pairs are the
//! outer loop, so a pair's weights (12 KB for 384 int8 inputs) stay in L1 while
//! every row passes over them.

use super::qlinear::{ActBits, Epilogue, QActs, QLinear, QBLOCK, QPANEL};
use std::arch::x86_64::*;

/// Rows per tile.
const ROWS: usize = 6;
/// Panels per tile.
const PANELS: usize = 2;

/// a (rows, kp) @ W^T -> y (rows, out) with the epilogue. The caller checked the CPU.
pub fn matmul(w: &QLinear, a: &QActs, y: &mut [f32], epi: Epilogue) {
    // SAFETY: qlinear only calls this when Isa::Avx512 is supported.
    unsafe {
        match w.bits {
            ActBits::Int8 => matmul_vnni::<false>(w, a, y, &epi),
            ActBits::Int16 => matmul_vnni::<true>(w, a, y, &epi),
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
unsafe fn matmul_vnni<const WIDE: bool>(w: &QLinear, a: &QActs, y: &mut [f32], epi: &Epilogue) {
    let np = w.n_panels();
    let mut p = 0;
    while p < np {
        let c = (np - p).min(PANELS);
        let mut r0 = 0;
        while r0 < a.rows {
            let nr = (a.rows - r0).min(ROWS);
            macro_rules! go {
                ($($r:literal),*) => {
                    match (nr, c) {
                        $(($r, 2) => tile::<$r, 2, WIDE>(w, a, r0, p, y, epi),
                          ($r, _) => tile::<$r, 1, WIDE>(w, a, r0, p, y, epi),)*
                        _ => unreachable!(),
                    }
                };
            }
            go!(6, 5, 4, 3, 2, 1);
            r0 += nr;
        }
        p += c;
    }
}

/// One R x (16 C) tile of y: rows r0.., panels p0..p0+C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
#[inline]
unsafe fn tile<const R: usize, const C: usize, const WIDE: bool>(w: &QLinear, a: &QActs, r0: usize, p0: usize, y: &mut [f32], epi: &Epilogue) {
    let (kp, out) = (w.kp, w.out_dim);
    let nb = kp / QBLOCK;
    // Both layouts take 64 bytes per step: 4 int8 or 2 int16 inputs x 16 columns.
    let steps = if WIDE { QBLOCK / 2 } else { QBLOCK / 4 };
    let panel_bytes = kp * QPANEL * if WIDE { 2 } else { 1 };
    // SAFETY (whole body): every pointer stays inside its buffer: panels p0..p0+C
    // exist, rows r0..r0+R exist in `a`, and `y` and the residual were checked to
    // hold rows*out values; partial panels load and store through a mask.
    let wp: *const u8 = if WIDE { w.panels16.as_ptr().cast() } else { w.panels8.as_ptr().cast() };
    let wp = wp.add(p0 * panel_bytes);
    let xp: *const u8 = if WIDE { a.codes16.as_ptr().add(r0 * kp).cast() } else { a.codes8.as_ptr().add(r0 * kp).cast() };
    let row_bytes = kp * if WIDE { 2 } else { 1 };
    let sp = w.scales.as_ptr().add(p0 * nb * QPANEL);
    let fp = w.offset_fix.as_ptr().wrapping_add(p0 * nb * QPANEL);
    let mut facc = [[_mm512_setzero_ps(); C]; R];
    for b in 0..nb {
        let mut iacc = [[_mm512_setzero_si512(); C]; R];
        if !WIDE {
            for c in 0..C {
                let fix = _mm512_loadu_si512(fp.add((c * nb + b) * QPANEL).cast());
                for acc in iacc.iter_mut() {
                    acc[c] = fix;
                }
            }
        }
        for g in b * steps..(b + 1) * steps {
            let mut wv = [_mm512_setzero_si512(); C];
            for (c, v) in wv.iter_mut().enumerate() {
                *v = _mm512_loadu_si512(wp.add(c * panel_bytes + g * 64).cast());
            }
            for r in 0..R {
                let xv = _mm512_set1_epi32(xp.add(r * row_bytes + g * 4).cast::<i32>().read_unaligned());
                for c in 0..C {
                    iacc[r][c] = if WIDE { _mm512_dpwssd_epi32(iacc[r][c], xv, wv[c]) } else { _mm512_dpbusd_epi32(iacc[r][c], xv, wv[c]) };
                }
            }
        }
        for c in 0..C {
            let s = _mm512_loadu_ps(sp.add((c * nb + b) * QPANEL));
            for r in 0..R {
                // Int8: activation scale per row and block; Int16: per row, applied at the end.
                let s = if WIDE { s } else { _mm512_mul_ps(s, _mm512_set1_ps(*a.scales.get_unchecked((r0 + r) * nb + b))) };
                facc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc[r][c]), s, facc[r][c]);
            }
        }
    }
    for c in 0..C {
        let o0 = (p0 + c) * QPANEL;
        let valid = (out - o0).min(QPANEL);
        let mask: __mmask16 = if valid == QPANEL { 0xffff } else { (1u16 << valid) - 1 };
        let bs = _mm512_loadu_ps(w.bias.as_ptr().add(o0));
        for r in 0..R {
            let row = r0 + r;
            let mut v = if WIDE { _mm512_fmadd_ps(_mm512_set1_ps(a.scales[row]), facc[r][c], bs) } else { _mm512_add_ps(facc[r][c], bs) };
            let at = row * out + o0;
            match epi {
                Epilogue::None => {}
                Epilogue::Gelu => v = gelu16(v),
                Epilogue::Residual(res) => v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, res.as_ptr().add(at))),
            }
            _mm512_mask_storeu_ps(y.as_mut_ptr().add(at), mask, v);
        }
    }
}

/// GELU on 16 lanes (the scalar formula, vectorised by the compiler inside this target).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
#[inline]
unsafe fn gelu16(v: __m512) -> __m512 {
    let mut t = [0.0f32; 16];
    _mm512_storeu_ps(t.as_mut_ptr(), v);
    for e in t.iter_mut() {
        *e = super::vmath::gelu_scalar(*e);
    }
    _mm512_loadu_ps(t.as_ptr())
}
