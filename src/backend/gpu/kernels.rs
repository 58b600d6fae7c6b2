//! The WGSL kernels in `shaders/` and their compute pipelines.
//!
//! Each kernel's source is `common.wgsl` followed by the kernel's own file.
//! Sizes (hidden width, heads, matrix shapes, weight format, epilogue) are
//! WGSL override constants, so one source serves every layer and the driver
//! compiles loops with constant bounds. Bind group layouts are explicit (not
//! derived from the shader) so a binding an epilogue leaves unused is still valid.

use super::context::GpuContext;
use crate::error::{Error, Result};

const COMMON: &str = include_str!("../../../shaders/common.wgsl");

/// One kernel: its source file and the shape of its bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `embed.wgsl`: embedding gather + LayerNorm.
    Embed,
    /// `layer_norm.wgsl`.
    LayerNorm,
    /// `matmul.wgsl`: quantised linear layer with fused bias, GELU or residual.
    Matmul,
    /// `attention.wgsl`: ragged multi-head self-attention.
    Attention,
    /// `pool.wgsl`: mean pooling + L2 normalisation.
    Pool,
    /// `score.wgsl`: cosine of a query against int8 vectors.
    Score,
    /// `topk.wgsl`: one stage of the GPU-side top-k.
    Topk,
}

impl Kernel {
    /// The kernel's own WGSL source.
    fn body(self) -> &'static str {
        match self {
            Kernel::Embed => include_str!("../../../shaders/embed.wgsl"),
            Kernel::LayerNorm => include_str!("../../../shaders/layer_norm.wgsl"),
            Kernel::Matmul => include_str!("../../../shaders/matmul.wgsl"),
            Kernel::Attention => include_str!("../../../shaders/attention.wgsl"),
            Kernel::Pool => include_str!("../../../shaders/pool.wgsl"),
            Kernel::Score => include_str!("../../../shaders/score.wgsl"),
            Kernel::Topk => include_str!("../../../shaders/topk.wgsl"),
        }
    }

    /// Bindings after the uniform at binding 0: (read-only storage, read-write storage).
    fn storage_bindings(self) -> (u32, u32) {
        match self {
            Kernel::Embed => (5, 1),
            Kernel::LayerNorm => (2, 1),
            Kernel::Matmul => (5, 1),
            Kernel::Attention => (2, 1),
            Kernel::Pool => (2, 1),
            Kernel::Score => (3, 1),
            Kernel::Topk => (2, 2),
        }
    }

    /// Complete WGSL source: `common.wgsl` then the kernel.
    pub fn source(self) -> String {
        format!("{COMMON}\n{}", self.body())
    }

    /// Every kernel, for tests that compile them all.
    pub const ALL: [Kernel; 7] =
        [Kernel::Embed, Kernel::LayerNorm, Kernel::Matmul, Kernel::Attention, Kernel::Pool, Kernel::Score, Kernel::Topk];
}

/// A compiled kernel with its bind group layout.
pub struct Pipeline {
    /// The pipeline.
    pub pipeline: wgpu::ComputePipeline,
    /// Layout of its only bind group.
    pub layout: wgpu::BindGroupLayout,
    kernel: Kernel,
}

impl Pipeline {
    /// Compiles `kernel` with the given override constants.
    pub fn new(ctx: &GpuContext, kernel: Kernel, constants: &[(&str, f64)]) -> Self {
        let (ro, rw) = kernel.storage_bindings();
        let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer { ty: wgpu::BufferBindingType::Storage { read_only }, has_dynamic_offset: false, min_binding_size: None },
            count: None,
        };
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer { ty: wgpu::BufferBindingType::Uniform, has_dynamic_offset: false, min_binding_size: None },
            count: None,
        }];
        entries.extend((1..=ro).map(|b| storage(b, true)));
        entries.extend((ro + 1..=ro + rw).map(|b| storage(b, false)));
        let label = format!("{kernel:?}");
        let layout = ctx.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(&label), entries: &entries });
        let pipeline_layout = ctx.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let module = ctx.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&label),
            source: wgpu::ShaderSource::Wgsl(kernel.source().into()),
        });
        let pipeline = ctx.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions { constants, zero_initialize_workgroup_memory: false },
            cache: None,
        });
        Pipeline { pipeline, layout, kernel }
    }

    /// A bind group of `uniform` then `buffers` in binding order.
    pub fn bind(&self, ctx: &GpuContext, uniform: &wgpu::Buffer, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        let (ro, rw) = self.kernel.storage_bindings();
        assert_eq!(buffers.len() as u32, ro + rw, "{:?} takes {} storage buffers", self.kernel, ro + rw);
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() }];
        entries.extend(buffers.iter().enumerate().map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32 + 1, resource: b.as_entire_binding() }));
        ctx.device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(&format!("{:?}", self.kernel)), layout: &self.layout, entries: &entries })
    }

    /// Records one dispatch of `groups` workgroups into `pass`.
    pub fn dispatch(&self, pass: &mut wgpu::ComputePass<'_>, bind: &wgpu::BindGroup, groups: (u32, u32, u32)) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, bind, &[]);
        pass.dispatch_workgroups(groups.0, groups.1, groups.2);
    }
}

/// Per-batch sizes, the `Dims` uniform of `common.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Dims {
    /// Token rows in the batch.
    pub tokens: u32,
    /// Sequences in the batch.
    pub seqs: u32,
    /// Padding to 16 bytes.
    pub pad: [u32; 2],
}

/// Workgroup sizes and tiles the host must agree on with the shaders.
pub mod shape {
    /// Output columns per matmul workgroup (`TILE_N`).
    pub const MATMUL_TILE_N: u32 = 64;
    /// Tokens per matmul workgroup (`TILE_T`).
    pub const MATMUL_TILE_T: u32 = 8;
    /// Largest row width the row kernels hold in registers (WG * PER_THREAD).
    pub const MAX_ROW: usize = 1024;
    /// Longest sequence attention keeps in workgroup memory (`MAX_SEQ`).
    pub const MAX_SEQ: usize = 512;
    /// Largest head width (attention's workgroup size).
    pub const MAX_HEAD_DIM: usize = 64;
    /// Scores per top-k workgroup (`CHUNK`).
    pub const TOPK_CHUNK: usize = 2048;
    /// Largest k of one top-k (`WG`).
    pub const TOPK_MAX_K: usize = 256;
    /// Vectors per score workgroup.
    pub const SCORE_WG: u32 = 64;
}

/// Matmul epilogues; the numbers match `EPILOGUE_*` in `matmul.wgsl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epilogue {
    /// y = xW + b.
    None = 0,
    /// y = gelu(xW + b).
    Gelu = 1,
    /// y = xW + b + residual.
    Residual = 2,
}

/// Splits a workgroup count over x and y so neither exceeds WebGPU's 65535.
pub fn grid(groups: u32) -> (u32, u32) {
    if groups <= 65535 { (groups.max(1), 1) } else { (65535, groups.div_ceil(65535)) }
}

/// Per-token (id, position, sequence start, sequence length) for sequences of `lens` tokens.
pub fn token_table(ids: &[u32], lens: &[usize]) -> Vec<[u32; 4]> {
    let mut out = Vec::with_capacity(ids.len());
    let mut start = 0;
    for &len in lens {
        for p in 0..len {
            out.push([ids[start + p], p as u32, start as u32, len as u32]);
        }
        start += len;
    }
    out
}

/// Rejects row widths the row kernels cannot hold.
pub fn check_row(h: usize) -> Result<()> {
    if h == 0 || h > shape::MAX_ROW {
        return Err(Error::Gpu(format!("row width {h} is outside the kernels' 1..={}", shape::MAX_ROW)));
    }
    Ok(())
}

/// Rejects attention shapes the kernel cannot hold.
pub fn check_heads(h: usize, heads: usize, lens: &[usize]) -> Result<()> {
    if heads == 0 || h % heads != 0 || h / heads > shape::MAX_HEAD_DIM {
        return Err(Error::Gpu(format!("{heads} heads over width {h}: head width must divide it and be at most {}", shape::MAX_HEAD_DIM)));
    }
    if let Some(l) = lens.iter().find(|&&l| l > shape::MAX_SEQ) {
        return Err(Error::Gpu(format!("sequence of {l} tokens is longer than attention's {}", shape::MAX_SEQ)));
    }
    Ok(())
}
