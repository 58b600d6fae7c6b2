//! The WebGPU compute backend: the encoder and the index ranking as WGSL
//! kernels (`shaders/`), run natively through wgpu (Vulkan, Metal, DX12; Mesa's
//! lavapipe in CI) and in the browser through WebGPU.
//!
//! * [`context`]: adapter and device setup (optional features, limits) and the
//!   capture of validation errors and device loss, so a failure becomes an
//!   [`Error::Gpu`](crate::Error::Gpu) the caller can fall back from.
//! * [`kernels`]: the shader sources and their pipelines.
//! * [`weights`]: weight matrices converted to the layouts the kernels read.
//! * [`ops`]: one-kernel entry points, used by the parity tests.
//! * [`encoder`]: the whole BERT forward pass in one command buffer per batch.
//! * [`ranker`]: cosine scoring of a query against int8 index vectors with
//!   GPU-side top-k.
//!
//! Every kernel is checked against the CPU reference in `backend::cpu` by
//! `tests/gpu.rs`.

pub mod context;
pub mod encoder;
pub mod kernels;
pub mod ops;
pub mod ranker;
pub mod selftest;
pub mod weights;

pub use context::GpuContext;
pub use encoder::GpuEncoder;
pub use ranker::GpuRanker;

/// Blocks on a future natively (wgpu's native futures resolve once the device
/// is polled, which the readback does itself).
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}
