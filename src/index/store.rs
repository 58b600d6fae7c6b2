//! Reading an index shard by shard, as queries need them.
//!
//! A [`Store`] starts from the manifest alone. Queries look shards up and,
//! when one is not loaded yet, name it instead of answering: they return
//! [`Step::Need`] with the file names, the caller fetches them (from disk in
//! the CLI, over HTTP in the browser), hands the bytes to [`Store::add`], which
//! verifies and parses them, and asks again. The query code itself stays
//! synchronous and free of I/O, so the CLI and the browser run the same code,
//! and a visitor downloads only the shards their question touches.

use super::format::{
    fnv1a, verify, Centroids, DirectoryShard, FileEntry, FileRole, Manifest, PassageChunk, TermsShard, TopicCard, TopicRef, TopicsShard, Vectors,
    MANIFEST_FILE,
};
use crate::error::{Error, Result};
use std::collections::{BTreeSet, HashMap};

/// A query's outcome: an answer, or the files it needs first.
#[derive(Debug, Clone, PartialEq)]
pub enum Step<T> {
    /// The answer.
    Ready(T),
    /// Fetch these files (names listed by the manifest or a loaded shard), add them, ask again.
    Need(Vec<String>),
}

/// The files a query found missing, collected while it looks around.
#[derive(Debug, Default)]
pub struct Needs(BTreeSet<String>);

impl Needs {
    /// Whether nothing is missing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The missing names as a [`Step::Need`].
    pub fn step<T>(self) -> Step<T> {
        Step::Need(self.0.into_iter().collect())
    }

    fn add(&mut self, name: &str) {
        self.0.insert(name.to_string());
    }
}

/// Returns `Step::Need` from the enclosing query when `needs` is not empty.
#[macro_export]
macro_rules! fetch_first {
    ($needs:expr) => {
        if !$needs.is_empty() {
            return Ok($needs.step());
        }
    };
}

/// Vectors of one cluster with their code norms (computed once, on load).
#[derive(Debug, Clone)]
pub struct ClusterVectors {
    /// The int8 vectors, by slot.
    pub vectors: Vectors,
    /// Euclidean norm of each row's codes (0 for empty slots).
    pub norms: Vec<f32>,
}

/// The parsed form of a loaded shard.
enum Shard {
    Centroids(Centroids),
    Directory(DirectoryShard),
    Topics(TopicsShard),
    Vectors(ClusterVectors),
    Terms(TermsShard),
    Passages(PassageChunk),
    /// The model pack: verified here, loaded by the encoder.
    Model,
}

/// A verified, lazily filled view of one index.
pub struct Store {
    /// The index's manifest.
    pub manifest: Manifest,
    /// Every file this store may load, by name: the manifest's, then the
    /// passage chunks listed by loaded topics shards.
    entries: HashMap<String, FileEntry>,
    /// (role, key) -> name of every listed file.
    names: HashMap<(FileRole, u32), String>,
    shards: HashMap<String, Shard>,
    /// Bytes added so far (what a browser downloaded), manifest excluded.
    pub bytes_loaded: u64,
}

impl Store {
    /// A store over the index whose manifest is `manifest`.
    pub fn new(manifest: Manifest) -> Self {
        let mut store = Store { entries: HashMap::new(), names: HashMap::new(), shards: HashMap::new(), bytes_loaded: 0, manifest };
        for e in store.manifest.files.clone() {
            store.list(e);
        }
        store
    }

    /// Parses `manifest.json` bytes into a store.
    pub fn from_manifest(bytes: &[u8]) -> Result<Self> {
        Ok(Store::new(Manifest::parse(bytes)?))
    }

    fn list(&mut self, e: FileEntry) {
        self.names.insert((e.role, e.key), e.name.clone());
        self.entries.insert(e.name.clone(), e);
    }

    /// Whether `name` is loaded.
    pub fn has(&self, name: &str) -> bool {
        self.shards.contains_key(name)
    }

    /// The name of the listed file with `role` and `key`.
    pub fn name_of(&self, role: FileRole, key: u32) -> Option<&str> {
        self.names.get(&(role, key)).map(String::as_str)
    }

    /// Verifies `bytes` against the entry of `name` and keeps the parsed shard.
    /// A file the store does not list, or whose size or hash differs, is refused by name.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        if self.shards.contains_key(name) {
            return Ok(());
        }
        let entry = self.entries.get(name).cloned().ok_or_else(|| Error::index(name, "is not listed by the manifest or any loaded shard"))?;
        verify(&entry, bytes)?;
        let shard = match entry.role {
            FileRole::Centroids => Shard::Centroids(Centroids::from_bytes(bytes, name)?),
            FileRole::Directory => Shard::Directory(serde_json::from_slice(bytes).map_err(|source| Error::Json { what: name.into(), source })?),
            FileRole::Topics => {
                let t: TopicsShard = serde_json::from_slice(bytes).map_err(|source| Error::Json { what: name.into(), source })?;
                if t.cluster as u32 != entry.key {
                    return Err(Error::index(name, format!("holds cluster {}, the manifest says {}", t.cluster, entry.key)));
                }
                for e in &t.passage_chunks {
                    if e.role != FileRole::Passages || e.key >> 16 != entry.key {
                        return Err(Error::index(name, format!("lists {} as a passage chunk of another cluster", e.name)));
                    }
                    self.list(e.clone());
                }
                Shard::Topics(t)
            }
            FileRole::Vectors => {
                let vectors = Vectors::from_bytes(bytes, name)?;
                if vectors.dim != self.manifest.model.dim {
                    return Err(Error::index(name, format!("vectors are {} wide, the model makes {}", vectors.dim, self.manifest.model.dim)));
                }
                let norms = super::search::code_norms(&vectors);
                Shard::Vectors(ClusterVectors { vectors, norms })
            }
            FileRole::Terms => Shard::Terms(TermsShard::from_bytes(bytes, name)?),
            FileRole::Passages => Shard::Passages(PassageChunk::from_bytes(bytes, name)?),
            FileRole::Model => Shard::Model,
        };
        self.bytes_loaded += bytes.len() as u64;
        self.shards.insert(name.to_string(), shard);
        Ok(())
    }

    /// The loaded shard named by (role, key), or records what to fetch.
    fn shard(&self, role: FileRole, key: u32, needs: &mut Needs) -> Option<&Shard> {
        let name = self.names.get(&(role, key))?;
        let s = self.shards.get(name);
        if s.is_none() {
            needs.add(name);
        }
        s
    }

    /// The centroids.
    pub fn centroids(&self, needs: &mut Needs) -> Option<&Centroids> {
        match self.shard(FileRole::Centroids, 0, needs)? {
            Shard::Centroids(c) => Some(c),
            _ => None,
        }
    }

    /// Where the topic with source id `id` is: `Some(None)` when the index has no such topic.
    pub fn locate(&self, id: &str, needs: &mut Needs) -> Option<Option<TopicRef>> {
        let bucket = fnv1a(id) % self.manifest.layout.directory_buckets.max(1);
        if self.name_of(FileRole::Directory, bucket).is_none() {
            return Some(None); // an empty index lists no directory
        }
        match self.shard(FileRole::Directory, bucket, needs)? {
            Shard::Directory(d) => Some(d.get(id).copied()),
            _ => None,
        }
    }

    /// Cluster `c`'s topics shard.
    pub fn topics(&self, c: u16, needs: &mut Needs) -> Option<&TopicsShard> {
        match self.shard(FileRole::Topics, c as u32, needs)? {
            Shard::Topics(t) => Some(t),
            _ => None,
        }
    }

    /// The card of topic `r` (`None` while its shard is missing or when the slot is empty).
    pub fn card(&self, r: TopicRef, needs: &mut Needs) -> Option<&TopicCard> {
        self.topics(r.cluster, needs)?.topics.get(r.slot as usize)?.as_ref()
    }

    /// Cluster `c`'s vectors.
    pub fn vectors(&self, c: u16, needs: &mut Needs) -> Option<&ClusterVectors> {
        match self.shard(FileRole::Vectors, c as u32, needs)? {
            Shard::Vectors(v) => Some(v),
            _ => None,
        }
    }

    /// The terms shard of `bucket`.
    pub fn terms(&self, bucket: u32, needs: &mut Needs) -> Option<&TermsShard> {
        match self.shard(FileRole::Terms, bucket, needs)? {
            Shard::Terms(t) => Some(t),
            _ => None,
        }
    }

    /// The passage chunk holding topic `r`'s passages (its topics shard must be loaded first).
    pub fn passages(&self, r: TopicRef, needs: &mut Needs) -> Option<&PassageChunk> {
        let chunk = r.slot as u32 / self.manifest.layout.passage_chunk.max(1);
        let topics = self.topics(r.cluster, needs)?;
        let entry = topics.passage_chunks.get(chunk as usize)?;
        let s = self.shards.get(&entry.name);
        if s.is_none() {
            needs.add(&entry.name);
        }
        match s? {
            Shard::Passages(p) => Some(p),
            _ => None,
        }
    }

    /// The model pack the index lists, if it was built with one.
    pub fn model_file(&self) -> Option<&FileEntry> {
        self.manifest.file(FileRole::Model, 0)
    }

    /// Number of clusters.
    pub fn clusters(&self) -> usize {
        self.manifest.counts.clusters
    }

    /// Every loaded topics shard's live cards, with their refs (order: cluster, slot).
    pub fn loaded_cards(&self) -> Vec<(TopicRef, &TopicCard)> {
        let mut out = Vec::new();
        for c in 0..self.clusters() as u16 {
            if let Some(Shard::Topics(t)) = self.names.get(&(FileRole::Topics, c as u32)).and_then(|n| self.shards.get(n)) {
                for (s, card) in t.topics.iter().enumerate() {
                    if let Some(card) = card {
                        out.push((TopicRef { cluster: c, slot: s as u16 }, card));
                    }
                }
            }
        }
        out
    }

    /// Every file listed so far (manifest, then loaded topics shards' passage chunks).
    pub fn listed(&self) -> impl Iterator<Item = &FileEntry> {
        self.entries.values()
    }

    /// Runs `query` to completion, fetching what it needs with `fetch(name)`.
    /// Gives up after a few rounds (no query needs more than a handful).
    pub fn resolve<T>(&mut self, mut fetch: impl FnMut(&str) -> Result<Vec<u8>>, mut query: impl FnMut(&Store) -> Result<Step<T>>) -> Result<T> {
        const MAX_ROUNDS: usize = 8;
        for _ in 0..MAX_ROUNDS {
            match query(self)? {
                Step::Ready(v) => return Ok(v),
                Step::Need(names) => {
                    for n in names {
                        let bytes = fetch(&n)?;
                        self.add(&n, &bytes)?;
                    }
                }
            }
        }
        Err(Error::index(MANIFEST_FILE, "a query kept asking for more files (a shard refers to files that are missing?)"))
    }
}

/// Native: an index directory on disk.
#[cfg(not(target_arch = "wasm32"))]
pub mod dir {
    use super::*;
    use std::path::{Path, PathBuf};

    /// An index directory and a store over it.
    pub struct DirStore {
        /// The directory.
        pub dir: PathBuf,
        /// The store.
        pub store: Store,
    }

    impl DirStore {
        /// Reads the manifest of the index in `dir`.
        pub fn open(dir: &Path) -> Result<Self> {
            let mpath = dir.join(MANIFEST_FILE);
            let bytes = std::fs::read(&mpath).map_err(|e| Error::io(&mpath, e))?;
            Ok(DirStore { dir: dir.to_path_buf(), store: Store::from_manifest(&bytes)? })
        }

        /// Answers `query`, reading the shards it needs from the directory.
        pub fn run<T>(&mut self, query: impl FnMut(&Store) -> Result<Step<T>>) -> Result<T> {
            let dir = self.dir.clone();
            self.store.resolve(|name| read(&dir, name), query)
        }

        /// Loads every shard (and every passage chunk): what `cairn verify` and updates do.
        /// Returns the number of files checked, the manifest included.
        pub fn load_all(&mut self) -> Result<usize> {
            let names: Vec<String> = self.store.manifest.files.iter().map(|f| f.name.clone()).collect();
            for n in &names {
                let bytes = read(&self.dir, n)?;
                self.store.add(n, &bytes)?;
            }
            let chunks: Vec<String> = self
                .store
                .listed()
                .filter(|e| e.role == FileRole::Passages)
                .map(|e| e.name.clone())
                .collect();
            for n in &chunks {
                let bytes = read(&self.dir, n)?;
                self.store.add(n, &bytes)?;
            }
            Ok(names.len() + chunks.len() + 1)
        }
    }

    fn read(dir: &Path, name: &str) -> Result<Vec<u8>> {
        let p = dir.join(name);
        std::fs::read(&p).map_err(|e| Error::index(name, format!("cannot be read from {}: {e}", dir.display())))
    }
}
