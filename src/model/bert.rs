//! The BERT encoder: one struct per Hugging Face module, `load` from checkpoint
//! names, and a straight-line forward pass with one named buffer per step.

use super::config::BertConfig;
use crate::backend::cpu::{self, Linear};
use crate::error::{Error, Result};
use safetensors::{Dtype, SafeTensors};
use std::path::Path;

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
    fn forward(&self, x: &mut [f32]) {
        cpu::layer_norm(x, self.gamma.len(), &self.gamma, &self.beta, self.eps);
    }
}

fn linear(ck: &dyn TensorSource, name: &str, out: usize, inp: usize) -> Result<Linear> {
    let w = ck.get(&format!("{name}.weight"), &[out, inp])?;
    let b = ck.get(&format!("{name}.bias"), &[out])?;
    Ok(Linear::new(&w, &b, out, inp))
}

/// `embeddings.*`: word + position + token type, then LayerNorm.
struct Embeddings {
    word: Vec<f32>,     // (vocab, hidden)
    position: Vec<f32>, // (max_positions, hidden)
    token_type0: Vec<f32>, // (hidden,): row 0, every token is segment A
    norm: LayerNorm,
}

/// `encoder.layer.N.*`.
struct Layer {
    qkv: Linear,          // hidden -> 3*hidden (query | key | value)
    attn_out: Linear,     // hidden -> hidden
    attn_norm: LayerNorm, // after the attention residual
    ffn_in: Linear,       // hidden -> intermediate, then GELU
    ffn_out: Linear,      // intermediate -> hidden
    ffn_norm: LayerNorm,  // after the feed-forward residual
}

/// All weights of a BERT encoder, in f32, ready for the CPU kernels.
pub struct Bert {
    /// The configuration the weights were checked against.
    pub config: BertConfig,
    embeddings: Embeddings,
    layers: Vec<Layer>,
}

/// Scratch buffers for one forward pass, sized for the longest sequence so the
/// pass itself allocates nothing. One per thread.
pub struct Workspace {
    x: Vec<f32>,       // (n, hidden): the residual stream
    qkv: Vec<f32>,     // (n, 3*hidden)
    ctx: Vec<f32>,     // (n, hidden)
    tmp: Vec<f32>,     // (n, hidden)
    ffn: Vec<f32>,     // (n, intermediate)
    scores: Vec<f32>,  // (n, n)
}

impl Workspace {
    /// Buffers for sequences of up to `max_len` tokens.
    pub fn new(config: &BertConfig, max_len: usize) -> Self {
        let (h, i) = (config.hidden_size, config.intermediate_size);
        Workspace {
            x: vec![0.0; max_len * h],
            qkv: vec![0.0; max_len * 3 * h],
            ctx: vec![0.0; max_len * h],
            tmp: vec![0.0; max_len * h],
            ffn: vec![0.0; max_len * i],
            scores: vec![0.0; max_len * max_len],
        }
    }
}

impl Bert {
    /// Loads every tensor from `ck`, checking names and shapes against `config`.
    pub fn load(config: BertConfig, ck: &dyn TensorSource, path: &Path) -> Result<Self> {
        config.validate().map_err(|m| Error::model(path, m))?;
        let (h, inter, eps) = (config.hidden_size, config.intermediate_size, config.layer_norm_eps);
        let embeddings = Embeddings {
            word: ck.get("embeddings.word_embeddings.weight", &[config.vocab_size, h])?,
            position: ck.get("embeddings.position_embeddings.weight", &[config.max_position_embeddings, h])?,
            token_type0: ck.get("embeddings.token_type_embeddings.weight", &[config.type_vocab_size, h])?[..h].to_vec(),
            norm: LayerNorm::load(ck, "embeddings.LayerNorm", h, eps)?,
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let q = (ck.get(&format!("{p}.attention.self.query.weight"), &[h, h])?, ck.get(&format!("{p}.attention.self.query.bias"), &[h])?);
            let k = (ck.get(&format!("{p}.attention.self.key.weight"), &[h, h])?, ck.get(&format!("{p}.attention.self.key.bias"), &[h])?);
            let v = (ck.get(&format!("{p}.attention.self.value.weight"), &[h, h])?, ck.get(&format!("{p}.attention.self.value.bias"), &[h])?);
            layers.push(Layer {
                qkv: Linear::concat(&[(&q.0, &q.1, h), (&k.0, &k.1, h), (&v.0, &v.1, h)], h),
                attn_out: linear(ck, &format!("{p}.attention.output.dense"), h, h)?,
                attn_norm: LayerNorm::load(ck, &format!("{p}.attention.output.LayerNorm"), h, eps)?,
                ffn_in: linear(ck, &format!("{p}.intermediate.dense"), inter, h)?,
                ffn_out: linear(ck, &format!("{p}.output.dense"), h, inter)?,
                ffn_norm: LayerNorm::load(ck, &format!("{p}.output.LayerNorm"), h, eps)?,
            });
        }
        Ok(Bert { config, embeddings, layers })
    }

    /// Encodes one sequence of token ids and writes its mean-pooled, L2-normalised
    /// embedding (hidden,) to `out`. `ids.len()` must not exceed the workspace's length.
    pub fn embed(&self, ids: &[u32], ws: &mut Workspace, out: &mut [f32]) -> Result<()> {
        let h = self.config.hidden_size;
        let n = ids.len();
        if n == 0 {
            out.fill(0.0);
            return Ok(());
        }
        if n > self.config.max_position_embeddings || n * h > ws.x.len() {
            return Err(Error::Tokenizer(format!("sequence of {n} tokens is longer than the model accepts")));
        }
        let inter = self.config.intermediate_size;
        let x = &mut ws.x[..n * h];

        // Embeddings: x[t] = word[id] + position[t] + token_type[0], then LayerNorm.
        let e = &self.embeddings;
        for (t, &id) in ids.iter().enumerate() {
            let id = id as usize;
            if id >= self.config.vocab_size {
                return Err(Error::Tokenizer(format!("token id {id} is outside the vocabulary of {}", self.config.vocab_size)));
            }
            let row = &mut x[t * h..(t + 1) * h];
            for (c, v) in row.iter_mut().enumerate() {
                *v = e.word[id * h + c] + e.position[t * h + c] + e.token_type0[c];
            }
        }
        e.norm.forward(x);

        for layer in &self.layers {
            // Self-attention: x = LN(x + Wo · attention(Wqkv · x)).
            let qkv = &mut ws.qkv[..n * 3 * h];
            layer.qkv.forward(x, n, qkv);
            let ctx = &mut ws.ctx[..n * h];
            cpu::attention(qkv, n, h, self.config.num_attention_heads, ctx, &mut ws.scores[..n * n]);
            let attn = &mut ws.tmp[..n * h];
            layer.attn_out.forward(ctx, n, attn);
            cpu::add_in_place(x, attn);
            layer.attn_norm.forward(x);

            // Feed-forward: x = LN(x + W2 · gelu(W1 · x)).
            let ffn = &mut ws.ffn[..n * inter];
            layer.ffn_in.forward(x, n, ffn);
            cpu::gelu(ffn);
            let down = &mut ws.tmp[..n * h];
            layer.ffn_out.forward(ffn, n, down);
            cpu::add_in_place(x, down);
            layer.ffn_norm.forward(x);
        }

        cpu::mean_rows(x, n, h, out);
        cpu::l2_normalize(out);
        Ok(())
    }
}
