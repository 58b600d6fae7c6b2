//! The static index: what the CLI writes and the browser reads.
//!
//! `format` defines the files once, for both sides; `build` writes them
//! (native only); `search` answers queries over a loaded [`format::Index`]
//! with the same code in the CLI and in the browser.

pub mod format;
pub mod search;
#[cfg(not(target_arch = "wasm32"))]
pub mod build;

pub use format::{Index, Manifest, TopicMeta};
pub use search::Hit;
