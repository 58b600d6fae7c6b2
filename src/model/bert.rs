//! The BERT encoder: one struct per Hugging Face module, `load` from checkpoint
//! names, and a straight-line forward pass with one named buffer per step.

use super::config::BertConfig;
use crate::backend::cpu::attend::{self, AttnScratch};
use crate::backend::cpu::isa::Isa;
use crate::backend::cpu::qlinear::{ActBits, Epilogue, QActs, QLinear, QWeights};
use crate::backend::cpu::{self, vmath, Linear};
use crate::quant::{self, Scheme};
use crate::error::{Error, Result};
use safetensors::{Dtype, SafeTensors};
use std::path::Path;

/// The linear layers of one encoder layer, by the input they read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinearInput {
    /// Query, key and value: the layer's input.
    Qkv,
    /// The attention output projection: the attention context.
    AttnOut,
    /// The intermediate (first feed-forward) layer: the attention block's output.
    FfnIn,
    /// The second feed-forward layer: the GELU output.
    FfnOut,
}

// Used by int4 calibration when packing, which only the CLI does.
#[cfg(not(target_arch = "wasm32"))]
impl LinearInput {
    /// All four, in the order they run.
    pub(crate) const ALL: [LinearInput; 4] = [LinearInput::Qkv, LinearInput::AttnOut, LinearInput::FfnIn, LinearInput::FfnOut];

    /// The weights (Hugging Face names under `encoder.layer.N.`) that read this input.
    pub(crate) fn weights(self) -> &'static [&'static str] {
        match self {
            LinearInput::Qkv => &["attention.self.query.weight", "attention.self.key.weight", "attention.self.value.weight"],
            LinearInput::AttnOut => &["attention.output.dense.weight"],
            LinearInput::FfnIn => &["intermediate.dense.weight"],
            LinearInput::FfnOut => &["output.dense.weight"],
        }
    }
}

/// Where the encoder's weights come from: a safetensors checkpoint or a Cairn pack.
/// Both hand out f32 tensors by Hugging Face name, checked against the expected shape.
pub trait TensorSource {
    /// The tensor `name` as f32, which must have exactly `shape`.
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>>;

    /// The tensor `name` as stored: its scheme and bytes, for backends that
    /// compute on quantised codes directly (the GPU). Unquantised sources hand
    /// out f32.
    fn get_stored(&self, name: &str, shape: &[usize]) -> Result<(crate::quant::Scheme, Vec<u8>)> {
        let v = self.get(name, shape)?;
        Ok((crate::quant::Scheme::F32, bytemuck::cast_slice(&v).to_vec()))
    }
}

/// Reads named f32 tensors from a safetensors file.
pub struct Checkpoint<'a> {
    tensors: SafeTensors<'a>,
    /// "" or "bert." depending on how the checkpoint was exported.
    prefix: &'static str,
    path: &'a Path,
}

impl<'a> Checkpoint<'a> {
    /// Parses safetensors bytes; `path` is used in errors.
    pub fn new(bytes: &'a [u8], path: &'a Path) -> Result<Self> {
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| Error::model(path, format!("not a safetensors file: {e}")))?;
        let prefix = if tensors.tensor("embeddings.word_embeddings.weight").is_ok() { "" } else { "bert." };
        Ok(Checkpoint { tensors, prefix, path })
    }
}

impl TensorSource for Checkpoint<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let full = format!("{}{}", self.prefix, name);
        let t = self.tensors.tensor(&full).map_err(|_| Error::model(self.path, format!("tensor {full} is missing")))?;
        if t.shape() != shape {
            return Err(Error::model(self.path, format!("tensor {full} has shape {:?}, expected {:?}", t.shape(), shape)));
        }
        match t.dtype() {
            Dtype::F32 => Ok(t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
            other => Err(Error::model(self.path, format!("tensor {full} is {other:?}; only F32 checkpoints are supported"))),
        }
    }
}

/// LayerNorm parameters.
struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl LayerNorm {
    fn load(ck: &dyn TensorSource, name: &str, dim: usize, eps: f32) -> Result<Self> {
        Ok(LayerNorm { gamma: ck.get(&format!("{name}.weight"), &[dim])?, beta: ck.get(&format!("{name}.bias"), &[dim])?, eps })
    }
    /// dst (rows, dim) = LN(src (rows, dim)).
    fn forward(&self, isa: Isa, src: &[f32], dst: &mut [f32]) {
        vmath::layer_norm(isa, src, dst, self.gamma.len(), &self.gamma, &self.beta, self.eps);
    }
}

/// A dense layer in the precision its weights are stored in: f32 checkpoints
/// run the f32 kernel (exact), quantised packs the integer kernels on their codes.
enum Dense {
    F32(Linear),
    Quant(QLinear),
}

impl Dense {
    /// Loads `name.weight` (out, in) and `name.bias` for each name (Q, K and V are
    /// stacked into one layer, outputs in the given order). Quantised weights run
    /// on activations quantised to `bits`.
    fn load(ck: &dyn TensorSource, names: &[String], out: usize, inp: usize, bits: ActBits) -> Result<Self> {
        let mut bias = Vec::with_capacity(out * names.len());
        let mut stored = Vec::with_capacity(names.len());
        for name in names {
            let (scheme, bytes) = ck.get_stored(&format!("{name}.weight"), &[out, inp])?;
            stored.push(QWeights::from_stored(scheme, &bytes, out, inp));
            bias.extend(ck.get(&format!("{name}.bias"), &[out])?);
        }
        if let Some(parts) = stored.into_iter().collect::<Option<Vec<_>>>() {
            if let Some(w) = QWeights::stack(&parts) {
                return Ok(Dense::Quant(QLinear::new(&w, &bias, bits)));
            }
        }
        // f32 weights, or quantised ones that cannot share one layout: f32.
        let mut weight = Vec::with_capacity(out * inp * names.len());
        for name in names {
            weight.extend(ck.get(&format!("{name}.weight"), &[out, inp])?);
        }
        Ok(Dense::F32(Linear::new(&weight, &bias, out * names.len(), inp)))
    }

    /// y (rows, out) = epi(x (rows, in) W^T + b); `acts` is scratch for the
    /// quantised input.
    fn forward(&self, isa: Isa, x: &[f32], rows: usize, acts: &mut QActs, y: &mut [f32], epi: Epilogue) {
        match self {
            Dense::Quant(q) => q.forward(&x[..rows * q.in_dim], rows, acts, &mut y[..rows * q.out_dim], epi, isa),
            Dense::F32(l) => {
                let y = &mut y[..rows * l.out_dim];
                l.forward(&x[..rows * l.in_dim], rows, y);
                match epi {
                    Epilogue::None => {}
                    Epilogue::Gelu => vmath::gelu(isa, y),
                    Epilogue::Residual(r) => cpu::add_in_place(y, &r[..y.len()]),
                }
            }
        }
    }
}

/// The word embedding table, kept as the source stores it (int8 or int4 codes
/// stay codes: 11.7 MB instead of 47 MB of f32); rows are decoded on lookup.
struct Table {
    scheme: Scheme,
    bytes: Vec<u8>,
    rows: usize,
    cols: usize,
}

/// `embeddings.*`: word + position + token type, then LayerNorm.
struct Embeddings {
    word: Table,
    /// (max_positions, hidden): position rows with token-type row 0 added (every token is segment A).
    position: Vec<f32>,
    norm: LayerNorm,
}

/// `encoder.layer.N.*`.
struct Layer {
    qkv: Dense,           // hidden -> 3*hidden (query | key | value), int16 activations
    attn_out: Dense,      // hidden -> hidden, + residual
    attn_norm: LayerNorm, // after the attention residual
    ffn_in: Dense,        // hidden -> intermediate, + GELU
    ffn_out: Dense,       // intermediate -> hidden, + residual
    ffn_norm: LayerNorm,  // after the feed-forward residual
}

/// All weights of a BERT encoder, ready for the CPU kernels.
pub struct Bert {
    /// The configuration the weights were checked against.
    pub config: BertConfig,
    embeddings: Embeddings,
    layers: Vec<Layer>,
    isa: Isa,
}

/// Scratch buffers for a batch of up to `tokens` tokens, so the forward pass
/// allocates nothing. One per thread.
pub struct Workspace {
    tokens: usize,
    x: Vec<f32>,   // (tokens, hidden): the residual stream
    qkv: Vec<f32>, // (tokens, 3*hidden)
    ctx: Vec<f32>, // (tokens, hidden)
    tmp: Vec<f32>, // (tokens, hidden)
    ffn: Vec<f32>, // (tokens, intermediate)
    acts: QActs,   // (tokens, up to intermediate) quantised input of the current matmul
    attn: AttnScratch,
    seqs: Vec<(usize, usize)>, // (first row, length) of each sequence
}

impl Workspace {
    /// Buffers for one sequence of up to `max_len` tokens.
    pub fn new(config: &BertConfig, max_len: usize) -> Self {
        Workspace::for_batch(config, max_len, max_len)
    }

    /// Buffers for batches of up to `tokens` tokens in all, none longer than `max_len`.
    pub fn for_batch(config: &BertConfig, tokens: usize, max_len: usize) -> Self {
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let tokens = tokens.max(max_len).max(1);
        Workspace {
            tokens,
            x: vec![0.0; tokens * h],
            qkv: vec![0.0; tokens * 3 * h],
            ctx: vec![0.0; tokens * h],
            tmp: vec![0.0; tokens * h],
            ffn: vec![0.0; tokens * i],
            acts: QActs::with_capacity(tokens, i.max(h)),
            attn: AttnScratch::new(max_len, h / config.num_attention_heads.max(1)),
            seqs: Vec::with_capacity(64),
        }
    }

    /// Most tokens one batch may hold without growing.
    pub fn capacity(&self) -> usize {
        self.tokens
    }
}

impl Bert {
    /// Loads every tensor from `ck`, checking names and shapes against `config`.
    /// Quantised tensors stay quantised: the CPU computes on their codes.
    pub fn load(config: BertConfig, ck: &dyn TensorSource, path: &Path) -> Result<Self> {
        config.validate().map_err(|m| Error::model(path, m))?;
        let (h, inter, eps) = (config.hidden_size, config.intermediate_size, config.layer_norm_eps);
        let (scheme, bytes) = ck.get_stored("embeddings.word_embeddings.weight", &[config.vocab_size, h])?;
        if bytes.len() != scheme.bytes(config.vocab_size, h) {
            return Err(Error::model(path, format!("word embeddings: {} bytes do not fit {scheme:?}", bytes.len())));
        }
        let mut position = ck.get("embeddings.position_embeddings.weight", &[config.max_position_embeddings, h])?;
        let token_type0 = ck.get("embeddings.token_type_embeddings.weight", &[config.type_vocab_size, h])?;
        for row in position.chunks_exact_mut(h) {
            row.iter_mut().zip(&token_type0[..h]).for_each(|(p, t)| *p += t);
        }
        let embeddings = Embeddings {
            word: Table { scheme, bytes, rows: config.vocab_size, cols: h },
            position,
            norm: LayerNorm::load(ck, "embeddings.LayerNorm", h, eps)?,
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let qkv_names: Vec<String> = ["query", "key", "value"].iter().map(|w| format!("{p}.attention.self.{w}")).collect();
            layers.push(Layer {
                qkv: Dense::load(ck, &qkv_names, h, h, ActBits::Int16)?,
                attn_out: Dense::load(ck, &[format!("{p}.attention.output.dense")], h, h, ActBits::Int8)?,
                attn_norm: LayerNorm::load(ck, &format!("{p}.attention.output.LayerNorm"), h, eps)?,
                ffn_in: Dense::load(ck, &[format!("{p}.intermediate.dense")], inter, h, ActBits::Int8)?,
                ffn_out: Dense::load(ck, &[format!("{p}.output.dense")], h, inter, ActBits::Int8)?,
                ffn_norm: LayerNorm::load(ck, &format!("{p}.output.LayerNorm"), h, eps)?,
            });
        }
        Ok(Bert { config, embeddings, layers, isa: Isa::best() })
    }

    /// The CPU kernel family in use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Runs on `isa` from now on (tests compare families); refuses one this CPU lacks.
    pub fn set_isa(&mut self, isa: Isa) -> std::result::Result<(), String> {
        if !isa.supported() {
            return Err(format!("this CPU cannot run the {} kernels", isa.name()));
        }
        self.isa = isa;
        Ok(())
    }

    /// Encodes one sequence of token ids and writes its mean-pooled, L2-normalised
    /// embedding (hidden,) to `out`.
    pub fn embed(&self, ids: &[u32], ws: &mut Workspace, out: &mut [f32]) -> Result<()> {
        self.embed_batch(&[ids], ws, out)
    }

    /// Encodes a batch of sequences in one pass: their tokens are stacked
    /// without padding, so every matmul reads each weight panel once for the
    /// whole batch; attention and pooling run per sequence. `out` (seqs, hidden)
    /// receives the unit vectors (zeros for an empty sequence). The workspace
    /// grows (allocates) only if the batch holds more tokens than it was made for.
    pub fn embed_batch(&self, batch: &[&[u32]], ws: &mut Workspace, out: &mut [f32]) -> Result<()> {
        self.embed_batch_observed(batch, ws, out, &mut |_, _, _| {})
    }

    /// [`Bert::embed_batch`], handing `observe(layer, input, x)` the input `x`
    /// (tokens, width) of every linear layer as it runs, for calibrating
    /// quantisation ([`LinearInput`] says which layer).
    pub(crate) fn embed_batch_observed(
        &self,
        batch: &[&[u32]],
        ws: &mut Workspace,
        out: &mut [f32],
        observe: &mut dyn FnMut(usize, LinearInput, &[f32]),
    ) -> Result<()> {
        let h = self.config.hidden_size;
        assert_eq!(out.len(), batch.len() * h, "out is not (seqs, hidden)");
        let mut n = 0;
        for ids in batch {
            if ids.len() > self.config.max_position_embeddings {
                return Err(Error::Tokenizer(format!("sequence of {} tokens is longer than the model accepts", ids.len())));
            }
            if let Some(&id) = ids.iter().find(|&&id| id as usize >= self.config.vocab_size) {
                return Err(Error::Tokenizer(format!("token id {id} is outside the vocabulary of {}", self.config.vocab_size)));
            }
            n += ids.len();
        }
        if n > ws.tokens {
            *ws = Workspace::for_batch(&self.config, n, batch.iter().map(|s| s.len()).max().unwrap_or(0));
        }
        ws.seqs.clear();
        let mut at = 0;
        for ids in batch {
            ws.seqs.push((at, ids.len()));
            at += ids.len();
        }
        if n == 0 {
            out.fill(0.0);
            return Ok(());
        }
        let isa = self.isa;

        // Embeddings: tmp[t] = word[id] + (position[t] + token_type[0]), then x = LN(tmp).
        let e = &self.embeddings;
        let w = &e.word;
        let mut t = 0;
        for ids in batch {
            for (pos, &id) in ids.iter().enumerate() {
                let row = &mut ws.tmp[t * h..(t + 1) * h];
                quant::dequantise_row(w.scheme, &w.bytes, w.rows, w.cols, id as usize, row);
                row.iter_mut().zip(&e.position[pos * h..(pos + 1) * h]).for_each(|(v, p)| *v += p);
                t += 1;
            }
        }
        e.norm.forward(isa, &ws.tmp[..n * h], &mut ws.x[..n * h]);

        let heads = self.config.num_attention_heads;
        let inter = self.config.intermediate_size;
        for (l, layer) in self.layers.iter().enumerate() {
            // Self-attention: x = LN(x + Wo · attention(Wqkv · x)).
            observe(l, LinearInput::Qkv, &ws.x[..n * h]);
            layer.qkv.forward(isa, &ws.x, n, &mut ws.acts, &mut ws.qkv, Epilogue::None);
            attend::attention(isa, &ws.qkv[..n * 3 * h], &ws.seqs, h, heads, &mut ws.ctx[..n * h], &mut ws.attn);
            observe(l, LinearInput::AttnOut, &ws.ctx[..n * h]);
            layer.attn_out.forward(isa, &ws.ctx, n, &mut ws.acts, &mut ws.tmp, Epilogue::Residual(&ws.x[..n * h]));
            layer.attn_norm.forward(isa, &ws.tmp[..n * h], &mut ws.x[..n * h]);

            // Feed-forward: x = LN(x + W2 · gelu(W1 · x)).
            observe(l, LinearInput::FfnIn, &ws.x[..n * h]);
            layer.ffn_in.forward(isa, &ws.x, n, &mut ws.acts, &mut ws.ffn, Epilogue::Gelu);
            observe(l, LinearInput::FfnOut, &ws.ffn[..n * inter]);
            layer.ffn_out.forward(isa, &ws.ffn, n, &mut ws.acts, &mut ws.tmp, Epilogue::Residual(&ws.x[..n * h]));
            layer.ffn_norm.forward(isa, &ws.tmp[..n * h], &mut ws.x[..n * h]);
        }

        for (v, &(start, len)) in out.chunks_exact_mut(h).zip(&ws.seqs) {
            cpu::mean_rows(&ws.x[start * h..(start + len) * h], len, h, v);
            if len > 0 {
                cpu::l2_normalize(v);
            }
        }
        Ok(())
    }
}
