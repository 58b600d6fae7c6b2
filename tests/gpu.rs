//! GPU kernels against the CPU reference kernels, on seeded random inputs of
//! awkward shapes (odd sizes, smaller than a workgroup, not multiples of 4).
//!
//! These run on whatever adapter wgpu finds; in CI that is Mesa's lavapipe.
//! With `CAIRN_REQUIRE_GPU=1` (set by scripts/test.sh) a missing adapter is a
//! failure; otherwise the tests say why they did not run and pass.

mod common;
use cairn::backend::cpu::{self, Linear};
use cairn::backend::gpu::kernels::{Epilogue, Kernel};
use cairn::backend::gpu::weights::BlockMatrix;
use cairn::backend::gpu::{block_on, ops, GpuContext, GpuRanker};
use cairn::index::format::Vectors;
use cairn::quant::{self, Scheme};
use std::sync::{Arc, OnceLock};

/// |gpu - cpu| <= ABS + REL * |cpu| for elementwise kernels.
const ABS_TOL: f32 = 1e-4;
const REL_TOL: f32 = 1e-4;
/// Matmul sums K products: the tolerance grows with sqrt(K) (f32 reassociation).
const MATMUL_ABS_TOL_PER_SQRT_K: f32 = 2e-5;
/// Cosine scores from the GPU ranker against the CPU's.
const SCORE_TOL: f32 = 1e-5;

fn context() -> Option<Arc<GpuContext>> {
    static CTX: OnceLock<Result<Arc<GpuContext>, String>> = OnceLock::new();
    let ctx = CTX.get_or_init(|| GpuContext::new_blocking().map(Arc::new).map_err(|e| e.to_string()));
    match ctx {
        Ok(c) => Some(c.clone()),
        Err(e) if std::env::var_os("CAIRN_REQUIRE_GPU").is_some_and(|v| v == "1") => panic!("CAIRN_REQUIRE_GPU=1 but {e}"),
        Err(e) => {
            eprintln!("skipping GPU test: {e}");
            None
        }
    }
}

/// xorshift64*: deterministic inputs without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    /// Uniform in [-1, 1).
    fn f(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.f() * scale).collect()
    }
}

fn assert_close(what: &str, got: &[f32], want: &[f32], abs: f32, rel: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= abs + rel * w.abs(), "{what}: index {i}: got {g}, expected {w} (tolerance {abs} + {rel} x |expected|)");
    }
}

#[test]
fn every_kernel_compiles_on_the_adapter() {
    let Some(ctx) = context() else { return };
    eprintln!("adapter: {}", ctx.describe());
    for k in Kernel::ALL {
        let module = ctx.device.create_shader_module(wgpu::ShaderModuleDescriptor { label: None, source: wgpu::ShaderSource::Wgsl(k.source().into()) });
        drop(module);
        ctx.check().unwrap_or_else(|e| panic!("{k:?}: {e}"));
    }
}

#[test]
fn matmul_matches_cpu_for_every_format_and_epilogue() {
    let Some(ctx) = context() else { return };
    let mut rng = Rng(0x5eed_0001);
    // (tokens, K, N): one token; fewer outputs than a workgroup; K not a multiple of 4 or 32; more tokens than a tile.
    for (tokens, k, n) in [(1, 5, 3), (3, 37, 70), (9, 64, 65), (17, 100, 130), (8, 384, 96)] {
        let w = rng.vec(n * k, 0.5);
        let b = rng.vec(n, 0.1);
        let x = rng.vec(tokens * k, 1.0);
        let residual = rng.vec(tokens * n, 1.0);
        for scheme in [Scheme::F32, Scheme::Q8Row, Scheme::Q8Block32, Scheme::Q4Block32] {
            let m = BlockMatrix::from_stored(scheme, &quant::quantise(scheme, &w, n, k), n, k).unwrap();
            // CPU reference on the same (dequantised) weights.
            let wd: Vec<f32> = (0..n * k).map(|i| m.value(i / k, i % k)).collect();
            let mut base = vec![0.0; tokens * n];
            Linear::new(&wd, &b, n, k).forward(&x, tokens, &mut base);
            for epi in [Epilogue::None, Epilogue::Gelu, Epilogue::Residual] {
                let mut want = base.clone();
                match epi {
                    Epilogue::None => {}
                    Epilogue::Gelu => cpu::gelu(&mut want),
                    Epilogue::Residual => cpu::add_in_place(&mut want, &residual),
                }
                let got = block_on(ops::matmul(&ctx, &x, tokens, &m, &b, (epi == Epilogue::Residual).then_some(&residual[..]), epi)).unwrap();
                let tol = MATMUL_ABS_TOL_PER_SQRT_K * (k as f32).sqrt();
                assert_close(&format!("matmul {tokens}x{k}x{n} {scheme:?} {epi:?}"), &got, &want, tol, REL_TOL);
            }
        }
    }
}

#[test]
fn layer_norm_matches_cpu() {
    let Some(ctx) = context() else { return };
    let mut rng = Rng(0x5eed_0002);
    for (rows, h) in [(1, 5), (7, 129), (3, 384), (2, 1000)] {
        let x = rng.vec(rows * h, 3.0);
        let (g, b) = (rng.vec(h, 1.0), rng.vec(h, 0.5));
        let mut want = x.clone();
        cpu::layer_norm(&mut want, h, &g, &b, 1e-12);
        let got = block_on(ops::layer_norm(&ctx, &x, h, &g, &b, 1e-12)).unwrap();
        assert_close(&format!("layer_norm {rows}x{h}"), &got, &want, ABS_TOL, REL_TOL);
    }
}

#[test]
fn embedding_gather_matches_cpu_for_every_table_format() {
    let Some(ctx) = context() else { return };
    let mut rng = Rng(0x5eed_0003);
    for (vocab, h, lens) in [(11, 37, vec![1, 3, 7]), (50, 384, vec![2, 1])] {
        let table = rng.vec(vocab * h, 0.2);
        let positions = 8;
        let position = rng.vec(positions * h, 0.2);
        let (g, b) = (rng.vec(h, 1.0), rng.vec(h, 0.1));
        let n: usize = lens.iter().sum();
        let ids: Vec<u32> = (0..n).map(|_| (rng.next() % vocab as u64) as u32).collect();
        for scheme in [Scheme::F32, Scheme::Q8Row, Scheme::Q8Block32, Scheme::Q4Block32] {
            let m = BlockMatrix::from_stored(scheme, &quant::quantise(scheme, &table, vocab, h), vocab, h).unwrap();
            let mut want = Vec::new();
            let mut t = 0;
            for &len in &lens {
                for p in 0..len {
                    want.extend((0..h).map(|c| m.value(ids[t] as usize, c) + position[p * h + c]));
                    t += 1;
                }
            }
            cpu::layer_norm(&mut want, h, &g, &b, 1e-12);
            let got = block_on(ops::embed(&ctx, &ids, &lens, &m, &position, &g, &b, 1e-12)).unwrap();
            assert_close(&format!("embed vocab {vocab} h {h} {scheme:?}"), &got, &want, ABS_TOL, REL_TOL);
        }
    }
}

#[test]
fn attention_matches_cpu_on_ragged_batches() {
    let Some(ctx) = context() else { return };
    let mut rng = Rng(0x5eed_0004);
    // (hidden, heads, lengths): head widths 4, 10 (64 not a multiple), 32; a sequence longer than a workgroup.
    for (h, heads, lens) in [(12, 3, vec![1, 5, 70]), (20, 2, vec![3, 2]), (384, 12, vec![2, 130, 9])] {
        let n: usize = lens.iter().sum();
        let qkv = rng.vec(n * 3 * h, 2.0);
        let mut want = vec![0.0; n * h];
        let mut start = 0;
        for &len in &lens {
            let mut scores = vec![0.0; len * len];
            cpu::attention(&qkv[start * 3 * h..(start + len) * 3 * h], len, h, heads, &mut want[start * h..(start + len) * h], &mut scores);
            start += len;
        }
        let got = block_on(ops::attention(&ctx, &qkv, &lens, h, heads)).unwrap();
        assert_close(&format!("attention h {h} heads {heads} lens {lens:?}"), &got, &want, ABS_TOL, REL_TOL);
    }
}

#[test]
fn pooling_matches_cpu() {
    let Some(ctx) = context() else { return };
    let mut rng = Rng(0x5eed_0005);
    for (h, lens) in [(5, vec![1, 4, 9]), (384, vec![3, 1]), (130, vec![0, 2])] {
        let n: usize = lens.iter().sum();
        let x = rng.vec(n * h, 1.0);
        let mut want = Vec::new();
        let mut start = 0;
        for &len in &lens {
            let mut v = vec![0.0; h];
            cpu::mean_rows(&x[start * h..(start + len) * h], len, h, &mut v);
            cpu::l2_normalize(&mut v);
            want.extend(v);
            start += len;
        }
        let got = block_on(ops::pool(&ctx, &x, &lens, h)).unwrap();
        assert_close(&format!("pool h {h} lens {lens:?}"), &got, &want, ABS_TOL, REL_TOL);
    }
}

/// Brute force: every vector scored with the CPU formula, sorted, ties to the lower position.
fn brute_force(v: &Vectors, query: &[f32], k: usize, exclude: Option<usize>) -> Vec<(usize, f32)> {
    let qn = query.iter().map(|x| x * x).sum::<f32>().sqrt();
    let mut all: Vec<(usize, f32)> = (0..v.len())
        .filter(|&i| Some(i) != exclude)
        .map(|i| {
            let row = v.row(i);
            let norm = row.iter().map(|&c| (c as f32) * (c as f32)).sum::<f32>().sqrt();
            let dot: f32 = query.iter().zip(row).map(|(q, &c)| q * c as f32).sum();
            (i, if norm * qn > 0.0 { dot / (norm * qn) } else { 0.0 })
        })
        .collect();
    all.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

#[test]
fn ranking_matches_brute_force_with_ties_and_exclusion() {
    let Some(ctx) = context() else { return };
    let mut rng = Rng(0x5eed_0006);
    for (count, dim, k) in [(1, 4, 3), (5, 12, 5), (3000, 32, 10), (5000, 384, 64), (70, 8, 1)] {
        let mut raw: Vec<Vec<f32>> = (0..count).map(|_| rng.vec(dim, 1.0)).collect();
        // Exact duplicates give tied scores; the lower position must win.
        if count > 10 {
            raw[9] = raw[2].clone();
            raw[count - 1] = raw[2].clone();
        }
        let v = Vectors::quantise(&raw, dim);
        let norms: Vec<f32> = (0..count).map(|i| v.row(i).iter().map(|&c| (c as f32) * (c as f32)).sum::<f32>().sqrt()).collect();
        let ranker = GpuRanker::new(ctx.clone(), &v, &norms).unwrap();
        for (query, exclude) in [(raw[count / 2].clone(), Some(count / 2)), (rng.vec(dim, 1.0), None), (raw[2.min(count - 1)].clone(), None)] {
            let got = cairn::backend::gpu::block_on(ranker.nearest(&query, k, exclude)).unwrap();
            let want = brute_force(&v, &query, k, exclude);
            assert_eq!(got.len(), want.len(), "count {count} k {k}: number of hits");
            for (r, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g.score - w.1).abs() <= SCORE_TOL, "count {count} k {k} rank {r}: score {} vs {}", g.score, w.1);
                // Positions may differ only where scores tie within tolerance.
                if g.index != w.0 {
                    let wg = want.iter().find(|x| x.0 == g.index).map(|x| x.1);
                    assert!(wg.is_some_and(|s| (s - w.1).abs() <= SCORE_TOL), "count {count} k {k} rank {r}: position {} vs {}", g.index, w.0);
                }
            }
            if let Some(e) = exclude {
                assert!(got.iter().all(|h| h.index != e), "excluded position {e} returned");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The whole encoder and the CLI on the GPU.

use cairn::model::pack::{self, Quant};
use cairn::model::{Backend, Encoder, ModelFiles};
use std::path::PathBuf;

/// GPU against CPU with the same weights (issue 4's bound).
const GPU_CPU_MIN_COSINE: f32 = 0.9999;
/// ... for quantised packs: the CPU kernels also quantise activations at run time
/// (int8 blocks, int16 for Q/K/V) while the GPU ones keep them f32, so the two
/// paths differ by the activation rounding too; each path alone still meets the
/// golden bounds below.
const GPU_CPU_MIN_COSINE_QUANTISED: f32 = 0.999;
/// f32 weights on the GPU against sentence-transformers.
const GPU_F32_MIN_COSINE: f32 = 0.9999;
/// int8 pack bounds (the same as on the CPU, tests/packs.rs).
const INT8_MEAN_COSINE: f32 = 0.9995;
const INT8_MIN_COSINE: f32 = 0.998;
/// int4 floors today (tests/packs.rs explains why they are below the goal).
const INT4_MEAN_FLOOR_TODAY: f32 = 0.984;
const INT4_MIN_FLOOR_TODAY: f32 = 0.945;

#[derive(serde::Deserialize)]
struct Golden {
    cases: Vec<GoldenCase>,
}
#[derive(serde::Deserialize)]
struct GoldenCase {
    text: String,
    embedding: Vec<f32>,
}

/// The model directory, and int8 / int4 packs of it written to a temporary directory.
fn models(dir: &std::path::Path) -> Vec<(&'static str, PathBuf)> {
    let model = common::model_dir();
    let files = ModelFiles::read_dir(&model).unwrap();
    let mut out = vec![("f32", model)];
    for (name, q) in [("int8", Quant::Int8), ("int4", Quant::Int4)] {
        let p = dir.join(format!("{name}.cpk"));
        std::fs::write(&p, pack::build(&files, q).unwrap().0).unwrap();
        out.push((name, p));
    }
    out
}

/// Texts the golden file does not hold: titles of the first Ask Ubuntu questions, then one
/// whole question (long, with HTML, truncated at 256 tokens), a one-letter text and an empty one.
/// Kept short: lavapipe runs the encoder about 100x slower than the CPU path.
fn unseen_texts(n: usize) -> Vec<String> {
    let tsv = std::fs::read_to_string(common::root().join("tests/data/askubuntu_noclue_val.tsv")).unwrap();
    let questions: Vec<&str> = tsv.lines().filter_map(|l| l.split('\t').nth(1)).collect();
    let mut texts: Vec<String> = questions.iter().take(n).map(|q| q.split("<p>").next().unwrap().to_string()).collect();
    texts.push(questions[n].to_string());
    texts.push("x".into());
    texts.push(String::new());
    texts
}

#[test]
fn encoder_on_gpu_matches_cpu_and_the_golden_file_for_every_pack() {
    let Some(_ctx) = context() else { return };
    let g: Golden = serde_json::from_slice(&std::fs::read(common::root().join("tests/data/minilm_public.json")).unwrap()).unwrap();
    let golden_texts: Vec<String> = g.cases.iter().map(|c| c.text.clone()).collect();
    let unseen = unseen_texts(16);
    let dir = tempfile::tempdir().unwrap();
    for (name, path) in models(dir.path()) {
        let gpu = Encoder::open_on(&path, Backend::Gpu).unwrap();
        assert!(gpu.backend().starts_with("gpu: "), "{name}: {}", gpu.backend());
        let cpu = Encoder::open(&path).unwrap();
        // One call embeds all texts in ragged batches of mixed lengths.
        let mut golden_on_gpu = Vec::new();
        for (set, texts) in [("golden", &golden_texts), ("unseen", &unseen)] {
            let on_gpu = gpu.embed_many(texts, &|| {}).unwrap();
            let on_cpu = cpu.embed_many(texts, &|| {}).unwrap();
            for (i, (a, b)) in on_gpu.iter().zip(&on_cpu).enumerate() {
                if b.iter().all(|&x| x == 0.0) {
                    assert!(a.iter().all(|&x| x == 0.0), "{name} {set} {i}: empty text must give zeros");
                    continue;
                }
                let cos = common::cosine(a, b);
                let bound = if name == "f32" { GPU_CPU_MIN_COSINE } else { GPU_CPU_MIN_COSINE_QUANTISED };
                assert!(cos >= bound, "{name} {set} text {i} ({:?}): GPU vs CPU cosine {cos}", &texts[i].chars().take(60).collect::<String>());
            }
            if set == "golden" {
                golden_on_gpu = on_gpu;
            }
        }
        assert!(gpu.backend().starts_with("gpu: "), "{name}: still on the GPU after embedding: {}", gpu.backend());
        let cos: Vec<f32> = g.cases.iter().zip(&golden_on_gpu).map(|(c, v)| common::cosine(&c.embedding, v)).collect();
        let mean = cos.iter().sum::<f32>() / cos.len() as f32;
        let min = cos.iter().copied().fold(1.0, f32::min);
        match name {
            "f32" => assert!(min >= GPU_F32_MIN_COSINE, "f32 on GPU vs golden: min {min}"),
            "int8" => assert!(mean >= INT8_MEAN_COSINE && min >= INT8_MIN_COSINE, "int8 on GPU vs golden: mean {mean}, min {min}"),
            _ => assert!(mean >= INT4_MEAN_FLOOR_TODAY && min >= INT4_MIN_FLOOR_TODAY, "int4 on GPU vs golden: mean {mean}, min {min}"),
        }
        eprintln!("{name} on GPU vs golden: mean {mean:.6}, min {min:.6}");
    }
}

fn cairn_cli(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// With no adapter (wgpu told to use a backend this build lacks), `--backend gpu`
/// is a clear error and `--backend auto` runs on the CPU and says why.
#[test]
fn backend_choice_without_an_adapter() {
    let model = common::model_dir();
    let m = model.to_str().unwrap();
    let no_gpu = [("WGPU_BACKEND", "dx12")];
    let out = cairn_cli(&["embed", "--model", m, "--backend", "gpu"], "\"qubit\"\n", &no_gpu);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && out.stdout.is_empty(), "gpu without adapter must fail without output: {err}");
    assert!(err.contains("no GPU adapter"), "{err}");
    let out = cairn_cli(&["embed", "--model", m, "--backend", "auto"], "\"qubit\"\n", &no_gpu);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("encoder: cpu: GPU: no GPU adapter"), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

/// `cairn embed --backend gpu` and `cairn related --backend gpu` agree with the CPU.
#[test]
fn cli_gpu_backend_agrees_with_cpu() {
    let Some(_ctx) = context() else { return };
    let model = common::model_dir();
    let m = model.to_str().unwrap();
    let input: String = unseen_texts(6).iter().map(|t| serde_json::to_string(t).unwrap() + "\n").collect();
    let vecs = |backend: &str| -> Vec<Vec<f32>> {
        let out = cairn_cli(&["embed", "--model", m, "--backend", backend], &input, &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let (g, c) = (vecs("gpu"), vecs("cpu"));
    assert_eq!(g.len(), c.len());
    for (i, (a, b)) in g.iter().zip(&c).enumerate() {
        if b.iter().any(|&x| x != 0.0) {
            assert!(common::cosine(a, b) >= GPU_CPU_MIN_COSINE, "line {i}");
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump");
    std::fs::create_dir(&dump).unwrap();
    let ids = common::small_dump(40, &dump);
    let index = dir.path().join("index");
    let out = cairn_cli(&["index", "--stackexchange", dump.to_str().unwrap(), "--model", m, "--out", index.to_str().unwrap(), "--backend", "cpu"], "", &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for id in ids.iter().take(5) {
        let related = |backend: &str| -> serde_json::Value {
            let out = cairn_cli(&["related", "--index", index.to_str().unwrap(), "--topic", id, "--backend", backend], "", &[]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            serde_json::from_slice(&out.stdout).unwrap()
        };
        let (g, c) = (related("gpu"), related("cpu"));
        let (g, c) = (g["related"].as_array().unwrap(), c["related"].as_array().unwrap());
        assert_eq!(g.len(), c.len(), "topic {id}");
        for (a, b) in g.iter().zip(c) {
            assert_eq!((&a["id"], &a["reason"]), (&b["id"], &b["reason"]), "topic {id}");
            assert!((a["score"].as_f64().unwrap() - b["score"].as_f64().unwrap()).abs() < 1e-5, "topic {id}");
        }
    }
}
