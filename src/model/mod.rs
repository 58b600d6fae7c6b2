//! The sentence encoder: Hugging Face model files in, normalised embeddings out.
//!
//! [`ModelFiles`] holds the raw bytes of a model directory (so the same loading
//! code serves the CLI, reading files, and the browser, fetching them);
//! [`Encoder`] is the tokenizer plus the BERT forward pass plus pooling.

pub mod bert;
pub mod config;
#[cfg(not(target_arch = "wasm32"))]
pub mod fetch;
pub mod pack;
pub mod tokenizer;

use crate::error::{Error, Result};
use bert::{Bert, Checkpoint, Workspace};
use pack::Pack;
use config::{BertConfig, PoolingConfig, SentenceConfig};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokenizer::TextTokenizer;

/// Default truncation when a model has no `sentence_bert_config.json`.
pub const DEFAULT_MAX_SEQ_LEN: usize = 256;

/// The files of a Hugging Face sentence-transformers model, as bytes.
pub struct ModelFiles {
    /// Where they came from, for error messages.
    pub origin: PathBuf,
    /// `config.json`.
    pub config_json: Vec<u8>,
    /// `tokenizer.json`.
    pub tokenizer_json: Vec<u8>,
    /// `model.safetensors`.
    pub safetensors: Vec<u8>,
    /// `sentence_bert_config.json`, if present.
    pub sentence_config_json: Option<Vec<u8>>,
    /// `1_Pooling/config.json`, if present.
    pub pooling_json: Option<Vec<u8>>,
}

impl ModelFiles {
    /// Reads a model directory in Hugging Face layout.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_dir(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::model(dir, "is not a directory (run `cairn model fetch --out DIR` to get the model)"));
        }
        let need = |name: &str| std::fs::read(dir.join(name)).map_err(|e| Error::model(dir.join(name), format!("cannot read: {e}")));
        let maybe = |name: &str| std::fs::read(dir.join(name)).ok();
        Ok(ModelFiles {
            origin: dir.to_path_buf(),
            config_json: need("config.json")?,
            tokenizer_json: need("tokenizer.json")?,
            safetensors: need("model.safetensors")?,
            sentence_config_json: maybe("sentence_bert_config.json"),
            pooling_json: maybe("1_Pooling/config.json"),
        })
    }

    /// A short, stable identity of the weights: the first 16 hex digits of their SHA-256.
    /// An index records it so the browser can refuse a model that did not build it.
    pub fn weights_id(&self) -> String {
        short_sha256(&self.safetensors)
    }
}

/// First 16 hex digits of the SHA-256 of `bytes`.
fn short_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Truncation length of a model directory: `sentence_bert_config.json`'s max_seq_length, else 256, never past the position table.
/// Also checks that `1_Pooling/config.json`, if present, asks for mean pooling.
pub fn max_seq_len(files: &ModelFiles, config: &BertConfig) -> Result<usize> {
    let origin = &files.origin;
    if let Some(b) = &files.pooling_json {
        let pooling: PoolingConfig = parse_json(b, &origin.join("1_Pooling/config.json"))?;
        if !pooling.pooling_mode_mean_tokens || pooling.pooling_mode_cls_token || pooling.pooling_mode_max_tokens {
            return Err(Error::model(origin, "only mean pooling is supported (1_Pooling/config.json asks for another mode)"));
        }
    }
    let len = match &files.sentence_config_json {
        Some(b) => parse_json::<SentenceConfig>(b, &origin.join("sentence_bert_config.json"))?.max_seq_length,
        None => DEFAULT_MAX_SEQ_LEN,
    };
    Ok(len.min(config.max_position_embeddings))
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &Path) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::Json { what: what.display().to_string(), source })
}

/// Tokenizer + BERT + mean pooling + L2 normalisation: text in, unit vector out.
pub struct Encoder {
    tokenizer: TextTokenizer,
    bert: Bert,
    weights_id: String,
}

impl Encoder {
    /// Builds an encoder from model files, checking that they describe a
    /// mean-pooled BERT sentence encoder.
    pub fn load(files: &ModelFiles) -> Result<Self> {
        let origin = &files.origin;
        let config: BertConfig = parse_json(&files.config_json, &origin.join("config.json"))?;
        let max_len = max_seq_len(files, &config)?;
        let tokenizer = TextTokenizer::from_bytes(&files.tokenizer_json, max_len)?;
        let bert = Bert::load(config, &Checkpoint::new(&files.safetensors, origin)?, origin)?;
        Ok(Encoder { tokenizer, bert, weights_id: files.weights_id() })
    }

    /// Builds an encoder from a model pack (see [`pack`]). Its identity is the pack's own hash.
    pub fn load_pack(pack: &Pack) -> Result<Self> {
        let h = &pack.header;
        let tokenizer = TextTokenizer::from_bytes(pack.tokenizer_json(), h.max_seq_len)?;
        let bert = Bert::load(h.config.clone(), pack, &pack.origin)?;
        Ok(Encoder { tokenizer, bert, weights_id: short_sha256(pack.bytes()) })
    }

    /// Builds an encoder from parts: tokenizer.json bytes, truncation length, config and
    /// any source of weights. `weights_id` names the weights in index manifests.
    pub fn from_source(tokenizer_json: &[u8], max_len: usize, config: BertConfig, weights: &dyn bert::TensorSource, weights_id: String) -> Result<Self> {
        let tokenizer = TextTokenizer::from_bytes(tokenizer_json, max_len)?;
        let bert = Bert::load(config, weights, Path::new("(weights)"))?;
        Ok(Encoder { tokenizer, bert, weights_id })
    }

    /// Loads a model directory (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(dir: &Path) -> Result<Self> {
        Encoder::load(&ModelFiles::read_dir(dir)?)
    }

    /// Loads what `--model PATH` names: a Hugging Face model directory or a pack file (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &Path) -> Result<Self> {
        if path.is_file() {
            let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            Encoder::load_pack(&Pack::parse(bytes, path)?)
        } else {
            Encoder::from_dir(path)
        }
    }

    /// Embedding width (384 for MiniLM-L6).
    pub fn dim(&self) -> usize {
        self.bert.config.hidden_size
    }

    /// A short description of the architecture, e.g. "BERT 6x384, mean pooling, 256 tokens".
    pub fn describe(&self) -> String {
        let c = &self.bert.config;
        format!("BERT {}x{}, mean pooling, {} tokens", c.num_hidden_layers, c.hidden_size, self.tokenizer.max_len())
    }

    /// See [`ModelFiles::weights_id`].
    pub fn weights_id(&self) -> &str {
        &self.weights_id
    }

    /// Token ids of `text` as the encoder sees them (with [CLS]/[SEP], truncated).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer.encode(text)
    }

    /// Fresh scratch buffers for [`Encoder::embed_with`].
    pub fn workspace(&self) -> Workspace {
        Workspace::new(&self.bert.config, self.tokenizer.max_len())
    }

    /// The unit-length embedding (dim,) of `text`, reusing `ws`.
    pub fn embed_with(&self, text: &str, ws: &mut Workspace) -> Result<Vec<f32>> {
        let ids = self.tokenize(text)?;
        let mut out = vec![0.0; self.dim()];
        self.bert.embed(&ids, ws, &mut out)?;
        Ok(out)
    }

    /// The unit-length embedding (dim,) of `text`.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>> {
        self.embed_with(text, &mut self.workspace())
    }

    /// Embeddings of many texts, in order, on every core (native) or one (wasm).
    /// `progress` is called once per finished text.
    pub fn embed_many(&self, texts: &[String], progress: &(dyn Fn() + Sync)) -> Result<Vec<Vec<f32>>> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            use rayon::prelude::*;
            // Longest first, so the expensive texts do not all land at the end.
            let mut order: Vec<usize> = (0..texts.len()).collect();
            order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
            let done: Vec<(usize, Result<Vec<f32>>)> = order
                .par_iter()
                .map_init(|| self.workspace(), |ws, &i| {
                    let r = self.embed_with(&texts[i], ws);
                    progress();
                    (i, r)
                })
                .collect();
            let mut out = vec![Vec::new(); texts.len()];
            for (i, r) in done {
                out[i] = r?;
            }
            Ok(out)
        }
        #[cfg(target_arch = "wasm32")]
        {
            let mut ws = self.workspace();
            texts
                .iter()
                .map(|t| {
                    let r = self.embed_with(t, &mut ws);
                    progress();
                    r
                })
                .collect()
        }
    }
}
