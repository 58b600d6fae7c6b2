//! Vectorisable element-wise math: exp, exact GELU, softmax, LayerNorm, residual
//! adds, pooling. Each body is branch-free scalar code over slices that the
//! compiler vectorises; [`dispatch`] compiles it once per instruction set and
//! picks the clone at run time (natively) or at build time (wasm32 `simd128`).
//!
//! Accuracy: `exp` is a degree-7 Taylor polynomial after range reduction (relative
//! error below 3e-7, a couple of f32 roundings, for arguments in [-87, 0]); GELU uses erf from Abramowitz & Stegun
//! 7.1.26 (absolute error below 1.5e-7 in erf), written so that 1 + erf(x) for
//! negative x is computed as erfc(|x|) without cancellation. Both are tested
//! against `libm` in this file.

use super::isa::Isa;

/// Compiles `$body` (an `#[inline(always)]` function) for AVX-512, AVX2 and
/// portable, and defines `$name(isa, args..)` choosing among them.
macro_rules! dispatch {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? = $body:path;) => {
        $(#[$m])*
        $vis fn $name(isa: Isa, $($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
                unsafe fn v512($($arg: $ty),*) $(-> $ret)? { $body($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v256($($arg: $ty),*) $(-> $ret)? { $body($($arg),*) }
                match isa {
                    // SAFETY: `supported` checked the CPU for the features each clone is compiled for.
                    Isa::Avx512 if Isa::Avx512.supported() => return unsafe { v512($($arg),*) },
                    Isa::Avx2 | Isa::Avx512 if Isa::Avx2.supported() => return unsafe { v256($($arg),*) },
                    _ => {}
                }
            }
            let _ = isa;
            $body($($arg),*)
        }
    };
}
pub(crate) use dispatch;

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two so that n * LN2_HI is exact for the n that occur.
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;

/// `x` rounded to the nearest integer, ties to even, for |x| < 2^22: adding and
/// subtracting 1.5 * 2^23 leaves no fraction bits. Two additions on every
/// target, where `f32::round` (ties away from zero) has no instruction on
/// wasm32 or baseline x86-64 and becomes a call to `roundf` per element, which
/// also stops the loop around it from vectorising.
#[inline(always)]
pub fn round_small(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    (x + MAGIC) - MAGIC
}

/// e^a for a <= 0 (a below -87 gives e^-87, about 1.6e-38).
#[inline(always)]
pub fn exp_neg(a: f32) -> f32 {
    let a = a.clamp(-87.0, 0.0);
    let n = round_small(a * LOG2E);
    let r = a - n * LN2_HI - n * LN2_LO; // |r| <= ln2 / 2
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // 2^n by building the exponent bits; n >= -126 here.
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// Exact GELU, x * (1 + erf(x / sqrt 2)) / 2, to about 1e-7 absolute.
#[inline(always)]
pub fn gelu_scalar(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_7, -1.453_152_1, 1.061_405_4];
    let u = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + P * u);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let erfc = poly * exp_neg(-u * u); // erfc(|x| / sqrt 2)
    let one_plus_erf = if x < 0.0 { erfc } else { 2.0 - erfc };
    0.5 * x * one_plus_erf
}

#[inline(always)]
fn gelu_body(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = gelu_scalar(*v);
    }
}

dispatch! {
    /// GELU in place.
    pub fn gelu(x: &mut [f32]) = gelu_body;
}

/// The body of [`softmax_scaled`], for kernels that inline it under their own features.
#[inline(always)]
pub(crate) fn softmax_body(row: &mut [f32], scale: f32) {
    let mut max = f32::NEG_INFINITY;
    for &v in row.iter() {
        max = max.max(v);
    }
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = exp_neg((*v - max) * scale);
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

dispatch! {
    /// softmax(row * scale) in place (scale > 0), max-subtracted.
    pub fn softmax_scaled(row: &mut [f32], scale: f32) = softmax_body;
}

#[inline(always)]
fn layer_norm_body(src: &[f32], dst: &mut [f32], dim: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    for (s, d) in src.chunks_exact(dim).zip(dst.chunks_exact_mut(dim)) {
        let mut sum = 0.0;
        for &v in s {
            sum += v;
        }
        let mean = sum / dim as f32;
        let mut var = 0.0;
        for &v in s {
            var += (v - mean) * (v - mean);
        }
        let inv = 1.0 / (var / dim as f32 + eps).sqrt();
        for (((o, &v), &g), &b) in d.iter_mut().zip(s).zip(gamma).zip(beta) {
            *o = (v - mean) * inv * g + b;
        }
    }
}

dispatch! {
    /// dst (rows, dim) = LayerNorm(src (rows, dim)) row by row.
    pub fn layer_norm(src: &[f32], dst: &mut [f32], dim: usize, gamma: &[f32], beta: &[f32], eps: f32) = layer_norm_body;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every family this machine runs, and the names of those it cannot (reported, not hidden).
    fn isas() -> Vec<Isa> {
        let (run, skip): (Vec<Isa>, Vec<Isa>) = Isa::ALL.into_iter().partition(|i| i.supported());
        if !skip.is_empty() {
            eprintln!("vmath: skipping {:?} (not supported here)", skip.iter().map(|i| i.name()).collect::<Vec<_>>());
        }
        run
    }

    #[test]
    fn exp_matches_libm_to_relative_3e_7() {
        const REL: f32 = 3e-7;
        for i in 0..=87_000 {
            let a = -(i as f32) * 0.001;
            let (got, want) = (exp_neg(a), libm::expf(a));
            assert!((got - want).abs() <= REL * want + 1e-38, "exp({a}) = {got}, expected {want}");
        }
        assert_eq!(exp_neg(0.0), 1.0);
        assert!(exp_neg(-1000.0) > 0.0 && exp_neg(-1000.0) < 1e-37);
    }

    #[test]
    fn round_small_is_round_ties_even_below_2_pow_22() {
        let mut x = -40_000.0f32;
        while x < 40_000.0 {
            for v in [x, x + 0.5, x + 0.25, x + 0.75, x + 0.499_999_97, -x - 0.5] {
                assert_eq!(round_small(v), v.round_ties_even(), "{v}");
            }
            x += 0.937;
        }
        for v in [0.0f32, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, 127.49, -127.5, 32767.4, 4_194_303.5] {
            assert_eq!(round_small(v), v.round_ties_even(), "{v}");
        }
    }

    #[test]
    fn gelu_matches_erf_on_every_path() {
        const ABS: f32 = 2e-7;
        let xs: Vec<f32> = (-12_000..=12_000).map(|i| i as f32 * 0.001).chain([-40.0, 40.0, 0.0, -0.0]).collect();
        for isa in isas() {
            let mut got = xs.clone();
            gelu(isa, &mut got);
            for (&x, &g) in xs.iter().zip(&got) {
                let want = 0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2));
                assert!((g - want).abs() <= ABS * (1.0 + x.abs()), "{}: gelu({x}) = {g}, expected {want}", isa.name());
            }
        }
    }

    #[test]
    fn softmax_and_layer_norm_match_the_reference_kernels() {
        const TOL: f32 = 1e-5;
        let mut seed = 7u32;
        let mut rnd = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1 << 24) as f32 * 8.0 - 4.0
        };
        for isa in isas() {
            for n in [1, 3, 17, 64, 255] {
                let row: Vec<f32> = (0..n).map(|_| rnd() * 10.0).collect();
                let mut want: Vec<f32> = row.iter().map(|v| v * 0.25).collect();
                super::super::ops::softmax(&mut want);
                let mut got = row.clone();
                softmax_scaled(isa, &mut got, 0.25);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!((g - w).abs() <= TOL, "{} softmax n={n} index {i}: got {g}, expected {w}", isa.name());
                }
                let gamma: Vec<f32> = (0..n).map(|_| rnd()).collect();
                let beta: Vec<f32> = (0..n).map(|_| rnd()).collect();
                let x: Vec<f32> = (0..3 * n).map(|_| rnd()).collect();
                let mut want = x.clone();
                super::super::ops::layer_norm(&mut want, n, &gamma, &beta, 1e-12);
                let mut got = vec![f32::NAN; 3 * n];
                layer_norm(isa, &x, &mut got, n, &gamma, &beta, 1e-12);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!((g - w).abs() <= TOL * (1.0 + w.abs()), "{} layer norm n={n} index {i}: got {g}, expected {w}", isa.name());
                }
            }
        }
    }
}
