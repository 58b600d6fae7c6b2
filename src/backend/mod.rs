//! Compute backends. `cpu` holds the reference kernels (scalar, small enough to
//! read at a glance) and their fast paths; every other backend is tested against it.

pub mod cpu;
pub mod gpu;
