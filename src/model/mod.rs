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
///
/// The CPU path is always loaded; natively, [`Encoder::open_on`] can also put
/// the model on a GPU, which [`Encoder::embed_many`] then uses, falling back to
/// the CPU (and recording why) if the GPU fails while on [`Backend::Auto`].
pub struct Encoder {
    tokenizer: TextTokenizer,
    bert: Bert,
    weights_id: String,
    #[cfg(not(target_arch = "wasm32"))]
    gpu: std::sync::Mutex<GpuSlot>,
}

/// Which compute backend to run the encoder on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A hardware GPU when there is one, else the CPU. Software adapters
    /// (lavapipe, SwiftShader) are slower than the CPU path, so auto skips them.
    Auto,
    /// The GPU, whatever the adapter; failing to get one is an error.
    Gpu,
    /// The CPU.
    Cpu,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Backend::Auto),
            "gpu" => Ok(Backend::Gpu),
            "cpu" => Ok(Backend::Cpu),
            other => Err(format!("unknown backend {other:?} (expected auto, gpu or cpu)")),
        }
    }
}

/// The encoder's GPU, or why it has none.
#[cfg(not(target_arch = "wasm32"))]
enum GpuSlot {
    /// Not in use: the reason, for reports ("requested", "no adapter", a failure).
    Off(String),
    /// Ready; `required` when the user asked for the GPU (errors are not absorbed).
    On { gpu: Box<crate::backend::gpu::GpuEncoder>, required: bool },
}

/// Sequences per GPU batch (the token budget is the encoder's own limit).
#[cfg(not(target_arch = "wasm32"))]
const GPU_BATCH_SEQS: usize = 128;

/// What `--model PATH` named, read into memory: a pack or a model directory.
#[cfg(not(target_arch = "wasm32"))]
enum Loaded {
    Pack(Pack),
    Dir(ModelFiles),
}

#[cfg(not(target_arch = "wasm32"))]
impl Loaded {
    fn read(path: &Path) -> Result<Self> {
        if path.is_file() {
            let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            Ok(Loaded::Pack(Pack::parse(bytes, path)?))
        } else {
            Ok(Loaded::Dir(ModelFiles::read_dir(path)?))
        }
    }

    fn cpu_encoder(&self) -> Result<Encoder> {
        match self {
            Loaded::Pack(p) => Encoder::load_pack(p),
            Loaded::Dir(f) => Encoder::load(f),
        }
    }

    fn gpu_encoder(&self, ctx: std::sync::Arc<crate::backend::gpu::GpuContext>) -> Result<crate::backend::gpu::GpuEncoder> {
        use crate::backend::gpu::GpuEncoder;
        match self {
            Loaded::Pack(p) => GpuEncoder::new(ctx, p.header.config.clone(), p),
            Loaded::Dir(f) => {
                let config: BertConfig = parse_json(&f.config_json, &f.origin.join("config.json"))?;
                GpuEncoder::new(ctx, config, &Checkpoint::new(&f.safetensors, &f.origin)?)
            }
        }
    }
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
        Ok(Encoder::assemble(tokenizer, bert, files.weights_id()))
    }

    /// Builds an encoder from a model pack (see [`pack`]). Its identity is the pack's own hash.
    pub fn load_pack(pack: &Pack) -> Result<Self> {
        let h = &pack.header;
        let tokenizer = TextTokenizer::from_bytes(pack.tokenizer_json(), h.max_seq_len)?;
        let bert = Bert::load(h.config.clone(), pack, &pack.origin)?;
        Ok(Encoder::assemble(tokenizer, bert, short_sha256(pack.bytes())))
    }

    /// Builds an encoder from parts: tokenizer.json bytes, truncation length, config and
    /// any source of weights. `weights_id` names the weights in index manifests.
    pub fn from_source(tokenizer_json: &[u8], max_len: usize, config: BertConfig, weights: &dyn bert::TensorSource, weights_id: String) -> Result<Self> {
        let tokenizer = TextTokenizer::from_bytes(tokenizer_json, max_len)?;
        let bert = Bert::load(config, weights, Path::new("(weights)"))?;
        Ok(Encoder::assemble(tokenizer, bert, weights_id))
    }

    fn assemble(tokenizer: TextTokenizer, bert: Bert, weights_id: String) -> Self {
        Encoder {
            tokenizer,
            bert,
            weights_id,
            #[cfg(not(target_arch = "wasm32"))]
            gpu: std::sync::Mutex::new(GpuSlot::Off("CPU requested".into())),
        }
    }

    /// Loads a model directory (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(dir: &Path) -> Result<Self> {
        Encoder::load(&ModelFiles::read_dir(dir)?)
    }

    /// Loads what `--model PATH` names: a Hugging Face model directory or a pack file (native only), on the CPU.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &Path) -> Result<Self> {
        Loaded::read(path)?.cpu_encoder()
    }

    /// Loads `--model PATH` and puts it on `backend` (native only). With
    /// [`Backend::Gpu`], no adapter or a failed upload is an error; with
    /// [`Backend::Auto`] the encoder stays on the CPU and [`Encoder::backend`] says why.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open_on(path: &Path, backend: Backend) -> Result<Self> {
        use crate::backend::gpu::GpuContext;
        let loaded = Loaded::read(path)?;
        let enc = loaded.cpu_encoder()?;
        if backend == Backend::Cpu {
            return Ok(enc);
        }
        let attempt = GpuContext::new_blocking().and_then(|ctx| {
            if backend == Backend::Auto && ctx.is_software() {
                return Err(Error::Gpu(format!("only a software adapter ({}), slower than the CPU path", ctx.adapter)));
            }
            loaded.gpu_encoder(std::sync::Arc::new(ctx))
        });
        let slot = match attempt {
            Ok(gpu) => GpuSlot::On { gpu: Box::new(gpu), required: backend == Backend::Gpu },
            Err(e) if backend == Backend::Gpu => return Err(e),
            Err(e) => GpuSlot::Off(e.to_string()),
        };
        *enc.gpu.lock().expect("fresh lock") = slot;
        Ok(enc)
    }

    /// Which backend embeds, and on what or why: "gpu: <adapter>" or "cpu: <reason>".
    pub fn backend(&self) -> String {
        #[cfg(not(target_arch = "wasm32"))]
        if let Ok(slot) = self.gpu.lock() {
            return match &*slot {
                GpuSlot::On { gpu, .. } => format!("gpu: {}", gpu.context().describe()),
                GpuSlot::Off(why) => format!("cpu: {why}"),
            };
        }
        "cpu".into()
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

    /// Embeddings of many texts, in order: on the GPU when one is attached,
    /// else on every core (native) or one (wasm). `progress` is called once per finished text.
    pub fn embed_many(&self, texts: &[String], progress: &(dyn Fn() + Sync)) -> Result<Vec<Vec<f32>>> {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(done) = self.embed_many_gpu(texts, progress)? {
            return Ok(done);
        }
        self.embed_many_cpu(texts, progress)
    }

    /// Embeds on the GPU if one is attached; None means "use the CPU" (no GPU,
    /// or it failed on `auto` and has been detached, with the reason recorded).
    #[cfg(not(target_arch = "wasm32"))]
    fn embed_many_gpu(&self, texts: &[String], progress: &(dyn Fn() + Sync)) -> Result<Option<Vec<Vec<f32>>>> {
        use rayon::prelude::*;
        let mut slot = self.gpu.lock().map_err(|_| Error::Gpu("GPU state poisoned".into()))?;
        let GpuSlot::On { gpu, required } = &mut *slot else { return Ok(None) };
        let ids: Vec<Vec<u32>> = texts.par_iter().map(|t| self.tokenize(t)).collect::<Result<_>>()?;
        // Similar lengths together; no padding is spent either way, but short
        // batches finish sooner and keep the progress bar honest.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        let budget = gpu.max_batch_tokens();
        let mut at = 0;
        while at < order.len() {
            let mut end = at;
            let mut tokens = 0;
            while end < order.len() && end - at < GPU_BATCH_SEQS && (end == at || tokens + ids[order[end]].len() <= budget) {
                tokens += ids[order[end]].len();
                end += 1;
            }
            let batch: Vec<Vec<u32>> = order[at..end].iter().map(|&i| ids[i].clone()).collect();
            match crate::backend::gpu::block_on(gpu.embed_ids(&batch)) {
                Ok(vectors) => {
                    for (&i, v) in order[at..end].iter().zip(vectors) {
                        out[i] = v;
                        progress();
                    }
                }
                Err(e) if *required => return Err(e),
                Err(e) => {
                    *slot = GpuSlot::Off(format!("the GPU failed, fell back to the CPU: {e}"));
                    return Ok(None);
                }
            }
            at = end;
        }
        Ok(Some(out))
    }

    /// Embeddings of many texts on the CPU.
    fn embed_many_cpu(&self, texts: &[String], progress: &(dyn Fn() + Sync)) -> Result<Vec<Vec<f32>>> {
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
