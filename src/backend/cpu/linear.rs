//! The f32 dense layer: a register-tiled micro-kernel over weights packed into
//! column panels, compiled twice (AVX2+FMA, and portable) and chosen at run
//! time. It serves f32 models and is the oracle the GPU matmul is tested against.

/// Columns per packed weight panel: two 8-lane AVX registers.
const PANEL: usize = 16;
/// Rows of the activation matrix handled together by the micro-kernel.
const ROWS: usize = 4;

/// A dense layer `y = x W^T + b` with `W` of shape (out, in) as stored by PyTorch,
/// repacked at load time into panels of [`PANEL`] output columns:
/// `panels[p][k][c] = W[p*PANEL + c][k]` (zero past `out`).
#[derive(Debug, Clone)]
pub struct Linear {
    /// Input features.
    pub in_dim: usize,
    /// Output features.
    pub out_dim: usize,
    /// Packed weights, `ceil(out/PANEL) * in * PANEL` floats.
    panels: Vec<f32>,
    /// Bias, `out` floats.
    bias: Vec<f32>,
}

impl Linear {
    /// Packs a row-major (out, in) weight matrix and its bias.
    pub fn new(weight: &[f32], bias: &[f32], out_dim: usize, in_dim: usize) -> Self {
        assert_eq!(weight.len(), out_dim * in_dim, "weight is not (out, in)");
        assert_eq!(bias.len(), out_dim, "bias is not (out,)");
        let n_panels = out_dim.div_ceil(PANEL);
        let mut panels = vec![0.0f32; n_panels * in_dim * PANEL];
        for o in 0..out_dim {
            let (p, c) = (o / PANEL, o % PANEL);
            for k in 0..in_dim {
                panels[(p * in_dim + k) * PANEL + c] = weight[o * in_dim + k];
            }
        }
        Linear { in_dim, out_dim, panels, bias: bias.to_vec() }
    }

    /// Stacks several layers that read the same input into one (e.g. Q, K and V),
    /// so the input is read once: outputs are concatenated in the given order.
    pub fn concat(parts: &[(&[f32], &[f32], usize)], in_dim: usize) -> Self {
        let mut weight = Vec::new();
        let mut bias = Vec::new();
        let mut out_dim = 0;
        for (w, b, out) in parts {
            weight.extend_from_slice(w);
            bias.extend_from_slice(b);
            out_dim += out;
        }
        Linear::new(&weight, &bias, out_dim, in_dim)
    }

    /// x (rows, in) @ W^T (in, out) + b -> y (rows, out). `y` is overwritten.
    pub fn forward(&self, x: &[f32], rows: usize, y: &mut [f32]) {
        assert_eq!(x.len(), rows * self.in_dim);
        assert_eq!(y.len(), rows * self.out_dim);
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports the features the function is compiled for.
                unsafe { matmul_avx2(self, x, rows, y) };
                return;
            }
        }
        matmul_rows(self, x, rows, y);
    }
}

/// AVX2+FMA path. Panels are the outer loop, so each panel of weights is read
/// from memory once and reused from cache by every row: a short query pays for
/// the weights once, not once per row block.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn matmul_avx2(lin: &Linear, x: &[f32], rows: usize, y: &mut [f32]) {
    let n_panels = lin.out_dim.div_ceil(PANEL);
    for p in 0..n_panels {
        let mut r0 = 0;
        while r0 + ROWS <= rows {
            tile_avx2::<ROWS>(lin, x, r0, p, y);
            r0 += ROWS;
        }
        match rows - r0 {
            3 => tile_avx2::<3>(lin, x, r0, p, y),
            2 => tile_avx2::<2>(lin, x, r0, p, y),
            1 => tile_avx2::<1>(lin, x, r0, p, y),
            _ => {}
        }
    }
}

/// The micro-kernel: an R x 16 tile of y (rows r0.., panel p) lives in 2R
/// eight-lane registers while k runs over the panel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tile_avx2<const R: usize>(lin: &Linear, x: &[f32], r0: usize, p: usize, y: &mut [f32]) {
    use std::arch::x86_64::*;
    let (k_dim, out) = (lin.in_dim, lin.out_dim);
    let xp = x.as_ptr().add(r0 * k_dim);
    let wp = lin.panels.as_ptr().add(p * k_dim * PANEL);
    let mut acc0 = [_mm256_setzero_ps(); R];
    let mut acc1 = [_mm256_setzero_ps(); R];
    for k in 0..k_dim {
        let w0 = _mm256_loadu_ps(wp.add(k * PANEL));
        let w1 = _mm256_loadu_ps(wp.add(k * PANEL + 8));
        for r in 0..R {
            let xv = _mm256_set1_ps(*xp.add(r * k_dim + k));
            acc0[r] = _mm256_fmadd_ps(xv, w0, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(xv, w1, acc1[r]);
        }
    }
    let c_end = (out - p * PANEL).min(PANEL);
    let mut tile = [0.0f32; PANEL];
    for r in 0..R {
        _mm256_storeu_ps(tile.as_mut_ptr(), acc0[r]);
        _mm256_storeu_ps(tile.as_mut_ptr().add(8), acc1[r]);
        let yr = &mut y[(r0 + r) * out + p * PANEL..(r0 + r) * out + p * PANEL + c_end];
        for c in 0..c_end {
            yr[c] = tile[c] + lin.bias[p * PANEL + c];
        }
    }
}

/// The tiled loop: for each block of [`ROWS`] rows and each panel, accumulate a
/// ROWS x PANEL tile over k.
pub(crate) fn matmul_rows(lin: &Linear, x: &[f32], rows: usize, y: &mut [f32]) {
    let (k_dim, out) = (lin.in_dim, lin.out_dim);
    let n_panels = out.div_ceil(PANEL);
    let mut r0 = 0;
    while r0 < rows {
        let nr = (rows - r0).min(ROWS);
        for p in 0..n_panels {
            let panel = &lin.panels[p * k_dim * PANEL..(p + 1) * k_dim * PANEL];
            let mut acc = [[0.0f32; PANEL]; ROWS];
            if nr == ROWS {
                let xs: [&[f32]; ROWS] = std::array::from_fn(|r| &x[(r0 + r) * k_dim..(r0 + r + 1) * k_dim]);
                for (k, w) in panel.chunks_exact(PANEL).enumerate() {
                    for r in 0..ROWS {
                        let xv = xs[r][k];
                        for c in 0..PANEL {
                            acc[r][c] += xv * w[c];
                        }
                    }
                }
            } else {
                for r in 0..nr {
                    let xr = &x[(r0 + r) * k_dim..(r0 + r + 1) * k_dim];
                    for (k, w) in panel.chunks_exact(PANEL).enumerate() {
                        let xv = xr[k];
                        for c in 0..PANEL {
                            acc[r][c] += xv * w[c];
                        }
                    }
                }
            }
            let c_end = (out - p * PANEL).min(PANEL);
            for r in 0..nr {
                let yr = &mut y[(r0 + r) * out + p * PANEL..(r0 + r) * out + p * PANEL + c_end];
                for c in 0..c_end {
                    yr[c] = acc[r][c] + lin.bias[p * PANEL + c];
                }
            }
        }
        r0 += nr;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain triple loop: the oracle for the tiled kernel.
    fn reference(w: &[f32], b: &[f32], x: &[f32], rows: usize, out: usize, inp: usize) -> Vec<f32> {
        let mut y = vec![0.0; rows * out];
        for r in 0..rows {
            for o in 0..out {
                let mut s = b[o] as f64;
                for k in 0..inp {
                    s += x[r * inp + k] as f64 * w[o * inp + k] as f64;
                }
                y[r * out + o] = s as f32;
            }
        }
        y
    }

    #[test]
    fn tiled_matmul_matches_reference_on_awkward_shapes() {
        const TOL: f32 = 1e-4;
        let mut seed = 12345u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 2001) as f32 / 1000.0 - 1.0
        };
        for &(rows, out, inp) in &[(1, 1, 1), (3, 17, 5), (4, 16, 8), (7, 33, 31), (9, 100, 64), (2, 5, 384)] {
            let w: Vec<f32> = (0..out * inp).map(|_| rnd()).collect();
            let b: Vec<f32> = (0..out).map(|_| rnd()).collect();
            let x: Vec<f32> = (0..rows * inp).map(|_| rnd()).collect();
            let lin = Linear::new(&w, &b, out, inp);
            let mut y = vec![f32::NAN; rows * out];
            lin.forward(&x, rows, &mut y);
            let want = reference(&w, &b, &x, rows, out, inp);
            for (i, (g, e)) in y.iter().zip(&want).enumerate() {
                assert!((g - e).abs() <= TOL * (1.0 + e.abs()), "shape {rows}x{out}x{inp} index {i}: got {g}, expected {e}");
            }
            let mut y2 = vec![f32::NAN; rows * out];
            matmul_rows(&lin, &x, rows, &mut y2);
            for (i, (g, e)) in y2.iter().zip(&want).enumerate() {
                assert!((g - e).abs() <= TOL * (1.0 + e.abs()), "portable path, shape {rows}x{out}x{inp} index {i}: got {g}, expected {e}");
            }
        }
    }
}
