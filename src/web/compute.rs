//! The encoder and the vector ranking for the browser, on WebGPU when it works
//! and on the wasm CPU path otherwise.
//!
//! Backend choice is "auto", "gpu" or "cpu", as in the CLI. On "auto" any
//! WebGPU failure (no adapter, a refused device, a validation error, a lost
//! device) moves the object to the CPU for the rest of the session; the work
//! that failed is redone there, and `backend` says what happened. On "gpu" the
//! same failures are errors, which is what the parity tests want.

use crate::backend::gpu::{GpuContext, GpuEncoder, GpuRanker};
use crate::error::{Error, Result};
use crate::index::format::Vectors;
use crate::index::search::{code_norms, nearest_in, Hit};
use crate::model::pack::Pack;
use crate::model::{Backend, Encoder};
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

fn js_err(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

fn parse_backend(s: &str) -> std::result::Result<Backend, JsValue> {
    s.parse::<Backend>().map_err(js_err)
}

/// Opens a WebGPU device, refusing software adapters on "auto".
async fn open_gpu(backend: Backend) -> Result<Arc<GpuContext>> {
    let ctx = GpuContext::new().await?;
    if backend == Backend::Auto && ctx.is_software() {
        return Err(Error::Gpu(format!("only a software adapter ({}), slower than the CPU path", ctx.adapter)));
    }
    Ok(Arc::new(ctx))
}

/// Which backend runs, as reported to JavaScript: "gpu: <adapter>" or
/// "cpu: <why> (<kernels> kernels)", the kernels being this module's build
/// ("wasm-simd128", "wasm-relaxed-simd" or "portable").
fn report(gpu: Option<&GpuContext>, why_not: &str) -> String {
    match gpu {
        Some(ctx) => format!("gpu: {}", ctx.describe()),
        None => format!("cpu: {why_not} ({} kernels)", crate::backend::cpu::isa::Isa::best().name()),
    }
}

struct EncoderState {
    cpu: Encoder,
    gpu: Option<GpuEncoder>,
    required: bool,
    why_cpu: String,
    /// Max token ids per GPU batch.
    budget: usize,
}

/// The sentence encoder: a model pack in, unit vectors out.
#[wasm_bindgen(js_name = Encoder)]
pub struct WebEncoder {
    state: Rc<RefCell<EncoderState>>,
    dim: usize,
}

#[wasm_bindgen(js_class = Encoder)]
impl WebEncoder {
    /// Loads a pack (bytes of a `cairn model pack` file) on `backend`
    /// ("auto" | "gpu" | "cpu"). Resolves to an Encoder.
    pub fn load(pack: Vec<u8>, backend: String) -> js_sys::Promise {
        future_to_promise(async move {
            let backend = parse_backend(&backend)?;
            let pack = Pack::parse(pack, Path::new("model pack")).map_err(js_err)?;
            let cpu = Encoder::load_pack(&pack).map_err(js_err)?;
            let dim = cpu.dim();
            let mut state = EncoderState { cpu, gpu: None, required: backend == Backend::Gpu, why_cpu: "CPU requested".into(), budget: 0 };
            if backend != Backend::Cpu {
                let attempt = match open_gpu(backend).await {
                    Ok(ctx) => GpuEncoder::new(ctx, pack.header.config.clone(), &pack),
                    Err(e) => Err(e),
                };
                match attempt {
                    Ok(g) => {
                        state.budget = g.max_batch_tokens();
                        state.gpu = Some(g);
                    }
                    Err(e) if backend == Backend::Gpu => return Err(js_err(e)),
                    Err(e) => state.why_cpu = e.to_string(),
                }
            }
            Ok(WebEncoder { state: Rc::new(RefCell::new(state)), dim }.into())
        })
    }

    /// Embedding width.
    #[wasm_bindgen(getter)]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// "gpu: <adapter>" or "cpu: <why>".
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        let s = self.state.borrow();
        report(s.gpu.as_ref().map(|g| g.context()), &s.why_cpu)
    }

    /// Embeds `texts`; resolves to a Float32Array of (texts, dim) unit vectors, row-major.
    pub fn embed(&self, texts: Vec<String>) -> js_sys::Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let flat = embed_all(&state, &texts).await.map_err(js_err)?;
            Ok(js_sys::Float32Array::from(&flat[..]).into())
        })
    }
}

async fn embed_all(state: &Rc<RefCell<EncoderState>>, texts: &[String]) -> Result<Vec<f32>> {
    let (ids, budget) = {
        let s = state.borrow();
        (texts.iter().map(|t| s.cpu.tokenize(t)).collect::<Result<Vec<_>>>()?, s.budget)
    };
    // Take the GPU out while awaiting, so no RefCell borrow spans an await.
    let gpu = state.borrow_mut().gpu.take();
    if let Some(mut gpu) = gpu {
        let mut out = Vec::new();
        let mut failure = None;
        let mut at = 0;
        while at < ids.len() {
            let mut end = at;
            let mut tokens = 0;
            while end < ids.len() && (end == at || tokens + ids[end].len() <= budget) && end - at < 64 {
                tokens += ids[end].len();
                end += 1;
            }
            match gpu.embed_ids(&ids[at..end]).await {
                Ok(vs) => vs.into_iter().for_each(|v| out.extend(v)),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
            at = end;
        }
        let mut s = state.borrow_mut();
        match failure {
            None => {
                s.gpu = Some(gpu);
                return Ok(out);
            }
            Some(e) if s.required => {
                s.gpu = Some(gpu);
                return Err(e);
            }
            Some(e) => s.why_cpu = format!("WebGPU failed, fell back to the CPU: {e}"),
        }
    }
    let s = state.borrow();
    let mut ws = s.cpu.workspace();
    let mut out = Vec::with_capacity(texts.len() * s.cpu.dim());
    for t in texts {
        out.extend(s.cpu.embed_with(t, &mut ws)?);
    }
    Ok(out)
}

struct RankerState {
    vectors: Vectors,
    norms: Vec<f32>,
    gpu: Option<Rc<GpuRanker>>,
    gpu_ctx: Option<String>,
    required: bool,
    why_cpu: String,
}

/// Cosine ranking of a query against int8 vectors (an index's, or any).
#[wasm_bindgen]
pub struct Ranker {
    state: Rc<RefCell<RankerState>>,
}

#[wasm_bindgen]
impl Ranker {
    /// Uploads `codes` (count x dim int8, row-major) for ranking on `backend`.
    pub fn create(codes: Vec<i8>, dim: usize, backend: String) -> js_sys::Promise {
        future_to_promise(async move {
            let backend = parse_backend(&backend)?;
            if dim == 0 || codes.len() % dim != 0 {
                return Err(js_err(format!("{} codes do not form rows of width {dim}", codes.len())));
            }
            let vectors = Vectors { dim, scales: vec![1.0; codes.len() / dim], codes };
            let norms = code_norms(&vectors);
            let mut state = RankerState { vectors, norms, gpu: None, gpu_ctx: None, required: backend == Backend::Gpu, why_cpu: "CPU requested".into() };
            if backend != Backend::Cpu {
                let attempt = match open_gpu(backend).await {
                    Ok(ctx) => {
                        let name = ctx.describe();
                        GpuRanker::new(ctx, &state.vectors, &state.norms).map(|r| (r, name))
                    }
                    Err(e) => Err(e),
                };
                match attempt {
                    Ok((r, name)) => {
                        state.gpu = Some(Rc::new(r));
                        state.gpu_ctx = Some(name);
                    }
                    Err(e) if backend == Backend::Gpu => return Err(js_err(e)),
                    Err(e) => state.why_cpu = e.to_string(),
                }
            }
            Ok(Ranker { state: Rc::new(RefCell::new(state)) }.into())
        })
    }

    /// "gpu: <adapter>" or "cpu: <why>".
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        let s = self.state.borrow();
        match (&s.gpu, &s.gpu_ctx) {
            (Some(_), Some(name)) => format!("gpu: {name}"),
            _ => format!("cpu: {}", s.why_cpu),
        }
    }

    /// The `k` best rows for `query` (dim,), best first, `exclude` (a row) left
    /// out; resolves to `[{index, score}]`.
    pub fn nearest(&self, query: Vec<f32>, k: usize, exclude: Option<u32>) -> js_sys::Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let exclude = exclude.map(|e| e as usize);
            if query.len() != state.borrow().vectors.dim {
                return Err(js_err(format!("query has {} values; the vectors are {} wide", query.len(), state.borrow().vectors.dim)));
            }
            let gpu = state.borrow().gpu.clone();
            let hits: Vec<Hit> = match gpu {
                Some(r) => match r.nearest(&query, k, exclude).await {
                    Ok(h) => h,
                    Err(e) if state.borrow().required => return Err(js_err(e)),
                    Err(e) => {
                        let mut s = state.borrow_mut();
                        s.gpu = None;
                        s.why_cpu = format!("WebGPU failed, fell back to the CPU: {e}");
                        nearest_in(&s.vectors, &s.norms, &query, k, exclude)
                    }
                },
                None => {
                    let s = state.borrow();
                    nearest_in(&s.vectors, &s.norms, &query, k, exclude)
                }
            };
            let out = js_sys::Array::new();
            for h in hits {
                let o = js_sys::Object::new();
                js_sys::Reflect::set(&o, &"index".into(), &(h.index as u32).into())?;
                js_sys::Reflect::set(&o, &"score".into(), &h.score.into())?;
                out.push(&o);
            }
            Ok(out.into())
        })
    }
}

/// Runs every encoder kernel once on WebGPU against the CPU reference kernels
/// (compiled into this same module) on seeded inputs of awkward shapes, and
/// resolves to `[{kernel, maxError, worstIndex, got, expected}]`. Rejects when
/// there is no WebGPU. The browser tests assert on the report.
#[wasm_bindgen(js_name = kernelSelfTest)]
pub fn kernel_self_test() -> js_sys::Promise {
    future_to_promise(async move {
        let ctx = GpuContext::new().await.map_err(js_err)?;
        let report = crate::backend::gpu::selftest::run(&ctx).await.map_err(js_err)?;
        serde_wasm_bindgen::to_value(&report).map_err(js_err)
    })
}
