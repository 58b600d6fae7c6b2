//! CPU kernels for the encoder.
//!
//! * Reference kernels, small enough to read at a glance: [`Linear`] (f32, with
//!   an AVX2 tile) and [`ops`] (LayerNorm, GELU, softmax, attention, pooling).
//!   The GPU kernels and the fast paths below are tested against them.
//! * Fast paths, one file per kernel family, chosen by [`isa::Isa`] at run time
//!   natively (AVX-512 VNNI, AVX2, portable) and at build time in wasm32
//!   (`simd128`, `relaxed-simd`): [`qlinear`] (int8 weights x int8 activations,
//!   fused bias/GELU/residual epilogues) with its kernels `qavx512`, `qavx2`,
//!   `qwasm` and `qportable`; [`attend`] (batched attention); [`vmath`]
//!   (exp, GELU, softmax, LayerNorm).

pub mod attend;
pub mod isa;
mod linear;
pub mod ops;
#[cfg(target_arch = "x86_64")]
mod qavx2;
#[cfg(target_arch = "x86_64")]
mod qavx512;
pub mod qlinear;
mod qportable;
#[cfg(target_arch = "wasm32")]
mod qwasm;
pub mod vmath;

pub use linear::Linear;
pub use ops::{add_in_place, attention, dot, gelu, l2_normalize, layer_norm, mean_rows, softmax};
