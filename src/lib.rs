//! Cairn: related topics, a personal feed and answers for technical forums,
//! computed on the visitor's own device.
//!
//! One crate, two targets. Natively it is the `cairn` CLI that imports forum
//! data, embeds it and writes a static index; compiled to wasm32 it is the
//! engine the widget runs in a Web Worker. Both share the model code
//! ([`model`]), the index format ([`index::format`]) and the ranking ([`rank`]).
//! See ARCHITECTURE.md for the decisions behind the layout.

#![warn(missing_docs)]

pub mod backend;
pub mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod eval;
pub mod index;
pub mod ingest;
pub mod model;
pub mod quant;
pub mod rank;
pub mod assist;

#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
#[cfg(not(target_arch = "wasm32"))]
pub mod demo;
#[cfg(not(target_arch = "wasm32"))]
pub mod serve;
#[cfg(not(target_arch = "wasm32"))]
pub mod synthetic;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::{Error, Result};
