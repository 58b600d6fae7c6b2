//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The sample Stack Exchange dump vendored in the repository.
pub fn sample_dump() -> PathBuf {
    root().join("data/quantumcomputing")
}

/// The model directory: `$CAIRN_MODEL`, else `build/model`. Missing is a failure, not a skip:
/// `scripts/test.sh` fetches it (or run `cairn model fetch --out build/model`).
pub fn model_dir() -> PathBuf {
    let dir = std::env::var_os("CAIRN_MODEL").map(PathBuf::from).unwrap_or_else(|| root().join("build/model"));
    assert!(
        dir.join("model.safetensors").is_file(),
        "no model in {} (run scripts/test.sh, or `cairn model fetch --out build/model`)",
        dir.display()
    );
    dir
}

/// Writes a dump holding the first `n` questions of the sample (with their answers,
/// comments and links) into `out`, for tests that must embed every topic.
pub fn small_dump(n: usize, out: &Path) -> Vec<String> {
    let src = sample_dump();
    let posts = std::fs::read_to_string(src.join("Posts.xml")).unwrap();
    let mut ids = Vec::new();
    for line in posts.lines() {
        if ids.len() == n {
            break;
        }
        if line.contains("PostTypeId=\"1\"") {
            ids.push(attr(line, "Id").unwrap().to_string());
        }
    }
    let keep = |line: &str, keys: &[&str]| keys.iter().any(|k| attr(line, k).is_some_and(|v| ids.iter().any(|i| i == v)));
    let filter = |file: &str, keys: &[&str]| {
        let text = std::fs::read_to_string(src.join(file)).unwrap();
        let kept: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with("<row") || keep(l, keys)).collect();
        std::fs::write(out.join(file), kept.join("\n")).unwrap();
    };
    filter("Posts.xml", &["Id", "ParentId"]);
    filter("PostLinks.xml", &["PostId"]);
    std::fs::copy(src.join("Users.xml"), out.join("Users.xml")).unwrap();
    std::fs::write(out.join("Comments.xml"), "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<comments>\n</comments>\n").unwrap();
    ids
}

/// The raw value of attribute `name` in a dump row (no unescaping).
pub fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = line.find(&key)? + key.len();
    let end = line[start..].find('"')? + start;
    Some(&line[start..end])
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(1e-12)
}
