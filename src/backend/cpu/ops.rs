//! Reference kernels for everything but the matrix multiply: plain loops, small
//! enough to read at a glance, with shapes in comments. The fast forward pass
//! (`forward`, `vmath`, `attend`) and the GPU kernels are tested against them.

/// In place over each row of x (rows, dim): (x - mean) / sqrt(var + eps) * gamma + beta.
pub fn layer_norm(x: &mut [f32], dim: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(dim) {
        let mean = row.iter().sum::<f32>() / dim as f32;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / dim as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

/// x += r, element-wise (the residual connection).
pub fn add_in_place(x: &mut [f32], r: &[f32]) {
    for (a, b) in x.iter_mut().zip(r) {
        *a += b;
    }
}

/// Exact GELU, x * 0.5 * (1 + erf(x / sqrt 2)), in place (BERT's "gelu").
pub fn gelu(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = 0.5 * *v * (1.0 + libm::erff(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// Numerically stable softmax over one row, in place.
pub fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// Multi-head self-attention over one sequence with no padding.
///
/// qkv (n, 3*hidden) holds Q | K | V per row; ctx (n, hidden) receives the heads'
/// outputs side by side; scores is scratch of at least n*n floats.
pub fn attention(qkv: &[f32], n: usize, hidden: usize, heads: usize, ctx: &mut [f32], scores: &mut [f32]) {
    let d = hidden / heads;
    let scale = 1.0 / (d as f32).sqrt();
    let stride = 3 * hidden;
    for h in 0..heads {
        let (qo, ko, vo) = (h * d, hidden + h * d, 2 * hidden + h * d);
        for i in 0..n {
            let q = &qkv[i * stride + qo..i * stride + qo + d];
            let s = &mut scores[i * n..(i + 1) * n];
            for (j, sj) in s.iter_mut().enumerate() {
                let k = &qkv[j * stride + ko..j * stride + ko + d];
                *sj = dot(q, k) * scale;
            }
            softmax(s);
            let out = &mut ctx[i * hidden + h * d..i * hidden + (h + 1) * d];
            out.fill(0.0);
            for (j, &p) in s.iter().enumerate() {
                let v = &qkv[j * stride + vo..j * stride + vo + d];
                for (o, vv) in out.iter_mut().zip(v) {
                    *o += p * vv;
                }
            }
        }
    }
}

/// Dot product of two equal-length slices.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight partial sums let the compiler vectorise without reassociating.
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Mean over the rows of x (n, dim) -> out (dim,). An empty x gives zeros.
pub fn mean_rows(x: &[f32], n: usize, dim: usize, out: &mut [f32]) {
    out.fill(0.0);
    for row in x.chunks_exact(dim).take(n) {
        add_in_place(out, row);
    }
    if n > 0 {
        let inv = 1.0 / n as f32;
        out.iter_mut().for_each(|v| *v *= inv);
    }
}

/// Scales v to unit L2 norm (as torch.nn.functional.normalize, eps 1e-12).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_is_stable_for_large_inputs() {
        let mut row = [1000.0, 1001.0, 999.0];
        softmax(&mut row);
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6 && row.iter().all(|v| v.is_finite()), "{row:?}");
        assert!(row[1] > row[0] && row[0] > row[2]);
    }
}
