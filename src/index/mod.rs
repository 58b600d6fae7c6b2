//! The static index: what the CLI writes and the browser reads.
//!
//! * [`format`] defines every file once, for both sides.
//! * [`store`] reads an index shard by shard as queries need them, verifying each.
//! * [`search`] (vectors) and [`lexical`] (BM25) answer queries over a store,
//!   with the same code in the CLI and in the browser.
//! * [`passages`] and [`keywords`] derive what the index stores from a topic.
//! * Native only: [`prepare`] (topics to entries, reusing an earlier index's
//!   vectors), [`kmeans`] (the clusters) and [`build`] (shards and the atomic write).

pub mod format;
pub mod keywords;
pub mod lexical;
pub mod passages;
pub mod search;
pub mod store;

#[cfg(not(target_arch = "wasm32"))]
pub mod build;
#[cfg(not(target_arch = "wasm32"))]
pub mod kmeans;
#[cfg(not(target_arch = "wasm32"))]
pub mod prepare;

pub use format::{Manifest, TopicCard, TopicRef};
pub use search::Hit;
pub use store::{Step, Store};
