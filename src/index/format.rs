//! The on-disk index format, defined once for the writer (native) and the reader (wasm).
//!
//! An index is a directory of immutable, content-addressed shards and one small
//! manifest. Shards are listed in a two-level catalog, so a visitor fetches
//! the few catalog pages on the way to the shards a query touches instead of
//! one list of every shard:
//!
//! ```text
//! manifest.json                format, model, counts, layout, what was left out; lists
//!                              the centroids, the model pack and the catalog root
//! catalog-0.0-<h>.bin          the root: every catalog page (CAIRNK03)
//! catalog-<t>.<p>-<h>.bin      page p of kind t: the shards of a few clusters (t = 1),
//!                              of a range of term (2) or directory (3) buckets ([`page_of`])
//! centroids-0-<h>.bin          k-means centroids of the topic vectors (int8, CAIRNC03)
//! directory-<b>-<h>.json       topic id -> [cluster, slot], for the ids hashing to bucket b
//! cards-<c>.<k>-<h>.json       what the widgets show and rank with, for slots
//!                              [k * chunk, (k + 1) * chunk) of cluster c ([`CardsChunk`])
//! links-<c>.<k>-<h>.json       the same slots' links: nearest topics by meaning and by
//!                              co-participation, content hashes ([`LinksChunk`])
//! vectors-<c>-<h>.bin          cluster c: int8 topic vectors, one per slot (CAIRNV02)
//! passages-<c>.<k>-<h>.bin     passages (text + int8 vector) of the chunk's slots (CAIRNP02)
//! terms-<b>-<h>.bin            BM25 postings of the terms hashing to bucket b (CAIRNT02)
//! model-0-<h>.cpk              the model pack that made the vectors, when it was a pack:
//!                              the browser's encoder loads exactly this file
//! ```
//!
//! `<h>` is the first 16 hex digits of the file's SHA-256, so a name never
//! changes meaning and a CDN may cache every shard forever. Every file is
//! listed with its full SHA-256 and size by the manifest or a catalog file the
//! manifest's chain of hashes vouches for; readers refuse any file whose size
//! or hash differs and name it.
//!
//! Related topics for one page touch the card and links chunks of the topic
//! and the card chunks of its candidates, a few KB each: a fresh build orders
//! each cluster's slots along the cluster's main direction, so near topics
//! tend to share chunks.
//!
//! A topic is addressed by [`TopicRef`] `(cluster, slot)`. Slots are stable
//! across incremental updates: a deleted topic leaves an empty slot (`null`
//! card, zero vector scale), new topics fill the lowest free slot of their
//! cluster. Ranking never depends on where a topic lies: ties are broken by
//! topic id, so an updated index answers exactly as a fresh build of the same
//! data does wherever the search is exhaustive.
//!
//! Binary shards are little-endian. `CAIRNV02` (vectors) and `CAIRNC03`
//! (centroids) are plain arrays (layouts on [`Vectors`] and [`Centroids`]);
//! `CAIRNT02`, `CAIRNP02` and `CAIRNK03` are containers: `magic[8] |
//! header_len u32 | header (JSON) | zero padding to a multiple of 4 | payload`.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// `format` field of every manifest.
pub const FORMAT_NAME: &str = "cairn-index";
/// Version of this layout; readers refuse others.
pub const FORMAT_VERSION: u32 = 3;
/// Name of the manifest inside an index directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// First bytes of a vectors shard.
pub const VECTORS_MAGIC: &[u8; 8] = b"CAIRNV02";
/// First bytes of the centroids shard.
pub const CENTROIDS_MAGIC: &[u8; 8] = b"CAIRNC03";
/// First bytes of a terms shard.
pub const TERMS_MAGIC: &[u8; 8] = b"CAIRNT02";
/// First bytes of a passage chunk.
pub const PASSAGES_MAGIC: &[u8; 8] = b"CAIRNP02";
/// First bytes of a catalog file.
pub const CATALOG_MAGIC: &[u8; 8] = b"CAIRNK03";

/// The model an index was built with; a query encoder must match it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Human-readable description, e.g. "BERT 6x384, mean pooling, 256 tokens".
    pub name: String,
    /// [`crate::model::ModelFiles::weights_id`] of the weights (a pack's own hash for packs).
    pub weights_id: String,
    /// Embedding width.
    pub dim: usize,
}

/// What a shard holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileRole {
    /// [`Centroids`], key 0; listed by the manifest.
    Centroids,
    /// [`Catalog`]: key 0 is the root (listed by the manifest), other keys are pages (listed by the root).
    Catalog,
    /// [`DirectoryShard`], key = bucket.
    Directory,
    /// [`CardsChunk`], key = [`chunk_key`] (cluster, chunk).
    Cards,
    /// [`LinksChunk`], key = [`chunk_key`] (cluster, chunk).
    Links,
    /// [`Vectors`] of one cluster, key = cluster.
    Vectors,
    /// [`TermsShard`], key = bucket.
    Terms,
    /// [`PassageChunk`], key = [`chunk_key`] (cluster, chunk).
    Passages,
    /// The model pack (`cairn model pack`) that embedded the index, key 0; listed by the manifest.
    Model,
}

impl FileRole {
    /// Every role, in [`FileRole::code`] order.
    pub const ALL: [FileRole; 9] =
        [FileRole::Centroids, FileRole::Catalog, FileRole::Directory, FileRole::Cards, FileRole::Links, FileRole::Vectors, FileRole::Terms, FileRole::Passages, FileRole::Model];

    /// File name stem and extension.
    fn stem_ext(self) -> (&'static str, &'static str) {
        match self {
            FileRole::Centroids => ("centroids", "bin"),
            FileRole::Catalog => ("catalog", "bin"),
            FileRole::Directory => ("directory", "json"),
            FileRole::Cards => ("cards", "json"),
            FileRole::Links => ("links", "json"),
            FileRole::Vectors => ("vectors", "bin"),
            FileRole::Terms => ("terms", "bin"),
            FileRole::Passages => ("passages", "bin"),
            FileRole::Model => ("model", "cpk"),
        }
    }

    /// The role's number in catalog records.
    pub fn code(self) -> u8 {
        FileRole::ALL.iter().position(|&r| r == self).expect("listed") as u8
    }

    /// Whether keys of this role are [`chunk_key`]s.
    pub fn chunked(self) -> bool {
        matches!(self, FileRole::Cards | FileRole::Links | FileRole::Passages)
    }

    /// Every name stem a shard of any role starts with (for garbage collection).
    pub fn stems() -> impl Iterator<Item = &'static str> {
        FileRole::ALL.iter().map(|r| r.stem_ext().0)
    }
}

/// The key of chunk `chunk` of cluster `cluster` (cards, links, passages): both in one u32.
pub fn chunk_key(cluster: u16, chunk: u16) -> u32 {
    (cluster as u32) << 16 | chunk as u32
}

/// Kinds of catalog page, in the top byte of a page key (see [`page_of`]).
const PAGE_CLUSTERS: u32 = 1;
const PAGE_TERMS: u32 = 2;
const PAGE_DIRECTORY: u32 = 3;

/// The catalog page that lists the shard `(role, key)`, or `None` for the
/// files the manifest lists itself (centroids, model, the catalog root) and
/// for pages (listed by the root). A page lists every shard of
/// `layout.clusters_per_page` consecutive clusters (cards, links, vectors,
/// passages), or of `layout.buckets_per_page` consecutive term or directory buckets.
pub fn page_of(role: FileRole, key: u32, layout: &Layout) -> Option<u32> {
    let per = |n: u32| n.max(1);
    match role {
        FileRole::Centroids | FileRole::Model | FileRole::Catalog => None,
        FileRole::Cards | FileRole::Links | FileRole::Passages => Some(PAGE_CLUSTERS << 24 | (key >> 16) / per(layout.clusters_per_page)),
        FileRole::Vectors => Some(PAGE_CLUSTERS << 24 | key / per(layout.clusters_per_page)),
        FileRole::Terms => Some(PAGE_TERMS << 24 | key / per(layout.buckets_per_page)),
        FileRole::Directory => Some(PAGE_DIRECTORY << 24 | key / per(layout.buckets_per_page)),
    }
}

/// One shard, as the manifest (or a catalog file) lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// What it holds.
    pub role: FileRole,
    /// Which one: cluster, bucket or passage-chunk key.
    pub key: u32,
    /// File name inside the index directory.
    pub name: String,
    /// Full SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
}

impl FileEntry {
    /// The entry (and content-addressed name) of `bytes` in role `role`.
    pub fn for_bytes(role: FileRole, key: u32, bytes: &[u8]) -> FileEntry {
        FileEntry::from_parts(role, key, sha256_hex(bytes), bytes.len() as u64)
    }

    /// The entry of a file whose SHA-256 (lowercase hex) and size are known; its name follows from them.
    pub fn from_parts(role: FileRole, key: u32, sha256: String, bytes: u64) -> FileEntry {
        let (stem, ext) = role.stem_ext();
        let key_text = match role {
            _ if role.chunked() => format!("{}.{}", key >> 16, key & 0xffff),
            FileRole::Catalog => format!("{}.{}", key >> 24, key & 0xff_ffff), // kind of page . page
            _ => key.to_string(),
        };
        FileEntry { role, key, name: format!("{stem}-{key_text}-{}.{ext}", &sha256[..16]), sha256, bytes }
    }
}

/// Sizes of the index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Topics (live slots).
    pub topics: usize,
    /// k-means clusters.
    pub clusters: usize,
    /// Passages over all topics.
    pub passages: usize,
    /// Distinct lexical terms.
    pub terms: usize,
}

/// How the shards are cut. Fixed by a full build and kept by updates, so that
/// an update rewrites only the shards whose content changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Buckets of the id directory (`fnv1a(id) % directory_buckets`).
    pub directory_buckets: u32,
    /// Buckets of the lexical postings (`fnv1a(term) % term_buckets`).
    pub term_buckets: u32,
    /// Slots per chunk of cards, links and passages.
    pub chunk: u32,
    /// Consecutive clusters whose shards one catalog page lists.
    pub clusters_per_page: u32,
    /// Consecutive term (or directory) buckets one catalog page lists.
    pub buckets_per_page: u32,
}

/// Collection statistics BM25 needs at query time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LexicalStats {
    /// Documents (live topics).
    pub docs: u32,
    /// Mean document length in tokens.
    pub avg_len: f32,
}

/// What the importer left out of the index, and why (a static index is public).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    /// Records left out on purpose, by reason (e.g. "private category": 3).
    pub excluded: BTreeMap<String, u64>,
    /// Records that could not be read (the CLI prints each with its location).
    pub malformed: u64,
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
    /// Sizes.
    pub counts: Counts,
    /// How shards are cut.
    pub layout: Layout,
    /// BM25 statistics.
    pub lexical: LexicalStats,
    /// What was left out of the index.
    pub left_out: LeftOut,
    /// The centroids, the model pack (if any) and the catalog root, which lists the rest.
    pub files: Vec<FileEntry>,
}

impl Manifest {
    /// Parses a manifest and checks that this reader understands it.
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        #[derive(Deserialize)]
        struct Head {
            format: String,
            version: u32,
        }
        let head: Head = serde_json::from_slice(bytes).map_err(|source| Error::Json { what: MANIFEST_FILE.into(), source })?;
        if head.format != FORMAT_NAME {
            return Err(Error::index(MANIFEST_FILE, format!("format is {:?}, expected {FORMAT_NAME:?}", head.format)));
        }
        if head.version != FORMAT_VERSION {
            return Err(Error::index(
                MANIFEST_FILE,
                format!("format version {} is not supported (this reader knows {FORMAT_VERSION}; rebuild the index with this cairn)", head.version),
            ));
        }
        serde_json::from_slice(bytes).map_err(|source| Error::Json { what: MANIFEST_FILE.into(), source })
    }

    /// The entry of the shard with `role` and `key`, if listed.
    pub fn file(&self, role: FileRole, key: u32) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.role == role && f.key == key)
    }
}

/// A topic's address: its cluster and its slot in that cluster's shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "(u16, u16)", into = "(u16, u16)")]
pub struct TopicRef {
    /// Cluster.
    pub cluster: u16,
    /// Slot within the cluster.
    pub slot: u16,
}

impl From<(u16, u16)> for TopicRef {
    fn from((cluster, slot): (u16, u16)) -> Self {
        TopicRef { cluster, slot }
    }
}
impl From<TopicRef> for (u16, u16) {
    fn from(r: TopicRef) -> Self {
        (r.cluster, r.slot)
    }
}

/// A near topic by meaning, stored as `[cluster, slot, cosine]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "(u16, u16, f32)", into = "(u16, u16, f32)")]
pub struct Similar {
    /// The other topic.
    pub topic: TopicRef,
    /// Cosine of the two topic vectors (int8 codes).
    pub cos: f32,
}
impl From<(u16, u16, f32)> for Similar {
    fn from((c, s, cos): (u16, u16, f32)) -> Self {
        Similar { topic: TopicRef { cluster: c, slot: s }, cos }
    }
}
impl From<Similar> for (u16, u16, f32) {
    fn from(x: Similar) -> Self {
        (x.topic.cluster, x.topic.slot, x.cos)
    }
}

/// A topic the same people took part in, stored as `[cluster, slot, sim, shared, cosine]`.
/// Only positions and counts: no person is named in an index.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "(u16, u16, f32, u32, f32)", into = "(u16, u16, f32, u32, f32)")]
pub struct People {
    /// The other topic.
    pub topic: TopicRef,
    /// Co-participation similarity in [0, 1] (see `rank::coparticipation`).
    pub sim: f32,
    /// How many people took part in both.
    pub shared: u32,
    /// Cosine of the two topic vectors, so the blend needs no vectors.
    pub cos: f32,
}
impl From<(u16, u16, f32, u32, f32)> for People {
    fn from((c, s, sim, shared, cos): (u16, u16, f32, u32, f32)) -> Self {
        People { topic: TopicRef { cluster: c, slot: s }, sim, shared, cos }
    }
}
impl From<People> for (u16, u16, f32, u32, f32) {
    fn from(p: People) -> Self {
        (p.topic.cluster, p.topic.slot, p.sim, p.shared, p.cos)
    }
}

/// Where a topic's passages are: `[first, count]` within the chunk that holds its slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(u32, u32)", into = "(u32, u32)")]
pub struct PassageSpan {
    /// First passage of the topic in its chunk.
    pub first: u32,
    /// How many.
    pub count: u32,
}
impl From<(u32, u32)> for PassageSpan {
    fn from((first, count): (u32, u32)) -> Self {
        PassageSpan { first, count }
    }
}
impl From<PassageSpan> for (u32, u32) {
    fn from(p: PassageSpan) -> Self {
        (p.first, p.count)
    }
}

/// What the widgets show and rank with for one topic: no bodies, no people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicCard {
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
    /// ISO 8601 time of the last activity.
    pub activity: String,
    /// Votes on the question.
    pub score: i64,
    /// Number of answers (replies).
    pub answers: u32,
    /// Whether an answer was accepted.
    pub accepted: bool,
    /// Comments on the question and its answers.
    pub comments: u32,
    /// Views, where the source counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub views: Option<u64>,
    /// Key phrases, best first.
    pub keywords: Vec<String>,
    /// The first [`NEAR_PER_CARD`] of its nearest topics ([`TopicLinks::similar`]):
    /// enough to judge how much two candidates repeat each other without their links.
    pub near: Vec<Similar>,
    /// Its passages, in the passage chunk of its slot.
    pub passages: PassageSpan,
}

/// Nearest topics kept on each card (the links chunk keeps more).
pub const NEAR_PER_CARD: usize = 8;

impl TopicCard {
    /// Whether the question has no answer yet.
    pub fn unanswered(&self) -> bool {
        self.answers == 0
    }
}

/// How a topic links to others: needed for the topic being read (and the
/// visitor's history), not for every topic shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicLinks {
    /// Content hash of everything the index derives from the topic (incremental updates).
    pub hash: String,
    /// Nearest topics by meaning, best first (ties by id).
    pub similar: Vec<Similar>,
    /// Co-participation neighbours, strongest first.
    pub people: Vec<People>,
}

/// `cards-<c>.<k>-*.json`: the cards of slots `[chunk * layout.chunk, ...)` of a cluster (`null` = empty slot).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardsChunk {
    /// The cluster.
    pub cluster: u16,
    /// The chunk within it.
    pub chunk: u16,
    /// Card per slot.
    pub cards: Vec<Option<TopicCard>>,
}

/// `links-<c>.<k>-*.json`: the links of the same slots as the cards chunk with the same key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinksChunk {
    /// The cluster.
    pub cluster: u16,
    /// The chunk within it.
    pub chunk: u16,
    /// Links per slot.
    pub links: Vec<Option<TopicLinks>>,
}

/// `catalog-<p>-*.bin`: the entries of the files one catalog page (or the root) lists.
///
/// ```text
/// magic  b"CAIRNK03", header_len u32, header {"page": p, "files": n}, padding
/// n records of 48 bytes: role u8 (FileRole::code), 3 zero bytes, key u32,
///                        size u64, SHA-256 [u8; 32]
/// ```
/// Names follow from role, key and hash ([`FileEntry::from_parts`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    /// The page key (0 for the root).
    pub page: u32,
    /// The files it lists.
    pub files: Vec<FileEntry>,
}

#[derive(Serialize, Deserialize)]
struct CatalogHeader {
    page: u32,
    files: usize,
}

/// Bytes per catalog record.
const CATALOG_RECORD: usize = 48;

impl Catalog {
    /// Serialises to the `CAIRNK03` container.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&CatalogHeader { page: self.page, files: self.files.len() }).expect("catalog header serialises");
        let mut payload = Vec::with_capacity(self.files.len() * CATALOG_RECORD);
        for f in &self.files {
            payload.extend_from_slice(&[f.role.code(), 0, 0, 0]);
            payload.extend_from_slice(&f.key.to_le_bytes());
            payload.extend_from_slice(&f.bytes.to_le_bytes());
            payload.extend((0..32).map(|i| u8::from_str_radix(&f.sha256[2 * i..2 * i + 2], 16).expect("hex digest")));
        }
        container(CATALOG_MAGIC, &header, &payload)
    }

    /// Parses the `CAIRNK03` container; `name` is used in errors.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        let (header, payload) = open_container(bytes, CATALOG_MAGIC, name)?;
        let h: CatalogHeader = serde_json::from_slice(header).map_err(|source| Error::Json { what: name.into(), source })?;
        if payload.len() != h.files * CATALOG_RECORD {
            return Err(Error::index(name, format!("lists {} files in {} bytes of records (truncated?)", h.files, payload.len())));
        }
        let files = payload
            .chunks_exact(CATALOG_RECORD)
            .map(|r| {
                let role = *FileRole::ALL.get(r[0] as usize).ok_or_else(|| Error::index(name, format!("lists a file of unknown role {}", r[0])))?;
                let key = u32_at(r, 4);
                let size = u64::from_le_bytes(r[8..16].try_into().expect("8 bytes"));
                let sha: String = r[16..48].iter().map(|b| format!("{b:02x}")).collect();
                Ok(FileEntry::from_parts(role, key, sha, size))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Catalog { page: h.page, files })
    }
}

/// `directory-<b>-*.json`: topic id -> where it is, for the ids of one bucket.
pub type DirectoryShard = BTreeMap<String, TopicRef>;

/// FNV-1a (32 bit): the bucket hash of ids and terms. Stable across versions and targets.
pub fn fnv1a(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a file's bytes against its entry.
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

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Vectors quantised to int8, one scale per vector; a scale of 0 marks an empty slot.
///
/// `vectors-*.bin` (and the vector block of a passage chunk):
/// ```text
/// magic  b"CAIRNV02"            8 bytes
/// count  u32, dim u32           8 bytes
/// scale  f32 x count            per-vector dequantisation scale (0: empty slot)
/// codes  i8 x (count * dim)     row-major, vector i at i*dim
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    /// Width of each vector.
    pub dim: usize,
    /// Dequantisation scale per vector (count,).
    pub scales: Vec<f32>,
    /// Codes (count, dim), row-major.
    pub codes: Vec<i8>,
}

/// One vector in int8: `codes * scale` approximates it.
#[derive(Debug, Clone, PartialEq)]
pub struct QVec {
    /// max |v| / 127 (1 for the zero vector); 0 never occurs for a real vector.
    pub scale: f32,
    /// Codes in [-127, 127].
    pub codes: Vec<i8>,
}

impl QVec {
    /// Symmetric int8 quantisation of `v`: scale = max|v| / 127.
    pub fn quantise(v: &[f32]) -> QVec {
        let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        QVec { scale, codes: v.iter().map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8).collect() }
    }
}

impl Vectors {
    /// An empty set of vectors of width `dim`.
    pub fn new(dim: usize) -> Self {
        Vectors { dim, scales: Vec::new(), codes: Vec::new() }
    }

    /// Quantises f32 vectors of width `dim` (see [`QVec::quantise`]).
    pub fn quantise(vectors: &[Vec<f32>], dim: usize) -> Self {
        let mut out = Vectors::new(dim);
        for v in vectors {
            assert_eq!(v.len(), dim, "vector width");
            out.push(Some(&QVec::quantise(v)));
        }
        out
    }

    /// Appends a vector, or an empty slot for `None`.
    pub fn push(&mut self, v: Option<&QVec>) {
        match v {
            Some(q) => {
                assert_eq!(q.codes.len(), self.dim, "vector width");
                self.scales.push(q.scale);
                self.codes.extend_from_slice(&q.codes);
            }
            None => {
                self.scales.push(0.0);
                self.codes.extend(std::iter::repeat_n(0i8, self.dim));
            }
        }
    }

    /// Number of rows (empty slots included).
    pub fn len(&self) -> usize {
        self.scales.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.scales.is_empty()
    }

    /// Whether row `i` holds a vector (not an empty slot).
    pub fn live(&self, i: usize) -> bool {
        self.scales[i] != 0.0
    }

    /// The codes of row `i` (dim,).
    pub fn row(&self, i: usize) -> &[i8] {
        &self.codes[i * self.dim..(i + 1) * self.dim]
    }

    /// Row `i` as a [`QVec`], `None` for an empty slot.
    pub fn get(&self, i: usize) -> Option<QVec> {
        self.live(i).then(|| QVec { scale: self.scales[i], codes: self.row(i).to_vec() })
    }

    /// Serialises to the `CAIRNV02` layout.
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

    /// Parses the `CAIRNV02` layout; `name` is used in errors.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        if bytes.len() < 16 || &bytes[..8] != VECTORS_MAGIC {
            return Err(Error::index(name, "is not a Cairn vectors block (bad magic)"));
        }
        let count = u32_at(bytes, 8) as usize;
        let dim = u32_at(bytes, 12) as usize;
        let want = count.checked_mul(4 + dim).and_then(|n| n.checked_add(16));
        if want != Some(bytes.len()) {
            return Err(Error::index(name, format!("holds {} bytes; {count} vectors of {dim} need {}", bytes.len(), want.map_or("more".into(), |w| w.to_string()))));
        }
        let scales = bytes[16..16 + count * 4].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let codes = bytes[16 + count * 4..].iter().map(|&b| b as i8).collect();
        Ok(Vectors { dim, scales, codes })
    }
}

/// Cluster centroids (unit vectors) and how many topics each cluster holds.
///
/// `centroids-0-*.bin`, int8 like the topic vectors (a question fetches every
/// centroid: a quarter of the bytes of f32, and probing only ranks clusters):
/// ```text
/// magic  b"CAIRNC03"      8 bytes
/// k u32, dim u32          8 bytes
/// sizes  u32 x k          live topics per cluster
/// scales f32 x k          per-centroid dequantisation scale
/// codes  i8 x (k * dim)   row-major
/// ```
/// In memory the centroids are the dequantised f32 rows, so a reader and the
/// writer that produced a file see the same numbers; writing them again gives
/// the same bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Centroids {
    /// Width.
    pub dim: usize,
    /// Live topics per cluster (k,).
    pub sizes: Vec<u32>,
    /// Centroids (k, dim), unit length up to int8 rounding.
    pub data: Vec<f32>,
}

impl Centroids {
    /// Centroids as the file stores them: each row rounded through int8.
    pub fn quantised(dim: usize, sizes: Vec<u32>, data: &[f32]) -> Self {
        let data = data.chunks_exact(dim.max(1)).flat_map(|row| {
            let q = QVec::quantise(row);
            q.codes.into_iter().map(move |c| c as f32 * q.scale)
        });
        Centroids { dim, sizes, data: data.collect() }
    }

    /// Number of clusters.
    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    /// True when there are no clusters.
    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    /// Centroid `c` (dim,).
    pub fn row(&self, c: usize) -> &[f32] {
        &self.data[c * self.dim..(c + 1) * self.dim]
    }

    /// Serialises to the `CAIRNC03` layout.
    pub fn to_bytes(&self) -> Vec<u8> {
        let rows: Vec<QVec> = self.data.chunks_exact(self.dim.max(1)).map(QVec::quantise).collect();
        let mut out = Vec::with_capacity(16 + self.len() * (8 + self.dim));
        out.extend_from_slice(CENTROIDS_MAGIC);
        out.extend_from_slice(&(self.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.dim as u32).to_le_bytes());
        for s in &self.sizes {
            out.extend_from_slice(&s.to_le_bytes());
        }
        for q in &rows {
            out.extend_from_slice(&q.scale.to_le_bytes());
        }
        for q in &rows {
            out.extend(q.codes.iter().map(|&c| c as u8));
        }
        out
    }

    /// Parses the `CAIRNC03` layout; `name` is used in errors.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        if bytes.len() < 16 || &bytes[..8] != CENTROIDS_MAGIC {
            return Err(Error::index(name, "is not a Cairn centroids file of this version (bad magic)"));
        }
        let k = u32_at(bytes, 8) as usize;
        let dim = u32_at(bytes, 12) as usize;
        let want = k.checked_mul(8 + dim).and_then(|n| n.checked_add(16));
        if want != Some(bytes.len()) {
            return Err(Error::index(name, format!("holds {} bytes; {k} centroids of {dim} need more or fewer", bytes.len())));
        }
        let sizes = (0..k).map(|i| u32_at(bytes, 16 + 4 * i)).collect();
        let scales: Vec<f32> = (0..k).map(|i| f32::from_le_bytes(bytes[16 + 4 * k + 4 * i..][..4].try_into().expect("4 bytes"))).collect();
        let codes = &bytes[16 + 8 * k..];
        let data = (0..k * dim).map(|i| codes[i] as i8 as f32 * scales[i / dim.max(1)]).collect();
        Ok(Centroids { dim, sizes, data })
    }
}

/// Wraps a JSON header and a binary payload in a container (`magic | len | header | pad | payload`).
pub fn container(magic: &[u8; 8], header: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + header.len() + 3 + payload.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out.extend_from_slice(payload);
    out
}

/// Splits a container into its header and payload, checking the magic.
pub fn open_container<'a>(bytes: &'a [u8], magic: &[u8; 8], name: &str) -> Result<(&'a [u8], &'a [u8])> {
    if bytes.len() < 12 || &bytes[..8] != magic {
        return Err(Error::index(name, format!("is not a {} file (bad magic)", String::from_utf8_lossy(magic))));
    }
    let hlen = u32_at(bytes, 8) as usize;
    let header = bytes.get(12..12 + hlen).ok_or_else(|| Error::index(name, "header runs past the end of the file (truncated?)"))?;
    let start = (12 + hlen).next_multiple_of(4);
    let payload = bytes.get(start..).ok_or_else(|| Error::index(name, "payload is missing (truncated?)"))?;
    Ok((header, payload))
}

/// One posting: a topic, how often the term occurs in it, and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posting {
    /// The topic.
    pub topic: TopicRef,
    /// Occurrences of the term in the topic's document (capped at 65535).
    pub tf: u16,
    /// The document's length in tokens (capped at 65535).
    pub len: u16,
}

/// A term of a terms shard: `[term, df, first posting, postings]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "(String, u32, u32, u32)", into = "(String, u32, u32, u32)")]
pub struct TermEntry {
    /// The term.
    pub term: String,
    /// Documents containing it (may exceed the postings kept; see `lexical::MAX_POSTINGS`).
    pub df: u32,
    /// Index of its first posting in the payload.
    pub first: u32,
    /// Postings kept.
    pub count: u32,
}
impl From<(String, u32, u32, u32)> for TermEntry {
    fn from((term, df, first, count): (String, u32, u32, u32)) -> Self {
        TermEntry { term, df, first, count }
    }
}
impl From<TermEntry> for (String, u32, u32, u32) {
    fn from(t: TermEntry) -> Self {
        (t.term, t.df, t.first, t.count)
    }
}

/// `terms-<b>-*.bin`: the postings of one bucket's terms.
/// Header `{"terms": [TermEntry...]}` sorted by term; payload: 8 bytes per
/// posting, `cluster u16, slot u16, tf u16, len u16`, best impact first.
#[derive(Debug, Clone, PartialEq)]
pub struct TermsShard {
    /// Terms, sorted.
    pub terms: Vec<TermEntry>,
    /// Every posting, term after term.
    pub postings: Vec<Posting>,
}

#[derive(Serialize, Deserialize)]
struct TermsHeader {
    terms: Vec<TermEntry>,
}

impl TermsShard {
    /// The df and postings of `term`, if the shard has it.
    pub fn get(&self, term: &str) -> Option<(u32, &[Posting])> {
        let i = self.terms.binary_search_by(|t| t.term.as_str().cmp(term)).ok()?;
        let t = &self.terms[i];
        Some((t.df, &self.postings[t.first as usize..(t.first + t.count) as usize]))
    }

    /// Serialises to the `CAIRNT02` container.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&TermsHeader { terms: self.terms.clone() }).expect("terms serialise");
        let mut payload = Vec::with_capacity(self.postings.len() * 8);
        for p in &self.postings {
            for v in [p.topic.cluster, p.topic.slot, p.tf, p.len] {
                payload.extend_from_slice(&v.to_le_bytes());
            }
        }
        container(TERMS_MAGIC, &header, &payload)
    }

    /// Parses the `CAIRNT02` container; `name` is used in errors.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        let (header, payload) = open_container(bytes, TERMS_MAGIC, name)?;
        let h: TermsHeader = serde_json::from_slice(header).map_err(|source| Error::Json { what: name.into(), source })?;
        if payload.len() % 8 != 0 {
            return Err(Error::index(name, "postings are not 8-byte records (truncated?)"));
        }
        let u16_at = |r: &[u8], i: usize| u16::from_le_bytes([r[2 * i], r[2 * i + 1]]);
        let postings: Vec<Posting> = payload
            .chunks_exact(8)
            .map(|r| Posting { topic: TopicRef { cluster: u16_at(r, 0), slot: u16_at(r, 1) }, tf: u16_at(r, 2), len: u16_at(r, 3) })
            .collect();
        for t in &h.terms {
            if (t.first as usize + t.count as usize) > postings.len() {
                return Err(Error::index(name, format!("term {:?} points past the postings", t.term)));
            }
        }
        Ok(TermsShard { terms: h.terms, postings })
    }
}

/// Which post a passage comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PassageKind {
    /// The question (opening post).
    Question,
    /// The accepted answer.
    Accepted,
    /// Another answer (reply).
    Answer,
}

/// A passage's text and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassageMeta {
    /// Slot of its topic in the cluster.
    pub slot: u16,
    /// The post it is part of (source id).
    pub post: String,
    /// Link to that post.
    pub url: String,
    /// Question, accepted answer or answer.
    pub kind: PassageKind,
    /// Votes on the post.
    pub score: i64,
    /// The passage, plain text (newlines kept).
    pub text: String,
}

/// `passages-<c>.<k>-*.bin`: passages of one chunk of a cluster's slots.
/// Header `{"passages": [PassageMeta...]}`; payload: their vectors (`CAIRNV02`).
#[derive(Debug, Clone, PartialEq)]
pub struct PassageChunk {
    /// The passages, topic after topic.
    pub passages: Vec<PassageMeta>,
    /// One vector per passage.
    pub vectors: Vectors,
}

#[derive(Serialize, Deserialize)]
struct PassagesHeader {
    passages: Vec<PassageMeta>,
}

impl PassageChunk {
    /// Serialises to the `CAIRNP02` container.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&PassagesHeader { passages: self.passages.clone() }).expect("passages serialise");
        container(PASSAGES_MAGIC, &header, &self.vectors.to_bytes())
    }

    /// Parses the `CAIRNP02` container; `name` is used in errors.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        let (header, payload) = open_container(bytes, PASSAGES_MAGIC, name)?;
        let h: PassagesHeader = serde_json::from_slice(header).map_err(|source| Error::Json { what: name.into(), source })?;
        let vectors = Vectors::from_bytes(payload, name)?;
        if vectors.len() != h.passages.len() {
            return Err(Error::index(name, format!("{} passages but {} vectors", h.passages.len(), vectors.len())));
        }
        Ok(PassageChunk { passages: h.passages, vectors })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_mark_empty_slots_and_reject_bad_bytes() {
        let mut v = Vectors::quantise(&[vec![0.5, -1.0, 0.25]], 3);
        v.push(None);
        assert_eq!(v.row(0), &[64, -127, 32]);
        assert!(v.live(0) && !v.live(1));
        let bytes = v.to_bytes();
        assert_eq!(Vectors::from_bytes(&bytes, "v").unwrap(), v);
        assert!(Vectors::from_bytes(&bytes[..bytes.len() - 1], "v").unwrap_err().to_string().contains("need"));
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(Vectors::from_bytes(&bad, "v").unwrap_err().to_string().contains("magic"));
    }

    #[test]
    fn quantising_a_dequantised_vector_gives_the_same_codes() {
        // An update reuses stored codes; a rebuild quantises the same f32 again.
        let v: Vec<f32> = (0..384).map(|i| ((i * 37 % 101) as f32 - 50.0) / 77.0).collect();
        let q = QVec::quantise(&v);
        let back: Vec<f32> = q.codes.iter().map(|&c| c as f32 * q.scale).collect();
        assert_eq!(QVec::quantise(&back), q);
    }

    #[test]
    fn shards_round_trip() {
        let c = Centroids::quantised(2, vec![3, 0], &[0.6, 0.8, 0.0, 1.0]);
        assert!((c.data[0] - 0.6).abs() < 0.8 / 127.0);
        assert_eq!(Centroids::from_bytes(&c.to_bytes(), "c").unwrap(), c);
        assert_eq!(Centroids::quantised(2, vec![3, 0], &c.data), c, "quantising again changes nothing");
        let r = |c, s| TopicRef { cluster: c, slot: s };
        let t = TermsShard {
            terms: vec![TermEntry { term: "a".into(), df: 2, first: 0, count: 2 }, TermEntry { term: "b".into(), df: 9, first: 2, count: 1 }],
            postings: vec![Posting { topic: r(0, 1), tf: 2, len: 10 }, Posting { topic: r(3, 0), tf: 1, len: 7 }, Posting { topic: r(1, 1), tf: 1, len: 3 }],
        };
        let back = TermsShard::from_bytes(&t.to_bytes(), "t").unwrap();
        assert_eq!(back, t);
        assert_eq!(back.get("b").unwrap().1, &t.postings[2..]);
        assert!(back.get("c").is_none());
        let p = PassageChunk {
            passages: vec![PassageMeta { slot: 4, post: "7".into(), url: "/q/1#a7".into(), kind: PassageKind::Accepted, score: 3, text: "x\ny".into() }],
            vectors: Vectors::quantise(&[vec![0.1, 0.2]], 2),
        };
        assert_eq!(PassageChunk::from_bytes(&p.to_bytes(), "p").unwrap(), p);
        let mut short = p.to_bytes();
        short.truncate(short.len() - 1);
        assert!(PassageChunk::from_bytes(&short, "p").is_err());
    }

    #[test]
    fn names_are_content_addressed_and_verified() {
        let e = FileEntry::for_bytes(FileRole::Passages, chunk_key(3, 1), b"abc");
        assert!(e.name.starts_with("passages-3.1-") && e.name.ends_with(".bin"), "{}", e.name);
        assert!(verify(&e, b"abc").is_ok());
        let err = verify(&e, b"abd").unwrap_err().to_string();
        assert!(err.contains(&e.name) && err.contains("SHA-256"), "{err}");
        assert!(verify(&e, b"ab").unwrap_err().to_string().contains("truncated"));
    }

    #[test]
    fn catalogs_round_trip_and_pages_group_shards() {
        let files = vec![FileEntry::for_bytes(FileRole::Cards, chunk_key(5, 2), b"x"), FileEntry::for_bytes(FileRole::Vectors, 5, b"yz")];
        let c = Catalog { page: page_of(FileRole::Vectors, 5, &LAYOUT).unwrap(), files };
        let bytes = c.to_bytes();
        assert_eq!(Catalog::from_bytes(&bytes, "k").unwrap(), c);
        assert!(Catalog::from_bytes(&bytes[..bytes.len() - 1], "k").unwrap_err().to_string().contains("truncated"));
        // A cluster's shards share its page; the next page starts after clusters_per_page clusters.
        let page = |role, key| page_of(role, key, &LAYOUT);
        assert_eq!(page(FileRole::Cards, chunk_key(5, 2)), page(FileRole::Vectors, 5));
        assert_eq!(page(FileRole::Links, chunk_key(4, 0)), page(FileRole::Passages, chunk_key(5, 9)));
        assert_ne!(page(FileRole::Vectors, 5), page(FileRole::Vectors, 6));
        assert_ne!(page(FileRole::Terms, 0), page(FileRole::Directory, 0));
        assert_eq!(page(FileRole::Centroids, 0), None);
    }

    const LAYOUT: Layout = Layout { directory_buckets: 4, term_buckets: 8, chunk: 16, clusters_per_page: 2, buckets_per_page: 4 };

    #[test]
    fn refs_serialise_as_compact_arrays() {
        let s = Similar { topic: TopicRef { cluster: 2, slot: 5 }, cos: 0.5 };
        assert_eq!(serde_json::to_string(&s).unwrap(), "[2,5,0.5]");
        let d: DirectoryShard = [("12".to_string(), TopicRef { cluster: 1, slot: 0 })].into();
        assert_eq!(serde_json::to_string(&d).unwrap(), r#"{"12":[1,0]}"#);
    }
}
