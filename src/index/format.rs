//! The on-disk index format, defined once for the writer (native) and the reader (wasm).
//!
//! An index is a directory:
//!
//! ```text
//! manifest.json              small, loaded first, never cached for long
//! topics-<sha256[..16]>.json  [TopicMeta]: what the widget shows for a topic
//! vectors-<sha256[..16]>.bin  int8 topic vectors (layout below)
//! neighbours-<sha256[..16]>.json  co-participation neighbours per topic
//! ```
//!
//! Every file but the manifest is named by its content hash, so a CDN may cache
//! it forever; the manifest lists each with its full SHA-256 and size, and
//! readers refuse a file that does not match.
//!
//! `vectors-*.bin`, little-endian:
//! ```text
//! magic  b"CAIRNV01"            8 bytes
//! count  u32, dim u32           8 bytes
//! scale  f32 x count            per-vector dequantisation scale
//! codes  i8 x (count * dim)     row-major, vector i at i*dim
//! ```
//! Vector i is approximately `codes[i] * scale[i]`; codes use the full range
//! [-127, 127] of each vector (symmetric, per vector).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `format` field of every manifest.
pub const FORMAT_NAME: &str = "cairn-index";
/// Version of this layout; readers refuse others.
pub const FORMAT_VERSION: u32 = 1;
/// Name of the manifest inside an index directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// First bytes of a vectors file.
pub const VECTORS_MAGIC: &[u8; 8] = b"CAIRNV01";

/// The model an index was built with; a query encoder must match it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Human-readable description, e.g. "BERT 6x384, mean pooling, 256 tokens".
    pub name: String,
    /// [`crate::model::ModelFiles::weights_id`] of the weights.
    pub weights_id: String,
    /// Embedding width.
    pub dim: usize,
}

/// What a file in the index holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileRole {
    /// JSON array of [`TopicMeta`].
    Topics,
    /// int8 topic vectors.
    Vectors,
    /// JSON [`Neighbours`]: each topic's co-participation neighbours.
    Neighbours,
}

/// A topic that shares participants with another. Stored as a JSON triple
/// `[topic, sim, shared]` to keep the file small.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "(u32, f32, u32)", into = "(u32, f32, u32)")]
pub struct Neighbour {
    /// Position of the other topic.
    pub topic: u32,
    /// Co-participation similarity in [0, 1] (see `rank::coparticipation`).
    pub sim: f32,
    /// How many people took part in both.
    pub shared: u32,
}

impl From<(u32, f32, u32)> for Neighbour {
    fn from((topic, sim, shared): (u32, f32, u32)) -> Self {
        Neighbour { topic, sim, shared }
    }
}

impl From<Neighbour> for (u32, f32, u32) {
    fn from(n: Neighbour) -> Self {
        (n.topic, n.sim, n.shared)
    }
}

/// Per topic (by position), its strongest co-participation neighbours, best first.
/// Only topic positions and counts: no person is named in an index.
pub type Neighbours = Vec<Vec<Neighbour>>;

/// One file of the index, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// What it holds.
    pub role: FileRole,
    /// File name inside the index directory.
    pub name: String,
    /// Full SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// [`FORMAT_VERSION`] of the writer.
    pub version: u32,
    /// The encoder that made the vectors.
    pub model: ModelInfo,
    /// Number of topics.
    pub topics: usize,
    /// Every other file of the index.
    pub files: Vec<FileEntry>,
    /// Source records left out while importing (details are printed by `cairn index`).
    pub skipped: usize,
}

/// What the widget and the CLI show for a topic: no bodies, no people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicMeta {
    /// The source's id.
    pub id: String,
    /// Title, plain text.
    pub title: String,
    /// Link to the thread.
    pub url: String,
    /// Tags.
    pub tags: Vec<String>,
    /// ISO 8601 creation time.
    pub created: String,
    /// Votes on the question.
    pub score: i64,
    /// Number of answers.
    pub answers: u32,
    /// Whether an answer was accepted.
    pub accepted: bool,
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a file's bytes against its manifest entry.
pub fn verify(entry: &FileEntry, bytes: &[u8]) -> Result<()> {
    if bytes.len() as u64 != entry.bytes {
        return Err(Error::index(&entry.name, format!("is {} bytes, the manifest says {} (truncated or replaced?)", bytes.len(), entry.bytes)));
    }
    let got = sha256_hex(bytes);
    if got != entry.sha256 {
        return Err(Error::index(&entry.name, format!("SHA-256 is {got}, the manifest says {} (corrupted?)", entry.sha256)));
    }
    Ok(())
}

/// Topic vectors quantised to int8, one scale per vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    /// Width of each vector.
    pub dim: usize,
    /// Dequantisation scale per vector (count,).
    pub scales: Vec<f32>,
    /// Codes (count, dim), row-major.
    pub codes: Vec<i8>,
}

impl Vectors {
    /// Quantises f32 vectors of width `dim`: per vector, scale = max|v| / 127.
    pub fn quantise(vectors: &[Vec<f32>], dim: usize) -> Self {
        let mut scales = Vec::with_capacity(vectors.len());
        let mut codes = Vec::with_capacity(vectors.len() * dim);
        for v in vectors {
            assert_eq!(v.len(), dim, "vector width");
            let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            scales.push(scale);
            codes.extend(v.iter().map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8));
        }
        Vectors { dim, scales, codes }
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.scales.len()
    }

    /// True when there are no vectors.
    pub fn is_empty(&self) -> bool {
        self.scales.is_empty()
    }

    /// The codes of vector `i` (dim,).
    pub fn row(&self, i: usize) -> &[i8] {
        &self.codes[i * self.dim..(i + 1) * self.dim]
    }

    /// Serialises to the `vectors-*.bin` layout.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.len() * (4 + self.dim));
        out.extend_from_slice(VECTORS_MAGIC);
        out.extend_from_slice(&(self.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.dim as u32).to_le_bytes());
        for s in &self.scales {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out.extend(self.codes.iter().map(|&c| c as u8));
        out
    }

    /// Parses the `vectors-*.bin` layout; `name` is used in errors.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        if bytes.len() < 16 || &bytes[..8] != VECTORS_MAGIC {
            return Err(Error::index(name, "is not a Cairn vectors file (bad magic)"));
        }
        let count = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        let dim = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
        let want = 16 + count * 4 + count * dim;
        if bytes.len() != want {
            return Err(Error::index(name, format!("holds {} bytes, {count} vectors of {dim} need {want}", bytes.len())));
        }
        let scales = bytes[16..16 + count * 4].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let codes = bytes[16 + count * 4..].iter().map(|&b| b as i8).collect();
        Ok(Vectors { dim, scales, codes })
    }
}

/// A loaded, verified index.
#[derive(Debug, Clone)]
pub struct Index {
    /// The manifest it was loaded from.
    pub manifest: Manifest,
    /// Topic metadata, in vector order.
    pub topics: Vec<TopicMeta>,
    /// Topic vectors.
    pub vectors: Vectors,
    /// Co-participation neighbours, one list per topic.
    pub neighbours: Neighbours,
    /// Euclidean norm of each vector's codes (count,), computed once at load for cosine scoring.
    pub(crate) norms: Vec<f32>,
}

impl Index {
    /// Euclidean norm of each vector's codes (count,): the denominators of every cosine.
    pub fn norms(&self) -> &[f32] {
        &self.norms
    }
}

impl Index {
    /// Parses a manifest and checks that this reader understands it.
    pub fn parse_manifest(bytes: &[u8]) -> Result<Manifest> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|source| Error::Json { what: MANIFEST_FILE.into(), source })?;
        if m.format != FORMAT_NAME {
            return Err(Error::index(MANIFEST_FILE, format!("format is {:?}, expected {FORMAT_NAME:?}", m.format)));
        }
        if m.version != FORMAT_VERSION {
            return Err(Error::index(MANIFEST_FILE, format!("format version {} is not supported (this reader knows {FORMAT_VERSION})", m.version)));
        }
        Ok(m)
    }

    /// Builds an index from its manifest and a way to get each listed file's bytes.
    /// Every file is verified against the manifest before it is parsed.
    pub fn load(manifest: Manifest, mut read: impl FnMut(&FileEntry) -> Result<Vec<u8>>) -> Result<Self> {
        let entry = |role: FileRole| {
            manifest.files.iter().find(|f| f.role == role).cloned().ok_or_else(|| Error::index(MANIFEST_FILE, format!("lists no {role:?} file")))
        };
        let mut read_verified = |role: FileRole| -> Result<(FileEntry, Vec<u8>)> {
            let e = entry(role)?;
            let bytes = read(&e)?;
            verify(&e, &bytes)?;
            Ok((e, bytes))
        };
        let (topics_entry, topics_bytes) = read_verified(FileRole::Topics)?;
        let topics: Vec<TopicMeta> =
            serde_json::from_slice(&topics_bytes).map_err(|source| Error::Json { what: topics_entry.name.clone(), source })?;
        let (vectors_entry, vectors_bytes) = read_verified(FileRole::Vectors)?;
        let vectors = Vectors::from_bytes(&vectors_bytes, &vectors_entry.name)?;
        let (neighbours_entry, neighbours_bytes) = read_verified(FileRole::Neighbours)?;
        let neighbours: Neighbours =
            serde_json::from_slice(&neighbours_bytes).map_err(|source| Error::Json { what: neighbours_entry.name.clone(), source })?;
        let n = topics.len();
        if neighbours.len() != n || neighbours.iter().flatten().any(|nb| nb.topic as usize >= n) {
            return Err(Error::index(&neighbours_entry.name, format!("does not hold one valid list per topic ({n} topics)")));
        }
        if topics.len() != manifest.topics || vectors.len() != manifest.topics || vectors.dim != manifest.model.dim {
            return Err(Error::index(
                MANIFEST_FILE,
                format!(
                    "says {} topics of dim {}, files hold {} topics and {} vectors of dim {}",
                    manifest.topics, manifest.model.dim, topics.len(), vectors.len(), vectors.dim
                ),
            ));
        }
        let norms = super::search::code_norms(&vectors);
        Ok(Index { manifest, topics, vectors, neighbours, norms })
    }

    /// Checks every file of an index directory against its manifest without keeping
    /// anything (native only). Returns the number of files checked, or the first problem.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn verify_dir(dir: &std::path::Path) -> Result<usize> {
        Index::open(dir).map(|idx| idx.manifest.files.len() + 1)
    }

    /// Reads an index directory (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(dir: &std::path::Path) -> Result<Self> {
        let mpath = dir.join(MANIFEST_FILE);
        let mbytes = std::fs::read(&mpath).map_err(|e| Error::io(&mpath, e))?;
        let manifest = Index::parse_manifest(&mbytes)?;
        Index::load(manifest, |f| {
            let p = dir.join(&f.name);
            std::fs::read(&p).map_err(|e| Error::io(&p, e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_and_reject_bad_bytes() {
        let v = vec![vec![0.5, -1.0, 0.25], vec![0.0, 0.0, 0.0]];
        let q = Vectors::quantise(&v, 3);
        assert_eq!(q.row(0), &[64, -127, 32]);
        let bytes = q.to_bytes();
        assert_eq!(Vectors::from_bytes(&bytes, "v").unwrap(), q);
        assert!(Vectors::from_bytes(&bytes[..bytes.len() - 1], "v").unwrap_err().to_string().contains("need"));
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(Vectors::from_bytes(&bad, "v").unwrap_err().to_string().contains("magic"));
    }

    #[test]
    fn verify_names_the_file_and_the_problem() {
        let e = FileEntry { role: FileRole::Topics, name: "topics-x.json".into(), sha256: sha256_hex(b"abc"), bytes: 3 };
        assert!(verify(&e, b"abc").is_ok());
        let err = verify(&e, b"abd").unwrap_err().to_string();
        assert!(err.contains("topics-x.json") && err.contains("SHA-256"), "{err}");
        assert!(verify(&e, b"ab").unwrap_err().to_string().contains("truncated"));
    }
}
