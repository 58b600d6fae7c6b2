//! The engine the widget runs in a Web Worker (wasm32 only).
//!
//! The worker creates an [`Engine`] from the index's `manifest.json`, then
//! asks it questions. An answer is either `{ready: value}` or `{need: [file
//! names]}`: the worker fetches those shards, hands their bytes to
//! [`Engine::add`] (which verifies each against the manifest), and asks again.
//! All ranking happens here, with the same code as the CLI; only the fetching
//! is JavaScript's. `compute` (feature `compute`) holds the encoder and the
//! vector ranking on WebGPU or the CPU; it lives in a separate, larger wasm
//! module so that related topics never pay for the model code.

#[cfg(feature = "compute")]
pub mod compute;

use crate::assist::{self, diagnose, AskOptions};
use crate::index::store::{Step, Store};
use crate::rank::{feed, related};
use serde::Serialize;
use std::collections::HashSet;
use wasm_bindgen::prelude::*;

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// `{need: [...]}` or `{ready: value}` for JavaScript.
fn step_to_js<T: Serialize>(step: crate::Result<Step<T>>) -> Result<JsValue, JsError> {
    #[derive(Serialize)]
    #[serde(rename_all = "lowercase")]
    enum Out<T> {
        Need(Vec<String>),
        Ready(T),
    }
    let out = match step.map_err(js_err)? {
        Step::Need(n) => Out::Need(n),
        Step::Ready(v) => Out::Ready(v),
    };
    out.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(js_err)
}

/// One index, loaded shard by shard as questions need them.
#[wasm_bindgen]
pub struct Engine {
    store: Store,
}

#[wasm_bindgen]
impl Engine {
    /// Opens the index whose `manifest.json` bytes are given.
    #[wasm_bindgen(constructor)]
    pub fn new(manifest: &[u8]) -> Result<Engine, JsError> {
        console_error_panic_hook::set_once();
        Ok(Engine { store: Store::from_manifest(manifest).map_err(js_err)? })
    }

    /// Verifies a fetched shard against the manifest and keeps it. A file that
    /// is not listed, or whose size or SHA-256 differs, is refused by name.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), JsError> {
        self.store.add(name, bytes).map_err(js_err)
    }

    /// Whether `name` is already loaded.
    pub fn has(&self, name: &str) -> bool {
        self.store.has(name)
    }

    /// Topics in the index.
    #[wasm_bindgen(getter)]
    pub fn topics(&self) -> usize {
        self.store.manifest.counts.topics
    }

    /// Bytes of shards added so far.
    #[wasm_bindgen(getter, js_name = bytesLoaded)]
    pub fn bytes_loaded(&self) -> f64 {
        self.store.bytes_loaded as f64
    }

    /// The model pack stored with the index (file name), if any: the encoder to load for questions.
    #[wasm_bindgen(getter, js_name = modelFile)]
    pub fn model_file(&self) -> Option<String> {
        self.store.model_file().map(|f| f.name.clone())
    }

    /// The model's width and description, for checks and display: `{name, weights_id, dim}`.
    #[wasm_bindgen(getter)]
    pub fn model(&self) -> Result<JsValue, JsError> {
        serde_wasm_bindgen::to_value(&self.store.manifest.model).map_err(js_err)
    }

    /// Related topics for topic `id`: `{topic, related: [{id, title, url, score, tags, answers, accepted, reason}]}`.
    /// `read` lists the ids the visitor has read (demoted).
    pub fn related(&self, id: &str, k: usize, read: Vec<String>) -> Result<JsValue, JsError> {
        let read: HashSet<String> = read.into_iter().collect();
        step_to_js(related::related(&self.store, id, k, &read))
    }

    /// How the assistant reads `text`: `{mode: "question"|"error", text (what to embed), terms}`.
    #[wasm_bindgen(js_name = prepareQuery)]
    pub fn prepare_query(text: &str) -> Result<JsValue, JsError> {
        serde_wasm_bindgen::to_value(&diagnose::prepare(text)).map_err(js_err)
    }

    /// The assistant's answer to `text`; `vector` is the embedding of
    /// `prepareQuery(text).text` by the index's model, or undefined to answer
    /// from words alone. `passages` = 0 returns threads only (the composer).
    /// `min_cosine` overrides the relevance bar (the composer uses a higher one).
    pub fn ask(&self, text: &str, vector: Option<Vec<f32>>, threads: usize, passages: usize, min_cosine: Option<f32>) -> Result<JsValue, JsError> {
        let query = diagnose::prepare(text);
        let mut opts = AskOptions { threads, passages, ..AskOptions::default() };
        if let Some(m) = min_cosine {
            opts.min_cosine = m;
        }
        if let Some(v) = &vector {
            if v.len() != self.store.manifest.model.dim {
                return Err(js_err(format!("the query vector has {} values; this index's model makes {}", v.len(), self.store.manifest.model.dim)));
            }
        }
        step_to_js(assist::ask(&self.store, &query, vector.as_deref(), opts))
    }

    /// The visitor's "for you" feed: `visits` is their history
    /// `[{id, last (days since 1970-01-01), seconds, clicked}]`, which stays in
    /// the browser; `now` is today in the same unit. Answers
    /// `{items: [{id, title, url, reason, ...}], interests: [{title, tags}]}`.
    pub fn feed(&self, visits: JsValue, k: usize, now: f64) -> Result<JsValue, JsError> {
        let visits: Vec<feed::Visit> = serde_wasm_bindgen::from_value(visits).map_err(js_err)?;
        step_to_js(feed::feed(&self.store, &visits, feed::FeedOptions { k, now }))
    }
}
