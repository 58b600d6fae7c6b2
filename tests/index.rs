//! The static index end to end through the CLI: incremental updates answer as a
//! full rebuild does and rewrite only what changed, the previous generation stays
//! readable, private content never reaches any file, and the importers (Stack
//! Exchange, JSON Lines, Discourse crawled from a local server) behave.

mod common;

use cairn::index::format::FileRole;
use cairn::index::store::Store;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn cairn(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cairn")).args(args).output().expect("cairn runs")
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "cairn failed:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Topics per cluster in these tests: small, so 60 topics make several shards.
const CLUSTER_SIZE: &str = "10";

fn index_dump(dump: &Path, flag: &str, target: &Path) -> String {
    let model = common::model_dir();
    let out = ok(cairn(&["index", "--stackexchange", s(dump), "--model", s(&model), flag, s(target), "--cluster-size", CLUSTER_SIZE]));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `name -> bytes` of every file in an index directory.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

/// Every file an index generation lists (its manifest's, then its catalogs'), from a snapshot of the directory.
fn listed(snapshot: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let mut store = Store::from_manifest(&snapshot["manifest.json"]).unwrap();
    loop {
        let pending: Vec<String> = store.listed().filter(|e| e.role == FileRole::Catalog && !store.has(&e.name)).map(|e| e.name.clone()).collect();
        if pending.is_empty() {
            break;
        }
        for n in pending {
            store.add(&n, &snapshot[&n]).unwrap();
        }
    }
    let mut names: Vec<String> = store.listed().map(|e| e.name.clone()).collect();
    names.sort();
    names
}

fn related(index: &Path, id: &str) -> String {
    String::from_utf8(ok(cairn(&["related", "--index", s(index), "--topic", id, "-k", "8"])).stdout).unwrap()
}

fn ask(index: &Path, question: &str) -> String {
    let model = common::model_dir();
    String::from_utf8(ok(cairn(&["ask", "--index", s(index), "--model", s(&model), question])).stdout).unwrap()
}

/// Replaces the body of post `id` in a dump's Posts.xml.
fn edit_body(dump: &Path, id: &str, body: &str) {
    let path = dump.join("Posts.xml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut found = false;
    let edited: Vec<String> = text
        .lines()
        .map(|line| {
            if common::attr(line, "Id") == Some(id) {
                found = true;
                let old = common::attr(line, "Body").unwrap();
                line.replacen(&format!(" Body=\"{old}\""), &format!(" Body=\"{body}\""), 1)
            } else {
                line.to_string()
            }
        })
        .collect();
    assert!(found, "post {id} in the dump");
    std::fs::write(&path, edited.join("\n")).unwrap();
}

/// Drops question `id` with its answers from a dump.
fn drop_question(dump: &Path, id: &str) {
    let path = dump.join("Posts.xml");
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = text.lines().filter(|l| common::attr(l, "Id") != Some(id) && common::attr(l, "ParentId") != Some(id)).collect();
    std::fs::write(&path, kept.join("\n")).unwrap();
}

/// (topics embedded, topics reused) from `cairn index`'s summary line.
fn embedded_and_reused(log: &str) -> (usize, usize) {
    let line = log.lines().find(|l| l.contains(" topics embedded (")).unwrap_or_else(|| panic!("no summary line in {log}"));
    let number_before = |what: &str| -> usize {
        let head = &line[..line.find(what).unwrap_or_else(|| panic!("{what:?} in {line}"))];
        head.rsplit(|c: char| !c.is_ascii_digit()).find(|w| !w.is_empty()).unwrap().parse().unwrap()
    };
    (number_before(" topics embedded"), number_before(" reused"))
}

#[test]
fn an_update_answers_as_a_rebuild_does_rewrites_only_what_changed_and_keeps_the_old_generation() {
    let tmp = tempfile::tempdir().unwrap();
    let (part, full) = (tmp.path().join("part"), tmp.path().join("full"));
    std::fs::create_dir_all(&part).unwrap();
    std::fs::create_dir_all(&full).unwrap();
    // The full dump: 60 questions, one deleted since the first build. The first
    // build sees 48 of them, one with an older body.
    let ids = common::small_dump(60, &full);
    let (deleted, edited) = (ids[5].clone(), ids[9].clone());
    drop_question(&full, &deleted);
    common::small_dump(48, &part);
    edit_body(&part, &edited, "&lt;p&gt;An older draft of this question about Grover search oracles.&lt;/p&gt;");

    let (updated, rebuilt) = (tmp.path().join("updated"), tmp.path().join("rebuilt"));
    index_dump(&part, "--out", &updated);
    let before = files(&updated);
    let log = index_dump(&full, "--update", &updated);
    // 59 topics now: the 12 new ones and the edited one are embedded, the other 46 reused.
    assert!(log.contains("updating (48 topics"), "{log}");
    assert_eq!(embedded_and_reused(&log), (13, 46), "only new and changed topics are embedded: {log}");
    index_dump(&full, "--out", &rebuilt);

    // Same answers: related topics for every topic, and free-text questions.
    for id in ids.iter().filter(|i| **i != deleted) {
        assert_eq!(related(&updated, id), related(&rebuilt, id), "related topics for {id}");
    }
    let gone = cairn(&["related", "--index", s(&updated), "--topic", &deleted]);
    assert!(!gone.status.success(), "the deleted topic is gone");
    for q in ["How does Grover's algorithm find a marked item?", "error: qubit index out of range", "What is a Bell state?"] {
        assert_eq!(ask(&updated, q), ask(&rebuilt, q), "ask {q:?}");
    }
    ok(cairn(&["verify", "--index", s(&updated)]));

    // The previous generation is still whole: its manifest's files all exist, unchanged.
    let after = files(&updated);
    let old_listed = listed(&before);
    for name in &old_listed {
        assert_eq!(after.get(name), before.get(name), "{name} of the previous generation is kept as it was");
    }

    // An update with nothing new writes nothing but the manifest, and a small
    // change rewrites only some shards.
    let log = index_dump(&full, "--update", &updated);
    assert!(log.contains(" 0 files written") || log.contains(": 0 files written"), "{log}");
    assert_eq!(embedded_and_reused(&log), (0, 59), "{log}");
    let same = files(&updated);
    let new_listed = listed(&same);
    edit_body(&full, &ids[40], "&lt;p&gt;A rewritten question about surface code decoders.&lt;/p&gt;");
    index_dump(&full, "--update", &updated);
    let changed = files(&updated);
    let now_listed = listed(&changed);
    // In an index this small every topic lists every other among its 32 nearest,
    // so most links chunks change; what does not depend on the edit must not.
    let renamed = |prefix: &str| now_listed.iter().filter(|n| n.starts_with(prefix) && !new_listed.contains(n)).count();
    assert_eq!(renamed("vectors-"), 1, "only the edited topic's cluster has new vectors: {now_listed:?}");
    assert_eq!(renamed("centroids-") + renamed("directory-"), 0, "clusters and ids are unchanged");
    assert!(renamed("cards-") >= 1 && renamed("links-") >= 1);
    assert_eq!(renamed("passages-"), 1, "only the edited topic's passage chunk is rewritten");
    ok(cairn(&["verify", "--index", s(&updated)]));
}

/// Every marker word must be absent from every byte of every file in `dir`.
fn assert_absent(dir: &Path, markers: &[&str]) {
    let all = files(dir);
    assert!(all.len() > 3, "an index in {}", dir.display());
    for (name, bytes) in &all {
        let text = String::from_utf8_lossy(bytes).to_lowercase();
        for m in markers {
            assert!(!text.contains(m), "{m} leaked into {}", name);
        }
    }
}

/// Every marker word is present in at least one file: the check above can fail.
fn assert_present(dir: &Path, words: &[&str]) {
    let all = files(dir);
    for w in words {
        assert!(all.values().any(|b| String::from_utf8_lossy(b).to_lowercase().contains(w)), "{w} is indexed");
    }
}

#[test]
fn deleted_stack_exchange_posts_and_private_jsonl_rows_never_reach_the_index() {
    let model = common::model_dir();
    let tmp = tempfile::tempdir().unwrap();
    let dump = tmp.path().join("dump");
    std::fs::create_dir_all(&dump).unwrap();
    common::small_dump(12, &dump);
    let posts = std::fs::read_to_string(dump.join("Posts.xml")).unwrap();
    let deleted = concat!(
        "  <row Id=\"990001\" PostTypeId=\"1\" CreationDate=\"2020-01-01T00:00:00.000\" DeletionDate=\"2020-01-02T00:00:00.000\" Score=\"1\" ",
        "Body=\"&lt;p&gt;pangolinsecret deleted question&lt;/p&gt;\" Title=\"Deleted pangolinsecret\" Tags=\"&lt;grover&gt;\" AnswerCount=\"1\" />\n",
        "  <row Id=\"990002\" PostTypeId=\"2\" ParentId=\"990001\" CreationDate=\"2020-01-01T01:00:00.000\" Score=\"1\" Body=\"&lt;p&gt;answer to pangolinsecret&lt;/p&gt;\" />\n"
    );
    std::fs::write(dump.join("Posts.xml"), posts.replace("</posts>", &format!("{deleted}</posts>"))).unwrap();
    let se = tmp.path().join("se");
    let out = ok(cairn(&["index", "--stackexchange", s(&dump), "--model", s(&model), "--out", s(&se)]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("left out as not public"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_absent(&se, &["pangolinsecret"]);
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(se.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["left_out"].to_string().contains("deleted"), "the manifest says what was left out: {}", manifest["left_out"]);

    let jsonl = tmp.path().join("export.jsonl");
    let rows = [
        r#"{"id": 1, "title": "Setting up the stormgauge sensor", "public": true, "created": "2024-01-01T00:00:00Z", "tags": ["sensors"], "author": {"id": "u1", "name": "Ann"}, "body_html": "<p>How do I calibrate the stormgauge after mounting it?</p>", "answers": [{"id": "a1", "created": "2024-01-02T00:00:00Z", "accepted": true, "author": {"id": "u2", "name": "Bo"}, "body": "Hold the reset button for five seconds, then rotate it once."}]}"#,
        r#"{"id": "2", "title": "Private moderation thread marmosetsecret", "public": false, "created": "2024-01-01T00:00:00Z", "body": "marmosetsecret ban list"}"#,
        r#"{"id": "3", "title": "Stormgauge readings drift at night", "public": true, "created": "2024-01-03T00:00:00Z", "body": "The readings drift by two degrees after sunset.", "answers": [{"id": "a3", "created": "2024-01-04T00:00:00Z", "deleted": true, "body": "ocelotsecret removed answer"}]}"#,
        r#"{"id": "4", "title": "Deleted thread tapirsecret", "public": true, "deleted": true, "created": "2024-01-01T00:00:00Z", "body": "tapirsecret"}"#,
    ];
    std::fs::write(&jsonl, rows.join("\n") + "\n").unwrap();
    let jl = tmp.path().join("jl");
    let out = ok(cairn(&["index", "--jsonl", s(&jsonl), "--model", s(&model), "--out", s(&jl)]));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("imported 2 topics"), "{log}");
    assert_absent(&jl, &["marmosetsecret", "ocelotsecret", "tapirsecret"]);
    assert_present(&jl, &["stormgauge", "sunset"]);
}

#[test]
fn jsonl_errors_name_the_line_and_a_missing_public_flag_is_refused() {
    let model = common::model_dir();
    let tmp = tempfile::tempdir().unwrap();
    let jsonl = tmp.path().join("export.jsonl");
    let rows = [
        r#"{"id": 1, "title": "A fine thread", "public": true, "created": "2024-01-01T00:00:00Z", "body": "text"}"#,
        r#"{"id": 2, "title": "No public flag", "created": "2024-01-01T00:00:00Z", "body": "text"}"#,
        r#"{"id": 3, "title": "Broken"#,
        r#"{"id": 4, "title": "Typo in a field", "public": true, "created": "2024-01-01T00:00:00Z", "bodyy": "text"}"#,
    ];
    std::fs::write(&jsonl, rows.join("\n") + "\n").unwrap();
    let out_dir = tmp.path().join("out");
    let out = ok(cairn(&["index", "--jsonl", s(&jsonl), "--model", s(&model), "--out", s(&out_dir)]));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("imported 1 topics"), "{log}");
    for (line, what) in [(2, "public"), (3, ""), (4, "bodyy")] {
        let needle = format!("line {line}");
        let hit = log.lines().find(|l| l.contains(&needle)).unwrap_or_else(|| panic!("line {line} is reported:\n{log}"));
        assert!(hit.contains(what), "line {line} names {what:?}: {hit}");
    }
}

/// A minimal HTTP/1.1 server for the fixture forum: each request is logged with
/// its arrival time; the first request for `/t/102.json` gets a 429.
struct Forum {
    base: String,
    log: Arc<Mutex<Vec<(Instant, String)>>>,
}

fn fixture(rel: &str) -> PathBuf {
    common::root().join("tests/data/discourse").join(rel)
}

impl Forum {
    fn start() -> Forum {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let log: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
        let seen = log.clone();
        std::thread::spawn(move || {
            let mut refused_once = false;
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    continue;
                }
                let mut header = String::new();
                while reader.read_line(&mut header).map(|n| n > 2).unwrap_or(false) {
                    assert!(!header.to_lowercase().starts_with("authorization") && !header.to_lowercase().starts_with("cookie"), "no credentials");
                    header.clear();
                }
                let target = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                seen.lock().unwrap().push((Instant::now(), target.clone()));
                let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                let file = match path {
                    "/latest.json" => {
                        let page = query.split('&').find_map(|kv| kv.strip_prefix("page=")).unwrap_or("0");
                        Some(fixture(&format!("site/latest/page-{page}.json")))
                    }
                    p if p.ends_with(".json") => Some(fixture(&format!("site{p}"))),
                    _ => None,
                };
                let response = if path == "/t/102.json" && !refused_once {
                    refused_once = true;
                    "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".as_bytes().to_vec()
                } else {
                    match file.and_then(|f| std::fs::read(f).ok()) {
                        Some(body) => {
                            let mut r = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).into_bytes();
                            r.extend(body);
                            r
                        }
                        None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                    }
                };
                let _ = stream.write_all(&response);
            }
        });
        Forum { base, log }
    }

    fn take(&self) -> Vec<(Instant, String)> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

const PRIVATE_MARKERS: [&str; 7] = ["quokkasecret", "unlistedwombat", "zebrafinch", "whisperlynx", "hiddenmarmot", "deletedotter", "zebracorn"];

#[test]
fn discourse_is_crawled_politely_resumably_and_only_its_public_content_is_indexed() {
    let model = common::model_dir();
    let tmp = tempfile::tempdir().unwrap();
    let forum = Forum::start();
    let (crawl, index) = (tmp.path().join("crawl"), tmp.path().join("index"));
    const RATE: f64 = 20.0; // requests per second: at least 50 ms apart
    let rate = RATE.to_string();
    let args = ["index", "--discourse", &forum.base, "--crawl-dir", s(&crawl), "--rate", &rate, "--model", s(&model), "--out", s(&index)];
    let out = ok(cairn(&args));
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let requests = forum.take();
    let paths: Vec<&str> = requests.iter().map(|(_, p)| p.as_str()).collect();

    // Polite: spaced, retried after the 429 no sooner than Retry-After, never a restricted topic.
    // The client waits from the end of each response, so arrivals are at least 1/RATE apart however loaded the machine is.
    let min_gap = Duration::from_secs_f64(1.0 / RATE);
    for pair in requests.windows(2) {
        assert!(pair[1].0 - pair[0].0 >= min_gap, "{} came {:?} after {}", pair[1].1, pair[1].0 - pair[0].0, pair[0].1);
    }
    let tries: Vec<Instant> = requests.iter().filter(|(_, p)| p == "/t/102.json").map(|(t, _)| *t).collect();
    assert_eq!(tries.len(), 2, "one 429, one retry: {paths:?}");
    assert!(tries[1] - tries[0] >= Duration::from_millis(990), "Retry-After: 1 was honoured");
    for private in ["/t/105.json", "/t/107.json", "/t/108.json"] {
        assert!(!paths.contains(&private), "{private} is not fetched: {paths:?}");
    }
    assert!(paths.iter().any(|p| p.starts_with("/t/103/posts.json?post_ids[]=")), "the rest of a long topic is fetched: {paths:?}");
    assert!(paths.contains(&"/latest.json?page=1"), "listing pages are followed");
    assert!(log.contains("4 topics fetched") && log.contains("3 not public"), "{log}");
    assert!(log.contains("imported 4 topics"), "{log}");

    // The index: public posts in, every private marker out, the long topic complete.
    assert_present(&index, &["build-essential", "brick_incremental", "reply 4"]);
    assert_absent(&index, &PRIVATE_MARKERS);
    let related = String::from_utf8(ok(cairn(&["related", "--index", s(&index), "--topic", "104", "-k", "3"])).stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(&related).unwrap();
    assert!(v["topic"]["url"].as_str().unwrap().starts_with(&format!("{}/t/lock-file-version-not-supported/104", forum.base)), "{related}");
    let answer = ask(&index, "error: linker `cc` not found");
    let a: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(a["threads"][0]["id"], "101", "{answer}");

    // Resumed: a second crawl fetches only listings and what is missing.
    std::fs::remove_file(crawl.join("t/101.json")).unwrap();
    let out = ok(cairn(&args[..args.len() - 2].iter().copied().chain(["--update", s(&index)]).collect::<Vec<_>>()));
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let paths: Vec<String> = forum.take().into_iter().map(|(_, p)| p).collect();
    let topic_fetches: Vec<&String> = paths.iter().filter(|p| p.starts_with("/t/")).collect();
    assert_eq!(topic_fetches, vec!["/t/101.json"], "only the missing topic is fetched again");
    assert!(log.contains("1 topics fetched, 3 unchanged"), "{log}");

    // --since: topics last active before the date are not fetched.
    let (recent, recent_index) = (tmp.path().join("recent"), tmp.path().join("recent-index"));
    let since_args = ["index", "--discourse", &forum.base, "--crawl-dir", s(&recent), "--rate", &rate, "--since", "2024-03-06", "--model", s(&model), "--out", s(&recent_index)];
    let out = ok(cairn(&since_args));
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let paths: Vec<String> = forum.take().into_iter().map(|(_, p)| p).collect();
    assert!(paths.contains(&"/t/103.json".to_string()) && paths.contains(&"/t/104.json".to_string()), "{paths:?}");
    assert!(!paths.contains(&"/t/101.json".to_string()) && !paths.contains(&"/t/102.json".to_string()), "{paths:?}");
    assert!(log.contains("imported 2 topics"), "{log}");

    // A saved directory with a private message in it (put there by hand): left out too.
    std::fs::copy(fixture("pm-106.json"), crawl.join("t/106.json")).unwrap();
    let saved = tmp.path().join("saved-index");
    let out = ok(cairn(&["index", "--discourse", s(&crawl), "--model", s(&model), "--out", s(&saved)]));
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(log.contains("imported 4 topics") && log.contains("private message"), "{log}");
    assert_absent(&saved, &PRIVATE_MARKERS);
}
