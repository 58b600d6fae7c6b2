//! Writes an index directory from topics and their vectors (native only).
//!
//! The directory is assembled in a temporary sibling and renamed into place,
//! so readers see either the old index or the new one, never half of one.

use super::format::{
    sha256_hex, FileEntry, FileRole, Manifest, ModelInfo, Neighbour, Neighbours, TopicMeta, Vectors, FORMAT_NAME, FORMAT_VERSION, MANIFEST_FILE,
};
use crate::rank::coparticipation::CoParticipation;
use crate::error::{Error, Result};
use crate::ingest::Topic;
use std::path::Path;

/// The display metadata of a topic.
pub fn topic_meta(t: &Topic) -> TopicMeta {
    TopicMeta {
        id: t.id.clone(),
        title: t.title.clone(),
        url: t.url.clone(),
        tags: t.tags.clone(),
        created: t.created.clone(),
        score: t.score,
        answers: t.answers.len() as u32,
        accepted: t.answers.iter().any(|a| a.accepted),
    }
}

/// Neighbours kept per topic.
pub const NEIGHBOURS_PER_TOPIC: usize = 10;

/// Each topic's strongest co-participation neighbours, from everyone who took part.
pub fn neighbours(topics: &[Topic]) -> Neighbours {
    let cp = CoParticipation::build(topics.len(), topics.iter().enumerate().flat_map(|(i, t)| t.participants.iter().map(move |p| (i, p.user.as_str()))));
    (0..topics.len())
        .map(|a| {
            let mut list: Vec<Neighbour> = cp
                .neighbours(a)
                .into_iter()
                .map(|(b, sim)| Neighbour { topic: b as u32, sim: (sim * 100.0).round() / 100.0, shared: cp.shared(a, b) as u32 })
                .collect();
            list.sort_by(|x, y| y.sim.total_cmp(&x.sim).then(x.topic.cmp(&y.topic)));
            list.truncate(NEIGHBOURS_PER_TOPIC);
            list
        })
        .collect()
}

/// Writes the index for `topics` with `vectors[i]` the embedding of `topics[i]`.
pub fn write(out: &Path, topics: &[Topic], vectors: &[Vec<f32>], model: ModelInfo, skipped: usize) -> Result<Manifest> {
    assert_eq!(topics.len(), vectors.len(), "one vector per topic");
    let metas: Vec<TopicMeta> = topics.iter().map(topic_meta).collect();
    let topics_bytes = serde_json::to_vec(&metas).expect("topic metadata serialises");
    let vectors_bytes = Vectors::quantise(vectors, model.dim).to_bytes();
    let neighbours_bytes = serde_json::to_vec(&neighbours(topics)).expect("neighbours serialise");

    let entry = |role: FileRole, stem: &str, ext: &str, bytes: &[u8]| {
        let sha = sha256_hex(bytes);
        FileEntry { role, name: format!("{stem}-{}.{ext}", &sha[..16]), sha256: sha, bytes: bytes.len() as u64 }
    };
    let files = vec![
        (entry(FileRole::Topics, "topics", "json", &topics_bytes), topics_bytes),
        (entry(FileRole::Vectors, "vectors", "bin", &vectors_bytes), vectors_bytes),
        (entry(FileRole::Neighbours, "neighbours", "json", &neighbours_bytes), neighbours_bytes),
    ];
    let manifest = Manifest {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        model,
        topics: topics.len(),
        files: files.iter().map(|(e, _)| e.clone()).collect(),
        skipped,
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");

    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let tmp = tempfile::Builder::new().prefix(".cairn-index-").tempdir_in(parent).map_err(|e| Error::io(parent, e))?;
    for (e, bytes) in &files {
        let p = tmp.path().join(&e.name);
        std::fs::write(&p, bytes).map_err(|err| Error::io(&p, err))?;
    }
    let mp = tmp.path().join(MANIFEST_FILE);
    std::fs::write(&mp, &manifest_bytes).map_err(|e| Error::io(&mp, e))?;
    replace_dir(tmp.keep().as_path(), out)?;
    Ok(manifest)
}

/// Moves `new` to `out`, replacing what was there with two renames.
pub fn replace_dir(new: &Path, out: &Path) -> Result<()> {
    if out.exists() {
        let old = out.with_file_name(format!(".{}.old-{}", out.file_name().and_then(|n| n.to_str()).unwrap_or("index"), std::process::id()));
        std::fs::rename(out, &old).map_err(|e| Error::io(out, e))?;
        std::fs::rename(new, out).map_err(|e| Error::io(out, e))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(new, out).map_err(|e| Error::io(out, e))?;
    }
    Ok(())
}
