//! Nearest index vectors on the GPU: `score.wgsl` computes the cosine of a
//! query against every int8 vector, then `topk.wgsl` keeps the best k per
//! chunk, stage after stage, until k remain. One submit; only k (score,
//! position) pairs come back. Results match the CPU's brute force
//! (`Index::nearest`), ties included.

use super::context::GpuContext;
use super::kernels::{grid, shape, Kernel, Pipeline};
use crate::error::{Error, Result};
use crate::index::format::Vectors;
use crate::index::search::Hit;
use std::sync::Arc;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ScoreParams {
    count: u32,
    exclude: u32,
    query_inv_norm: f32,
    pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct TopkParams {
    count: u32,
    keep: u32,
    indexed: u32,
    pad: u32,
}

/// No position: nothing excluded, or an empty slot.
const NONE: u32 = u32::MAX;

/// An index's vectors resident on the GPU, ready to rank queries against.
pub struct GpuRanker {
    ctx: Arc<GpuContext>,
    dim: usize,
    count: usize,
    score: Pipeline,
    topk: Pipeline,
    query: wgpu::Buffer,
    codes: wgpu::Buffer,
    inv_norms: wgpu::Buffer,
    scores: wgpu::Buffer,
}

impl GpuRanker {
    /// Uploads the int8 vectors (count, dim); `norms` are their code norms (as `Index::norms`).
    pub fn new(ctx: Arc<GpuContext>, vectors: &Vectors, norms: &[f32]) -> Result<Self> {
        let dim = vectors.dim;
        if dim % 4 != 0 {
            return Err(Error::Gpu(format!("vector width {dim} is not a multiple of 4")));
        }
        let count = vectors.len();
        let codes: Vec<u32> = (0..count)
            .flat_map(|i| vectors.row(i).chunks_exact(4).map(|c| u32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8])))
            .collect();
        let inv: Vec<f32> = norms.iter().map(|&n| if n > 0.0 { 1.0 / n } else { 0.0 }).collect();
        let ranker = GpuRanker {
            score: Pipeline::new(&ctx, Kernel::Score, &[("DIM", dim as f64)]),
            topk: Pipeline::new(&ctx, Kernel::Topk, &[]),
            query: ctx.scratch("query", (dim * 4) as u64),
            codes: ctx.storage("index vectors", &codes),
            inv_norms: ctx.storage("inverse norms", &inv),
            scores: ctx.scratch("scores", (count * 4) as u64),
            dim,
            count,
            ctx,
        };
        ranker.ctx.check()?;
        Ok(ranker)
    }

    /// The `k` vectors most similar to `query` (dim,), best first, ties to the
    /// lower position; `exclude` (a position) is left out.
    pub async fn nearest(&self, query: &[f32], k: usize, exclude: Option<usize>) -> Result<Vec<Hit>> {
        if query.len() != self.dim {
            return Err(Error::Gpu(format!("query has {} values; the index holds {}-wide vectors", query.len(), self.dim)));
        }
        let k = k.min(self.count);
        if k == 0 {
            return Ok(vec![]);
        }
        if k > shape::TOPK_MAX_K {
            return Err(Error::Gpu(format!("k = {k} is above the GPU top-k's {}", shape::TOPK_MAX_K)));
        }
        let ctx = &*self.ctx;
        let qn = query.iter().map(|x| x * x).sum::<f32>().sqrt();
        let params = ScoreParams {
            count: self.count as u32,
            exclude: exclude.map_or(NONE, |e| e as u32),
            query_inv_norm: if qn > 0.0 { 1.0 / qn } else { 0.0 },
            pad: 0,
        };
        ctx.queue.write_buffer(&self.query, 0, bytemuck::cast_slice(query));
        let score_params = ctx.uniform("score params", &params);
        let score_bind = self.score.bind(ctx, &score_params, &[&self.query, &self.codes, &self.inv_norms, &self.scores]);

        // Stages: count -> chunks * k -> ... -> k. Each stage reads the previous one's output.
        let mut stages = Vec::new();
        let (mut n, mut input): (usize, Option<(wgpu::Buffer, wgpu::Buffer)>) = (self.count, None);
        loop {
            let chunks = n.div_ceil(shape::TOPK_CHUNK);
            let out_s = ctx.scratch("topk scores", (chunks * k * 4) as u64);
            let out_i = ctx.scratch("topk positions", (chunks * k * 4) as u64);
            let p = TopkParams { count: n as u32, keep: k as u32, indexed: input.is_some() as u32, pad: 0 };
            let u = ctx.uniform("topk params", &p);
            let bind = match &input {
                None => self.topk.bind(ctx, &u, &[&self.scores, &self.scores, &out_s, &out_i]),
                Some((s, i)) => self.topk.bind(ctx, &u, &[s, i, &out_s, &out_i]),
            };
            stages.push((bind, chunks as u32));
            n = chunks * k;
            input = Some((out_s, out_i));
            if chunks == 1 {
                break;
            }
        }
        let (final_s, final_i) = input.expect("at least one stage");
        let bytes = (k * 4) as u64;
        let staging = ctx.readback("topk readback", 2 * bytes);
        let mut enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("rank") });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("score + top-k"), timestamp_writes: None });
            let (gx, gy) = grid((self.count as u32).div_ceil(shape::SCORE_WG));
            self.score.dispatch(&mut pass, &score_bind, (gx, gy, 1));
            for (bind, chunks) in &stages {
                self.topk.dispatch(&mut pass, bind, (*chunks, 1, 1));
            }
        }
        enc.copy_buffer_to_buffer(&final_s, 0, &staging, 0, bytes);
        enc.copy_buffer_to_buffer(&final_i, 0, &staging, bytes, bytes);
        ctx.queue.submit([enc.finish()]);
        let raw = ctx.read(&staging, 2 * bytes).await?;
        let (s, i) = raw.split_at(bytes as usize);
        let scores: &[f32] = bytemuck::cast_slice(s);
        let positions: &[u32] = bytemuck::cast_slice(i);
        Ok(scores.iter().zip(positions).filter(|(_, &p)| p != NONE).map(|(&score, &p)| Hit { index: p as usize, score }).collect())
    }
}
