//! The engine the widget runs in a Web Worker (wasm32 only).
//!
//! JavaScript fetches the manifest and the files it lists and hands their bytes
//! in; everything else (verification, parsing, ranking) happens here, with the
//! same code as the CLI. `compute` (feature `compute`) holds the encoder and the
//! vector ranking, on WebGPU or the CPU; it lives in a separate, larger wasm
//! module so that related topics never pay for the model code.

#[cfg(feature = "compute")]
pub mod compute;

use crate::index::format::Index;
use crate::rank;
use wasm_bindgen::prelude::*;

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// A loaded index, ready to answer.
#[wasm_bindgen]
pub struct Engine {
    index: Index,
}

#[wasm_bindgen]
impl Engine {
    /// The names of the files `manifest.json` lists, to fetch before [`Engine::load`].
    #[wasm_bindgen(js_name = filesToFetch)]
    pub fn files_to_fetch(manifest: &[u8]) -> Result<Vec<String>, JsError> {
        let m = Index::parse_manifest(manifest).map_err(js_err)?;
        Ok(m.files.into_iter().map(|f| f.name).collect())
    }

    /// Verifies and loads an index. `files` maps each listed file name to its bytes (Uint8Array).
    pub fn load(manifest: &[u8], files: &js_sys::Object) -> Result<Engine, JsError> {
        console_error_panic_hook::set_once();
        let m = Index::parse_manifest(manifest).map_err(js_err)?;
        let index = Index::load(m, |entry| {
            let v = js_sys::Reflect::get(files, &JsValue::from_str(&entry.name)).unwrap_or(JsValue::UNDEFINED);
            if v.is_undefined() {
                return Err(crate::error::Error::index(&entry.name, "was not fetched"));
            }
            Ok(js_sys::Uint8Array::new(&v).to_vec())
        })
        .map_err(js_err)?;
        Ok(Engine { index })
    }

    /// Number of topics in the index.
    #[wasm_bindgen(getter)]
    pub fn topics(&self) -> usize {
        self.index.topics.len()
    }

    /// Related topics for topic `id`: `{topic, related: [{id, title, url, score, tags, answers, accepted}]}`.
    pub fn related(&self, id: &str, k: usize) -> Result<JsValue, JsError> {
        let r = rank::related(&self.index, id, k).map_err(js_err)?;
        serde_wasm_bindgen::to_value(&r).map_err(js_err)
    }
}
