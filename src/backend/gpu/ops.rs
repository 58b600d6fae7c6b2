//! Single kernels on host data, one dispatch each: what the parity tests
//! compare against the CPU reference. The encoder does not use these (it keeps
//! everything on the GPU); they share its pipelines, layouts and shapes.
//!
//! Async so the same checks run in the browser (`web::compute::kernel_self_test`);
//! natively, wrap calls in [`super::block_on`].
//!
//! Every output buffer starts filled with NaN, so an element a kernel forgets
//! to write fails the comparison instead of passing with a stale value.

use super::context::GpuContext;
use super::kernels::{check_heads, check_row, grid, shape, token_table, Dims, Epilogue, Kernel, Pipeline};
use super::weights::BlockMatrix;
use crate::error::Result;

fn poisoned(ctx: &GpuContext, label: &str, len: usize) -> wgpu::Buffer {
    ctx.storage(label, &vec![f32::NAN; len])
}

/// Records one dispatch, copies `out` back and returns it as f32.
async fn run(ctx: &GpuContext, p: &Pipeline, uniform: &wgpu::Buffer, buffers: &[&wgpu::Buffer], groups: (u32, u32, u32), out: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
    let bind = p.bind(ctx, uniform, buffers);
    let bytes = (len.max(1) * 4) as u64;
    let staging = ctx.readback("readback", bytes);
    let mut enc = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        p.dispatch(&mut pass, &bind, groups);
    }
    enc.copy_buffer_to_buffer(out, 0, &staging, 0, bytes);
    ctx.queue.submit([enc.finish()]);
    let raw = ctx.read(&staging, bytes).await?;
    Ok(bytemuck::cast_slice::<u8, f32>(&raw)[..len].to_vec())
}

fn dims(tokens: usize, seqs: usize) -> Dims {
    Dims { tokens: tokens as u32, seqs: seqs as u32, pad: [0; 2] }
}

/// y (tokens, m.rows) = epilogue(x (tokens, m.cols) · mᵀ + bias).
pub async fn matmul(ctx: &GpuContext, x: &[f32], tokens: usize, m: &BlockMatrix, bias: &[f32], residual: Option<&[f32]>, epilogue: Epilogue) -> Result<Vec<f32>> {
    assert_eq!(x.len(), tokens * m.cols);
    assert_eq!(bias.len(), m.rows);
    let p = Pipeline::new(ctx, Kernel::Matmul, &[("K", m.cols as f64), ("N", m.rows as f64), ("FORMAT", m.format as u32 as f64), ("EPILOGUE", epilogue as u32 as f64)]);
    let (words, scales) = m.interleaved();
    let u = ctx.uniform("dims", &dims(tokens, 1));
    let out = poisoned(ctx, "y", tokens * m.rows);
    let res = ctx.storage("residual", residual.unwrap_or(&[]));
    let bufs = [&ctx.storage("x", x), &ctx.storage("w", &words), &ctx.storage("scales", &scales), &ctx.storage("bias", bias), &res, &out];
    let groups = ((m.rows as u32).div_ceil(shape::MATMUL_TILE_N), (tokens as u32).div_ceil(shape::MATMUL_TILE_T), 1);
    run(ctx, &p, &u, &bufs, groups, &out, tokens * m.rows).await
}

/// LayerNorm of each row of x (rows, h).
pub async fn layer_norm(ctx: &GpuContext, x: &[f32], h: usize, gamma: &[f32], beta: &[f32], eps: f32) -> Result<Vec<f32>> {
    check_row(h)?;
    let rows = x.len() / h;
    let p = Pipeline::new(ctx, Kernel::LayerNorm, &[("H", h as f64), ("EPS", eps as f64)]);
    let ln: Vec<f32> = gamma.iter().chain(beta).copied().collect();
    let u = ctx.uniform("dims", &dims(rows, 1));
    let out = poisoned(ctx, "out", rows * h);
    run(ctx, &p, &u, &[&ctx.storage("x", x), &ctx.storage("ln", &ln), &out], (rows as u32, 1, 1), &out, rows * h).await
}

/// Embedding gather + LayerNorm for ragged sequences of `lens` tokens.
/// `position` is (positions, h) with the token-type row already added.
pub async fn embed(ctx: &GpuContext, ids: &[u32], lens: &[usize], table: &BlockMatrix, position: &[f32], gamma: &[f32], beta: &[f32], eps: f32) -> Result<Vec<f32>> {
    let h = table.cols;
    check_row(h)?;
    let (words, scales, row_words) = table.row_major();
    let p = Pipeline::new(ctx, Kernel::Embed, &[
        ("H", h as f64),
        ("EPS", eps as f64),
        ("FORMAT", table.format as u32 as f64),
        ("WORD_BLOCK", table.block as f64),
        ("ROW_WORDS", row_words as f64),
        ("ROW_SCALES", table.blocks_per_row() as f64),
    ]);
    let n = ids.len();
    let ln: Vec<f32> = gamma.iter().chain(beta).copied().collect();
    let u = ctx.uniform("dims", &dims(n, lens.len()));
    let out = poisoned(ctx, "x", n * h);
    let tokens = token_table(ids, lens);
    let bufs = [&ctx.storage("tokens", &tokens), &ctx.storage("word", &words), &ctx.storage("scales", &scales), &ctx.storage("position", position), &ctx.storage("ln", &ln), &out];
    run(ctx, &p, &u, &bufs, (n as u32, 1, 1), &out, n * h).await
}

/// Self-attention over ragged sequences: qkv (tokens, 3h) -> context (tokens, h).
pub async fn attention(ctx: &GpuContext, qkv: &[f32], lens: &[usize], h: usize, heads: usize) -> Result<Vec<f32>> {
    check_heads(h, heads, lens)?;
    let n: usize = lens.iter().sum();
    let p = Pipeline::new(ctx, Kernel::Attention, &[("H", h as f64), ("HEADS", heads as f64)]);
    let u = ctx.uniform("dims", &dims(n, lens.len()));
    let out = poisoned(ctx, "ctx", n * h);
    let tokens = token_table(&vec![0; n], lens);
    run(ctx, &p, &u, &[&ctx.storage("tokens", &tokens), &ctx.storage("qkv", qkv), &out], (n as u32, heads as u32, 1), &out, n * h).await
}

/// Mean pooling + L2 normalisation of ragged sequences: x (tokens, h) -> (seqs, h).
pub async fn pool(ctx: &GpuContext, x: &[f32], lens: &[usize], h: usize) -> Result<Vec<f32>> {
    check_row(h)?;
    let p = Pipeline::new(ctx, Kernel::Pool, &[("H", h as f64)]);
    let mut seqs = Vec::new();
    let mut start = 0u32;
    for &l in lens {
        seqs.push([start, l as u32]);
        start += l as u32;
    }
    let u = ctx.uniform("dims", &dims(start as usize, lens.len()));
    let out = poisoned(ctx, "pooled", lens.len() * h);
    let (gx, gy) = grid(lens.len() as u32);
    run(ctx, &p, &u, &[&ctx.storage("seqs", &seqs), &ctx.storage("x", x), &out], (gx, gy, 1), &out, lens.len() * h).await
}
