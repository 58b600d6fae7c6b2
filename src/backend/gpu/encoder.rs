//! The BERT encoder on the GPU: weights uploaded once, the whole forward pass
//! of a batch recorded into one command buffer, one submit, and only the
//! pooled vectors read back.
//!
//! Batches are ragged: the sequences' tokens lie back to back, so no work is
//! spent on padding; attention and pooling read each token's sequence bounds.
//! Per batch: `embed` -> 6 x (`matmul` QKV -> `attention` -> `matmul` output
//! + residual -> `layer_norm` -> `matmul` + GELU -> `matmul` + residual ->
//! `layer_norm`) -> `pool`.

use super::context::GpuContext;
use super::kernels::{check_heads, check_row, grid, shape, token_table, Dims, Epilogue, Kernel, Pipeline};
use super::weights::{BlockMatrix, Format};
use crate::quant::Scheme;
use crate::error::{Error, Result};
use crate::model::bert::TensorSource;
use crate::model::config::BertConfig;
use std::sync::Arc;

/// Token rows a batch may hold before the scratch buffers grow.
const INITIAL_TOKENS: usize = 1024;
/// Hard cap on token rows per batch (the scratch buffers stay well under any
/// adapter's storage binding limit).
pub const MAX_BATCH_TOKENS: usize = 8192;

/// A linear layer on the GPU.
struct GpuLinear {
    words: wgpu::Buffer,
    scales: wgpu::Buffer,
    bias: wgpu::Buffer,
    format: Format,
}

/// One encoder layer's weights.
struct GpuLayer {
    qkv: GpuLinear,
    attn_out: GpuLinear,
    attn_norm: wgpu::Buffer, // (2, hidden): gamma then beta
    ffn_in: GpuLinear,
    ffn_out: GpuLinear,
    ffn_norm: wgpu::Buffer,
}

/// Activations for one batch, sized for `tokens` rows and `seqs` sequences,
/// with the bind groups that tie them to the weights.
struct Scratch {
    tokens: usize,
    seqs: usize,
    token_table: wgpu::Buffer, // (tokens,) [id, position, seq start, seq length]
    seq_table: wgpu::Buffer,   // (seqs,) [start, length]
    out: wgpu::Buffer,         // (seqs, hidden)
    staging: wgpu::Buffer,
    embed: wgpu::BindGroup,
    layers: Vec<[wgpu::BindGroup; 7]>,
    pool: wgpu::BindGroup,
}

/// Compiled kernels of the forward pass.
struct Pipelines {
    embed: Pipeline,
    norm: Pipeline,
    attention: Pipeline,
    pool: Pipeline,
    qkv: Pipeline,
    attn_out: Pipeline,
    ffn_in: Pipeline,
    ffn_out: Pipeline,
}

/// The encoder's weights and kernels on one GPU device.
pub struct GpuEncoder {
    ctx: Arc<GpuContext>,
    config: BertConfig,
    pipelines: Pipelines,
    word: wgpu::Buffer,
    word_scales: wgpu::Buffer,
    position: wgpu::Buffer,
    embed_norm: wgpu::Buffer,
    layers: Vec<GpuLayer>,
    dims: wgpu::Buffer,
    scratch: Option<Scratch>,
    max_tokens: usize,
}

fn stored(src: &dyn TensorSource, name: &str, rows: usize, cols: usize) -> Result<BlockMatrix> {
    let (scheme, bytes) = src.get_stored(name, &[rows, cols])?;
    BlockMatrix::from_stored(scheme, &bytes, rows, cols).ok_or_else(|| Error::Gpu(format!("tensor {name}: {} bytes do not fit {scheme:?} ({rows}, {cols})", bytes.len())))
}

impl GpuEncoder {
    /// Uploads every weight from `src` (checked against `config`) and compiles the kernels.
    pub fn new(ctx: Arc<GpuContext>, config: BertConfig, src: &dyn TensorSource) -> Result<Self> {
        let (h, inter, eps) = (config.hidden_size, config.intermediate_size, config.layer_norm_eps);
        check_row(h)?;
        check_heads(h, config.num_attention_heads, &[])?;

        let word = stored(src, "embeddings.word_embeddings.weight", config.vocab_size, h)?;
        let (word_words, word_scales, row_words) = word.row_major();
        let mut position = src.get("embeddings.position_embeddings.weight", &[config.max_position_embeddings, h])?;
        let token_type = src.get("embeddings.token_type_embeddings.weight", &[config.type_vocab_size, h])?;
        for row in position.chunks_exact_mut(h) {
            row.iter_mut().zip(&token_type[..h]).for_each(|(p, t)| *p += t);
        }
        let norm = |name: &str| -> Result<wgpu::Buffer> {
            let mut v = src.get(&format!("{name}.weight"), &[h])?;
            v.extend(src.get(&format!("{name}.bias"), &[h])?);
            Ok(ctx.storage(name, &v))
        };
        let linear = |m: BlockMatrix, bias: Vec<f32>, label: &str| -> GpuLinear {
            let (words, scales) = m.interleaved();
            GpuLinear {
                words: ctx.storage(label, &words),
                scales: ctx.storage(label, &scales),
                bias: ctx.storage(label, &bias),
                format: m.format,
            }
        };
        // A pack may keep its most sensitive linear layers at int8 among int4 ones
        // (the int4 pack does). The matmul pipelines are compiled for one format, so
        // int4 codes are then widened to int8: exact, the blocks and scales are the same.
        let mut schemes = Vec::new();
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            for (name, rows, cols) in [("attention.self.query", h, h), ("attention.self.key", h, h), ("attention.self.value", h, h), ("attention.output.dense", h, h), ("intermediate.dense", inter, h), ("output.dense", h, inter)] {
                schemes.push(src.get_stored(&format!("{p}.{name}.weight"), &[rows, cols])?.0);
            }
        }
        let widen = schemes.contains(&Scheme::Q4Block32) && schemes.iter().any(|&s| matches!(s, Scheme::Q8Block32 | Scheme::Q8Row));
        let stored = |src: &dyn TensorSource, name: &str, rows: usize, cols: usize| -> Result<BlockMatrix> {
            let m = stored(src, name, rows, cols)?;
            Ok(if widen { m.widened() } else { m })
        };
        let mut layers = Vec::new();
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let mut parts = Vec::new();
            let mut bias = Vec::new();
            for which in ["query", "key", "value"] {
                parts.push(stored(src, &format!("{p}.attention.self.{which}.weight"), h, h)?);
                bias.extend(src.get(&format!("{p}.attention.self.{which}.bias"), &[h])?);
            }
            let qkv = BlockMatrix::stack(&parts).ok_or_else(|| Error::Gpu(format!("{p}: query, key and value are stored differently")))?;
            let dense = |name: &str, rows: usize, cols: usize| -> Result<GpuLinear> {
                Ok(linear(stored(src, &format!("{name}.weight"), rows, cols)?, src.get(&format!("{name}.bias"), &[rows])?, name))
            };
            layers.push(GpuLayer {
                qkv: linear(qkv, bias, "qkv"),
                attn_out: dense(&format!("{p}.attention.output.dense"), h, h)?,
                attn_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                ffn_in: dense(&format!("{p}.intermediate.dense"), inter, h)?,
                ffn_out: dense(&format!("{p}.output.dense"), h, inter)?,
                ffn_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        if let Some(l) = layers.iter().flat_map(|l| [&l.qkv, &l.attn_out, &l.ffn_in, &l.ffn_out]).find(|m| m.format != layers[0].qkv.format) {
            return Err(Error::Gpu(format!("linear layers mix formats ({:?} and {:?}); packs store them alike", l.format, layers[0].qkv.format)));
        }
        let format = layers.first().map(|l| l.qkv.format).unwrap_or(Format::F32);

        let mm = |k: usize, n: usize, e: Epilogue| {
            Pipeline::new(&ctx, Kernel::Matmul, &[("K", k as f64), ("N", n as f64), ("FORMAT", format as u32 as f64), ("EPILOGUE", e as u32 as f64)])
        };
        let pipelines = Pipelines {
            embed: Pipeline::new(&ctx, Kernel::Embed, &[
                ("H", h as f64),
                ("EPS", eps as f64),
                ("FORMAT", word.format as u32 as f64),
                ("WORD_BLOCK", word.block as f64),
                ("ROW_WORDS", row_words as f64),
                ("ROW_SCALES", word.blocks_per_row() as f64),
            ]),
            norm: Pipeline::new(&ctx, Kernel::LayerNorm, &[("H", h as f64), ("EPS", eps as f64)]),
            attention: Pipeline::new(&ctx, Kernel::Attention, &[("H", h as f64), ("HEADS", config.num_attention_heads as f64)]),
            pool: Pipeline::new(&ctx, Kernel::Pool, &[("H", h as f64)]),
            qkv: mm(h, 3 * h, Epilogue::None),
            attn_out: mm(h, h, Epilogue::Residual),
            ffn_in: mm(h, inter, Epilogue::Gelu),
            ffn_out: mm(inter, h, Epilogue::Residual),
        };
        // The widest activation (tokens, intermediate) must fit one binding.
        let binding = ctx.limits.max_storage_buffer_binding_size as usize;
        let max_tokens = MAX_BATCH_TOKENS.min(binding / (4 * inter.max(3 * h)));
        let encoder = GpuEncoder {
            word: ctx.storage("word embeddings", &word_words),
            word_scales: ctx.storage("word scales", &word_scales),
            position: ctx.storage("position embeddings", &position),
            embed_norm: norm("embeddings.LayerNorm")?,
            dims: ctx.uniform("dims", &Dims { tokens: 0, seqs: 0, pad: [0; 2] }),
            layers,
            pipelines,
            config,
            scratch: None,
            max_tokens,
            ctx,
        };
        encoder.ctx.check()?;
        Ok(encoder)
    }

    /// The device this encoder runs on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Most tokens one call of [`GpuEncoder::embed_ids`] accepts.
    pub fn max_batch_tokens(&self) -> usize {
        self.max_tokens
    }

    fn ensure_scratch(&mut self, tokens: usize, seqs: usize) {
        if self.scratch.as_ref().is_some_and(|s| s.tokens >= tokens && s.seqs >= seqs) {
            return;
        }
        let tokens = tokens.max(INITIAL_TOKENS).next_power_of_two().min(self.max_tokens.max(tokens));
        let seqs = seqs.max(16).next_power_of_two();
        let ctx = &*self.ctx;
        let (h, inter) = (self.config.hidden_size, self.config.intermediate_size);
        let f = |n: usize| (n * 4) as u64;
        let x = ctx.scratch("x", f(tokens * h));
        let tmp = ctx.scratch("tmp", f(tokens * h));
        let qkv = ctx.scratch("qkv", f(tokens * 3 * h));
        let attn = ctx.scratch("context", f(tokens * h));
        let ffn = ctx.scratch("ffn", f(tokens * inter));
        let token_table = ctx.scratch("tokens", (tokens * 16) as u64);
        let seq_table = ctx.scratch("seqs", (seqs * 8) as u64);
        let out = ctx.scratch("pooled", f(seqs * h));
        let staging = ctx.readback("pooled readback", f(seqs * h));
        let p = &self.pipelines;
        let u = &self.dims;
        let embed = p.embed.bind(ctx, u, &[&token_table, &self.word, &self.word_scales, &self.position, &self.embed_norm, &x]);
        let layers = self
            .layers
            .iter()
            .map(|l| {
                [
                    p.qkv.bind(ctx, u, &[&x, &l.qkv.words, &l.qkv.scales, &l.qkv.bias, &x, &qkv]),
                    p.attention.bind(ctx, u, &[&token_table, &qkv, &attn]),
                    p.attn_out.bind(ctx, u, &[&attn, &l.attn_out.words, &l.attn_out.scales, &l.attn_out.bias, &x, &tmp]),
                    p.norm.bind(ctx, u, &[&tmp, &l.attn_norm, &x]),
                    p.ffn_in.bind(ctx, u, &[&x, &l.ffn_in.words, &l.ffn_in.scales, &l.ffn_in.bias, &x, &ffn]),
                    p.ffn_out.bind(ctx, u, &[&ffn, &l.ffn_out.words, &l.ffn_out.scales, &l.ffn_out.bias, &x, &tmp]),
                    p.norm.bind(ctx, u, &[&tmp, &l.ffn_norm, &x]),
                ]
            })
            .collect();
        let pool = p.pool.bind(ctx, u, &[&seq_table, &x, &out]);
        self.scratch = Some(Scratch { tokens, seqs, token_table, seq_table, out, staging, embed, layers, pool });
    }

    /// Embeds a batch of token-id sequences (each as the tokenizer produced it,
    /// [CLS] ... [SEP]) and returns one unit vector (hidden,) per sequence, in
    /// order. An empty sequence gives a zero vector, as on the CPU.
    pub async fn embed_ids(&mut self, batch: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let c = self.config.clone();
        let h = c.hidden_size;
        let max_len = c.max_position_embeddings.min(shape::MAX_SEQ);
        for (i, ids) in batch.iter().enumerate() {
            if ids.len() > max_len {
                return Err(Error::Tokenizer(format!("sequence {i} has {} tokens; the GPU encoder takes at most {max_len}", ids.len())));
            }
            if let Some(&id) = ids.iter().find(|&&id| id as usize >= c.vocab_size) {
                return Err(Error::Tokenizer(format!("token id {id} is outside the vocabulary of {}", c.vocab_size)));
            }
        }
        let total: usize = batch.iter().map(Vec::len).sum();
        if batch.is_empty() {
            return Ok(vec![]);
        }
        if total > self.max_tokens {
            return Err(Error::Gpu(format!("a batch of {total} tokens exceeds the GPU encoder's {}", self.max_tokens)));
        }
        self.ensure_scratch(total, batch.len());
        let s = self.scratch.as_ref().expect("scratch was just sized");
        let ctx = &*self.ctx;

        let lens: Vec<usize> = batch.iter().map(Vec::len).collect();
        let ids: Vec<u32> = batch.concat();
        let mut seqs = Vec::with_capacity(batch.len());
        let mut start = 0u32;
        for &l in &lens {
            seqs.push([start, l as u32]);
            start += l as u32;
        }
        ctx.queue.write_buffer(&self.dims, 0, bytemuck::bytes_of(&Dims { tokens: total as u32, seqs: batch.len() as u32, pad: [0; 2] }));
        if total > 0 {
            ctx.queue.write_buffer(&s.token_table, 0, bytemuck::cast_slice(&token_table(&ids, &lens)));
        }
        ctx.queue.write_buffer(&s.seq_table, 0, bytemuck::cast_slice(&seqs));

        let p = &self.pipelines;
        let t = total as u32;
        let mm_groups = |n: usize| ((n as u32).div_ceil(shape::MATMUL_TILE_N), t.div_ceil(shape::MATMUL_TILE_T), 1);
        let mut enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("encode batch") });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("forward"), timestamp_writes: None });
            if t > 0 {
                p.embed.dispatch(&mut pass, &s.embed, (t, 1, 1));
                for b in &s.layers {
                    p.qkv.dispatch(&mut pass, &b[0], mm_groups(3 * h));
                    p.attention.dispatch(&mut pass, &b[1], (t, c.num_attention_heads as u32, 1));
                    p.attn_out.dispatch(&mut pass, &b[2], mm_groups(h));
                    p.norm.dispatch(&mut pass, &b[3], (t, 1, 1));
                    p.ffn_in.dispatch(&mut pass, &b[4], mm_groups(c.intermediate_size));
                    p.ffn_out.dispatch(&mut pass, &b[5], mm_groups(h));
                    p.norm.dispatch(&mut pass, &b[6], (t, 1, 1));
                }
            }
            let (gx, gy) = grid(batch.len() as u32);
            p.pool.dispatch(&mut pass, &s.pool, (gx, gy, 1));
        }
        let bytes = (batch.len() * h * 4) as u64;
        enc.copy_buffer_to_buffer(&s.out, 0, &s.staging, 0, bytes);
        ctx.queue.submit([enc.finish()]);
        let raw = ctx.read(&s.staging, bytes).await?;
        let flat: &[f32] = bytemuck::cast_slice(&raw);
        Ok(flat.chunks_exact(h).map(<[f32]>::to_vec).collect())
    }
}
