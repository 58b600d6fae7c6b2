//! The `cairn` binary: embed, index, related; errors that name what is wrong.

mod common;
use cairn::index::format::{chunk_key, FileRole, TopicRef, MANIFEST_FILE};
use cairn::index::store::{dir::DirStore, Needs};
use cairn::ingest::stackexchange;
use cairn::model::Encoder;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn cairn(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The child may exit before reading (a bad --model): a closed pipe is not a failure.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

#[test]
fn embed_writes_one_unit_vector_per_line_in_order() {
    let model = common::model_dir();
    let texts = ["", "qubit decoherence", "How do I install Qiskit?"];
    let input: String = texts.iter().map(|t| serde_json::to_string(t).unwrap() + "\n").collect();
    let out = cairn(&["embed", "--model", model.to_str().unwrap()], &input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Vec<f32>> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    let enc = Encoder::from_dir(&model).unwrap();
    for (t, v) in texts.iter().zip(&lines) {
        assert_eq!(v.len(), 384);
        assert!(common::cosine(v, &enc.embed(t).unwrap()) > 0.99999, "line for {t:?} is its own embedding");
    }
}

#[test]
fn embed_names_the_bad_line_and_fails() {
    let model = common::model_dir();
    let out = cairn(&["embed", "--model", model.to_str().unwrap()], "\"fine\"\nnot json\n\"also fine\"\n");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing is written before the input is known to be good");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stdin line 2"), "{err}");
    let out = cairn(&["embed", "--model", model.to_str().unwrap()], "[\"an array\"]\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdin line 1"));
}

#[test]
fn missing_model_is_a_clear_error() {
    let out = cairn(&["embed", "--model", "/nonexistent/model"], "\"x\"\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/model") && err.contains("model fetch"), "{err}");
}

/// Builds an index of the first 60 sample questions. The stored nearest topics must agree
/// with brute force over the f32 embeddings; `cairn related` must give true reasons, and a
/// live scan must agree with the stored lists; a corrupted file must be refused by name.
#[test]
fn index_search_matches_brute_force_reasons_are_true_and_corruption_is_refused() {
    let model = common::model_dir();
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump");
    std::fs::create_dir(&dump).unwrap();
    let ids = common::small_dump(60, &dump);
    let out_dir = dir.path().join("index");
    let out = cairn(
        &["index", "--stackexchange", dump.to_str().unwrap(), "--model", model.to_str().unwrap(), "--out", out_dir.to_str().unwrap()],
        "",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("imported 60 topics"));

    // Oracle: f32 embeddings of the same topic texts, exact cosine, sorted.
    let enc = Encoder::from_dir(&model).unwrap();
    let topics = stackexchange::import(&dump, stackexchange::DEFAULT_URL_TEMPLATE).unwrap().topics;
    let vecs: Vec<Vec<f32>> = topics.iter().map(|t| enc.embed(&t.embedding_text()).unwrap()).collect();
    let pos = |id: &str| topics.iter().position(|t| t.id == id).unwrap();
    let mut store = DirStore::open(&out_dir).unwrap();
    store.load_all().unwrap();
    let cards: std::collections::HashMap<TopicRef, String> = store.store.loaded_cards().into_iter().map(|(r, c)| (r, c.id.clone())).collect();
    const K: usize = 10;
    const MIN_OVERLAP: usize = 9; // int8 vectors may swap a near-tie at the boundary
    for probe in [0usize, 7, 33, 59] {
        let mut brute: Vec<(f32, &str)> =
            (0..topics.len()).filter(|&j| j != probe).map(|j| (common::cosine(&vecs[probe], &vecs[j]), topics[j].id.as_str())).collect();
        brute.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap());
        let want: Vec<&str> = brute.iter().take(K).map(|x| x.1).collect();
        let at = store.store.loaded_cards().into_iter().find(|(_, c)| c.id == ids[probe]).unwrap().0;
        let links = store.store.links(at, &mut Needs::default()).unwrap();
        let got: Vec<&str> = links.similar.iter().take(K).map(|s| cards[&s.topic].as_str()).collect();
        let overlap = got.iter().filter(|g| want.contains(g)).count();
        assert!(overlap >= MIN_OVERLAP, "topic {}: top-{K} overlap {overlap} < {MIN_OVERLAP}\n got {got:?}\nwant {want:?}", ids[probe]);
        assert_eq!(got[0], want[0], "topic {}: best match", ids[probe]);
    }

    // `cairn related`: blended suggestions, each with a reason that holds in the data.
    const SIMILAR_MIN_COSINE: f32 = 0.5 - 0.02; // the rank module's threshold, less int8 error
    let people = |t: usize| -> std::collections::HashSet<&str> { topics[t].participants.iter().map(|p| p.user.as_str()).collect() };
    let mut reasons_seen = std::collections::HashSet::new();
    for id in ids.iter().take(30) {
        let out = cairn(&["related", "--index", out_dir.to_str().unwrap(), "--topic", id, "-k", &K.to_string()], "");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["topic"]["id"], id.as_str());
        let related = v["related"].as_array().unwrap();
        assert_eq!(related.len(), K);
        let (a, mut seen) = (pos(id), std::collections::HashSet::new());
        for r in related {
            let rid = r["id"].as_str().unwrap();
            assert!(rid != id && seen.insert(rid), "no self, no repeats");
            assert_eq!(r["url"], format!("/questions/{rid}"));
            let b = pos(rid);
            let reason = r["reason"].as_str().unwrap();
            assert!(!reason.is_empty());
            for part in reason.split(" · ") {
                reasons_seen.insert(part.split_whitespace().last().unwrap_or("").to_string());
                if part == "Similar question" {
                    let cos = common::cosine(&vecs[a], &vecs[b]);
                    let other = reason.contains("took part") || reason.contains("tagged");
                    assert!(cos >= SIMILAR_MIN_COSINE || !other, "{id} -> {rid}: 'Similar question' at cosine {cos}");
                } else if let Some(tag) = part.strip_prefix("Also tagged ") {
                    assert!(topics[a].tags.iter().any(|t| t == tag) && topics[b].tags.iter().any(|t| t == tag), "{id} -> {rid}: {part}");
                } else if part.ends_with("took part in both") {
                    let n: usize = part.split_whitespace().next().unwrap().parse().unwrap();
                    assert_eq!(people(a).intersection(&people(b)).count(), n, "{id} -> {rid}: {part}");
                } else {
                    panic!("unknown reason {part:?}");
                }
            }
        }
        // A live exact scan of every vector ranks exactly as the stored lists do.
        if id == &ids[0] || id == &ids[17] {
            let live = cairn(&["related", "--index", out_dir.to_str().unwrap(), "--topic", id, "-k", &K.to_string(), "--backend", "cpu"], "");
            assert!(live.status.success(), "{}", String::from_utf8_lossy(&live.stderr));
            assert_eq!(live.stdout, out.stdout, "live CPU scan and stored candidates agree for {id}");
        }
    }
    assert!(reasons_seen.contains("both") && reasons_seen.contains("question"), "several kinds of reasons occur: {reasons_seen:?}");

    // Unknown topic: a clear error.
    let out = cairn(&["related", "--index", out_dir.to_str().unwrap(), "--topic", "999999"], "");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("999999"));

    let out = cairn(&["verify", "--index", out_dir.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Corrupt the card chunk of a topic: it is named and refused, by verify and by related.
    let (at, victim) = store.store.loaded_cards().into_iter().map(|(r, c)| (r, c.id.clone())).nth(5).unwrap();
    let key = chunk_key(at.cluster, at.slot / store.store.manifest.layout.chunk as u16);
    let topics_file = store.store.listed().find(|e| e.role == FileRole::Cards && e.key == key).unwrap().clone();
    let path = out_dir.join(&topics_file.name);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    for args in [vec!["related", "--index", out_dir.to_str().unwrap(), "--topic", &victim], vec!["verify", "--index", out_dir.to_str().unwrap()]] {
        let out = cairn(&args, "");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&topics_file.name) && err.contains("SHA-256"), "{args:?}: {err}");
    }
    assert!(out_dir.join(MANIFEST_FILE).is_file());
}
