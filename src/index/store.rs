//! Reading an index shard by shard, as queries need them.
//!
//! A [`Store`] starts from the manifest alone. Queries look shards up and,
//! when one is not loaded yet, name it instead of answering: they return
//! [`Step::Need`] with the file names, the caller fetches them (from disk in
//! the CLI, over HTTP in the browser), hands the bytes to [`Store::add`], which
//! verifies and parses them, and asks again. The query code itself stays
//! synchronous and free of I/O, so the CLI and the browser run the same code,
//! and a visitor downloads only the shards their question touches.
//!
//! A shard's name comes from the catalog: asking for a shard whose catalog
//! page is not loaded yet asks for the page (or the root) first.

use super::format::{
    chunk_key, fnv1a, page_of, verify, CardsChunk, Catalog, Centroids, DirectoryShard, FileEntry, FileRole, LinksChunk, Manifest, PassageChunk, TermsShard,
    TopicCard, TopicLinks, TopicRef, Vectors, MANIFEST_FILE,
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
    /// A catalog's files are listed on load; nothing else is kept.
    Catalog,
    Directory(DirectoryShard),
    Cards(CardsChunk),
    Links(LinksChunk),
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
    /// Every file this store may load, by name: the manifest's, then those
    /// listed by the loaded catalog files.
    entries: HashMap<String, FileEntry>,
    /// (role, key) -> name of every listed file.
    names: HashMap<(FileRole, u32), String>,
    shards: HashMap<String, Shard>,
    /// Whether the catalog root is loaded (every page is then listed).
    root_loaded: bool,
    /// Bytes added so far (what a browser downloaded), manifest excluded.
    pub bytes_loaded: u64,
}

impl Store {
    /// A store over the index whose manifest is `manifest`.
    pub fn new(manifest: Manifest) -> Self {
        let mut store = Store { entries: HashMap::new(), names: HashMap::new(), shards: HashMap::new(), root_loaded: false, bytes_loaded: 0, manifest };
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
            FileRole::Catalog => {
                let catalog = Catalog::from_bytes(bytes, name)?;
                if catalog.page != entry.key {
                    return Err(Error::index(name, format!("is catalog page {}, the listing says {}", catalog.page, entry.key)));
                }
                let layout = self.manifest.layout;
                for e in &catalog.files {
                    // The root lists pages; a page lists the shards that belong on it.
                    let belongs = if entry.key == 0 { e.role == FileRole::Catalog && e.key != 0 } else { page_of(e.role, e.key, &layout) == Some(entry.key) };
                    if !belongs {
                        return Err(Error::index(name, format!("lists {}, which belongs on another catalog page", e.name)));
                    }
                }
                catalog.files.into_iter().for_each(|e| self.list(e));
                Shard::Catalog
            }
            FileRole::Cards => {
                let chunk: CardsChunk = serde_json::from_slice(bytes).map_err(|source| Error::Json { what: name.into(), source })?;
                if chunk_key(chunk.cluster, chunk.chunk) != entry.key {
                    return Err(Error::index(name, format!("holds chunk {}.{}, the catalog says another", chunk.cluster, chunk.chunk)));
                }
                Shard::Cards(chunk)
            }
            FileRole::Links => {
                let chunk: LinksChunk = serde_json::from_slice(bytes).map_err(|source| Error::Json { what: name.into(), source })?;
                if chunk_key(chunk.cluster, chunk.chunk) != entry.key {
                    return Err(Error::index(name, format!("holds chunk {}.{}, the catalog says another", chunk.cluster, chunk.chunk)));
                }
                Shard::Links(chunk)
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
        if entry.role == FileRole::Catalog && entry.key == 0 {
            self.root_loaded = true;
        }
        self.bytes_loaded += bytes.len() as u64;
        self.shards.insert(name.to_string(), shard);
        Ok(())
    }

    /// The name of shard (role, key), or records the catalog file to fetch
    /// first. `None` without a need: the index has no such shard.
    fn lookup(&self, role: FileRole, key: u32, needs: &mut Needs) -> Option<&str> {
        if let Some(name) = self.names.get(&(role, key)) {
            return Some(name);
        }
        let page = page_of(role, key, &self.manifest.layout)?;
        match self.names.get(&(FileRole::Catalog, page)) {
            Some(page_name) if !self.shards.contains_key(page_name) => needs.add(page_name),
            Some(_) => {} // the page is loaded and does not list it
            None if !self.root_loaded => {
                if let Some(root) = self.names.get(&(FileRole::Catalog, 0)) {
                    needs.add(root);
                }
            }
            None => {} // the root lists no such page
        }
        None
    }

    /// The loaded shard (role, key), or records what to fetch.
    fn shard(&self, role: FileRole, key: u32, needs: &mut Needs) -> Option<&Shard> {
        let name = self.lookup(role, key, needs)?;
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
        if self.manifest.counts.topics == 0 {
            return Some(None);
        }
        let bucket = fnv1a(id) % self.manifest.layout.directory_buckets.max(1);
        match self.shard(FileRole::Directory, bucket, needs)? {
            Shard::Directory(d) => Some(d.get(id).copied()),
            _ => None,
        }
    }

    /// The key of the chunk (cards, links, passages) holding topic `r`, and `r`'s place in it.
    fn chunk_of(&self, r: TopicRef) -> (u32, usize) {
        let per = self.manifest.layout.chunk.max(1) as u16;
        (chunk_key(r.cluster, r.slot / per), (r.slot % per) as usize)
    }

    /// The card of topic `r` (`None` while its chunk is missing or when the slot is empty).
    pub fn card(&self, r: TopicRef, needs: &mut Needs) -> Option<&TopicCard> {
        let (key, at) = self.chunk_of(r);
        match self.shard(FileRole::Cards, key, needs)? {
            Shard::Cards(c) => c.cards.get(at)?.as_ref(),
            _ => None,
        }
    }

    /// The links of topic `r` (`None` while its chunk is missing or when the slot is empty).
    pub fn links(&self, r: TopicRef, needs: &mut Needs) -> Option<&TopicLinks> {
        let (key, at) = self.chunk_of(r);
        match self.shard(FileRole::Links, key, needs)? {
            Shard::Links(c) => c.links.get(at)?.as_ref(),
            _ => None,
        }
    }

    /// Slots of cluster `c` (empty ones included), from its card chunks; `None` while they are not all loaded.
    pub fn slots(&self, c: u16, needs: &mut Needs) -> Option<usize> {
        let mut slots = 0;
        for k in 0..=u16::MAX {
            let mut here = Needs::default();
            let Some(name) = self.lookup(FileRole::Cards, chunk_key(c, k), &mut here) else {
                if here.is_empty() {
                    return Some(slots); // past the last chunk
                }
                needs.0.extend(here.0);
                return None;
            };
            match self.shards.get(name) {
                Some(Shard::Cards(chunk)) => slots = k as usize * self.manifest.layout.chunk as usize + chunk.cards.len(),
                _ => {
                    needs.add(name);
                    return None;
                }
            }
        }
        Some(slots)
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

    /// The passage chunk holding topic `r`'s passages.
    pub fn passages(&self, r: TopicRef, needs: &mut Needs) -> Option<&PassageChunk> {
        match self.shard(FileRole::Passages, self.chunk_of(r).0, needs)? {
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

    /// Every loaded card chunk's live cards, with their refs (order: cluster, slot).
    pub fn loaded_cards(&self) -> Vec<(TopicRef, &TopicCard)> {
        let per = self.manifest.layout.chunk as usize;
        let mut out: Vec<(TopicRef, &TopicCard)> = self
            .shards
            .values()
            .filter_map(|s| if let Shard::Cards(c) = s { Some(c) } else { None })
            .flat_map(|c| {
                c.cards.iter().enumerate().filter_map(move |(i, card)| card.as_ref().map(|card| (TopicRef { cluster: c.cluster, slot: (c.chunk as usize * per + i) as u16 }, card)))
            })
            .collect();
        out.sort_by_key(|(r, _)| *r);
        out
    }

    /// Every file listed so far (the manifest's, then the loaded catalogs').
    pub fn listed(&self) -> impl Iterator<Item = &FileEntry> {
        self.entries.values()
    }

    /// Runs `query` to completion, fetching what it needs with `fetch(name)`.
    /// Gives up after a few rounds (no query needs more than a handful).
    pub fn resolve<T>(&mut self, mut fetch: impl FnMut(&str) -> Result<Vec<u8>>, mut query: impl FnMut(&Store) -> Result<Step<T>>) -> Result<T> {
        // Catalog root, page, shard: three rounds per level of a query at most.
        const MAX_ROUNDS: usize = 16;
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

        /// Loads every file the index lists, catalogs first: what `cairn verify` and updates do.
        /// Returns the number of files checked, the manifest included.
        pub fn load_all(&mut self) -> Result<usize> {
            loop {
                let mut missing: Vec<String> = self.store.listed().filter(|e| !self.store.has(&e.name)).map(|e| e.name.clone()).collect();
                if missing.is_empty() {
                    return Ok(self.store.shards.len() + 1);
                }
                missing.sort();
                for n in &missing {
                    let bytes = read(&self.dir, n)?;
                    self.store.add(n, &bytes)?;
                }
            }
        }
    }

    fn read(dir: &Path, name: &str) -> Result<Vec<u8>> {
        let p = dir.join(name);
        std::fs::read(&p).map_err(|e| Error::index(name, format!("cannot be read from {}: {e}", dir.display())))
    }
}
