//! The quantised matmul in plain Rust: every target, and the fallback on CPUs
//! without AVX2. Tiles of [`ROWS`] rows x one 16-column panel; the integer sums
//! of a block are exact, then scaled (see `qlinear`'s module docs).

use super::qlinear::{finish, ActBits, Epilogue, QActs, QLinear, QBLOCK, QPANEL};

/// Activation rows per tile.
const ROWS: usize = 4;

/// a (rows, kp) @ W^T -> y (rows, out) with the epilogue. Offset codes are not expected.
pub fn matmul(w: &QLinear, a: &QActs, y: &mut [f32], epi: Epilogue) {
    let (kp, out) = (w.kp, w.out_dim);
    let nb = kp / QBLOCK;
    let wide = w.bits == ActBits::Int16;
    let mut r0 = 0;
    while r0 < a.rows {
        let nr = (a.rows - r0).min(ROWS);
        for p in 0..w.n_panels() {
            let scales = &w.scales[p * nb * QPANEL..(p + 1) * nb * QPANEL];
            let mut acc = [[0.0f32; QPANEL]; ROWS];
            for b in 0..nb {
                let mut iacc = [[0i32; QPANEL]; ROWS];
                for (r, ia) in iacc.iter_mut().enumerate().take(nr) {
                    let row = (r0 + r) * kp;
                    if wide {
                        let panel = &w.panels16[p * kp * QPANEL..(p + 1) * kp * QPANEL];
                        for g in b * QBLOCK / 2..(b + 1) * QBLOCK / 2 {
                            let (x0, x1) = (a.codes16[row + 2 * g] as i32, a.codes16[row + 2 * g + 1] as i32);
                            let wg = &panel[g * 2 * QPANEL..(g + 1) * 2 * QPANEL];
                            for c in 0..QPANEL {
                                ia[c] += x0 * wg[2 * c] as i32 + x1 * wg[2 * c + 1] as i32;
                            }
                        }
                    } else {
                        let panel = &w.panels8[p * kp * QPANEL..(p + 1) * kp * QPANEL];
                        for g in b * QBLOCK / 4..(b + 1) * QBLOCK / 4 {
                            let x = &a.codes8[row + 4 * g..row + 4 * g + 4];
                            let wg = &panel[g * 4 * QPANEL..(g + 1) * 4 * QPANEL];
                            for c in 0..QPANEL {
                                let wc = &wg[4 * c..4 * c + 4];
                                ia[c] += x[0] as i32 * wc[0] as i32 + x[1] as i32 * wc[1] as i32 + x[2] as i32 * wc[2] as i32 + x[3] as i32 * wc[3] as i32;
                            }
                        }
                    }
                }
                for r in 0..nr {
                    // Int8 scales activations per block, Int16 per row (applied below).
                    let sx = if wide { 1.0 } else { a.scales[(r0 + r) * nb + b] };
                    for c in 0..QPANEL {
                        acc[r][c] += iacc[r][c] as f32 * (scales[b * QPANEL + c] * sx);
                    }
                }
            }
            let c_end = (out - p * QPANEL).min(QPANEL);
            for r in 0..nr {
                let row = r0 + r;
                let sx = if wide { a.scales[row] } else { 1.0 };
                for c in 0..c_end {
                    let o = p * QPANEL + c;
                    y[row * out + o] = finish(sx * acc[r][c] + w.bias[o], &epi, row * out + o);
                }
            }
        }
        r0 += nr;
    }
}
