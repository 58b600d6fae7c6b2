//! Lays prepared topics out into shards and writes the index (native only).
//!
//! [`build`] is a pure function of its inputs: topics are taken in id order,
//! so the same data always gives the same bytes. A fresh build clusters the
//! topic vectors with k-means; an update ([`Previous`]) keeps every unchanged
//! topic's cluster and slot and the shard layout, so only shards whose content
//! changed get new names. Links between topics (nearest by meaning,
//! co-participation) are computed over all topics in both cases (nearest
//! topics exactly up to [`EXACT_SIMILAR_LIMIT`] topics).
//!
//! [`write`] puts the shards into the index directory under their
//! content-addressed names, then replaces `manifest.json` in one rename: a
//! reader sees the old index or the new one, never a mix. Shards the new
//! manifest no longer lists are deleted, except those of the previous
//! generation, which visitors in the middle of a session may still fetch.

use super::format::{
    chunk_key, page_of, CardsChunk, Catalog, Centroids, Counts, DirectoryShard, FileEntry, FileRole, LeftOut, LexicalStats, Layout, LinksChunk, Manifest,
    ModelInfo, PassageChunk, PassageMeta, PassageSpan, People, Posting, QVec, Similar, TermEntry, TermsShard, TopicCard, TopicLinks, TopicRef, Vectors,
    FORMAT_NAME, FORMAT_VERSION, MANIFEST_FILE, NEAR_PER_CARD,
};
use super::kmeans;
use super::lexical;
use super::passages::PassageText;
use super::search::{cosine_i8, dot_i8};
use super::store::Store;
use crate::error::{Error, Result};
use crate::rank::coparticipation::CoParticipation;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// Nearest topics by meaning stored per topic.
pub const SIMILAR_PER_TOPIC: usize = 32;
/// Co-participation neighbours stored per topic.
pub const PEOPLE_PER_TOPIC: usize = 10;
/// Topics per id-directory bucket a fresh build aims for (a topic page fetches one bucket).
pub const DIRECTORY_BUCKET_TOPICS: usize = 256;
/// Bytes of postings per terms shard a fresh build aims for.
pub const TERMS_SHARD_BYTES: usize = 48 * 1024;
/// Slots per chunk of cards, links and passages: a topic page fetches a
/// chunk per candidate shown, so chunks are small.
pub const CHUNK: u32 = 8;
/// Clusters a related-topics page typically touches, for sizing catalog pages.
const CLUSTERS_TOUCHED: f64 = 6.0;
/// Term buckets a question typically touches, for sizing catalog pages.
const BUCKETS_TOUCHED: f64 = 8.0;
/// An update re-clusters from scratch once the index has grown past this
/// multiple of what its clusters were sized for.
pub const RECLUSTER_GROWTH: usize = 2;

/// A topic ready for the index.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its card; `near` and `passages` are filled in by [`build`].
    pub card: TopicCard,
    /// Content hash of everything the index derives from it ([`super::prepare::content_hash`]).
    pub hash: String,
    /// Its vector.
    pub vector: QVec,
    /// Its passages and their vectors, in order.
    pub passages: Vec<(PassageText, QVec)>,
    /// Who took part (user keys; used for co-participation, never stored).
    pub participants: Vec<String>,
}

/// What an update keeps from the index it updates.
#[derive(Debug, Clone)]
pub struct Previous {
    /// Where each topic was.
    pub refs: HashMap<String, TopicRef>,
    /// The clusters.
    pub centroids: Centroids,
    /// Slots per cluster (empty ones included).
    pub slots: Vec<usize>,
    /// How shards were cut.
    pub layout: Layout,
    /// What can be reused per topic id, valid while the topic's hash is unchanged.
    pub reusable: HashMap<String, Reusable>,
}

/// The expensive parts of a topic an update can reuse.
#[derive(Debug, Clone)]
pub struct Reusable {
    /// [`TopicLinks::hash`] they were computed for.
    pub hash: String,
    /// The topic vector.
    pub vector: QVec,
    /// Its key phrases.
    pub keywords: Vec<String>,
    /// Its passages' vectors, in order.
    pub passages: Vec<QVec>,
}

impl Previous {
    /// Reads what an update needs from a store with every shard loaded
    /// ([`super::store::dir::DirStore::load_all`]).
    pub fn from_store(store: &Store) -> Result<Previous> {
        let mut needs = super::store::Needs::default();
        let centroids = store.centroids(&mut needs).cloned().ok_or_else(|| Error::index(MANIFEST_FILE, "lists no centroids"))?;
        let mut refs = HashMap::new();
        let mut reusable = HashMap::new();
        let mut slots = vec![0usize; store.clusters()];
        for c in 0..store.clusters() as u16 {
            let missing = |what: &str| Error::index(MANIFEST_FILE, format!("{what} of cluster {c} are not loaded"));
            slots[c as usize] = store.slots(c, &mut needs).ok_or_else(|| missing("cards"))?;
            let vectors = store.vectors(c, &mut needs).ok_or_else(|| missing("vectors"))?;
            for s in 0..slots[c as usize] {
                let r = TopicRef { cluster: c, slot: s as u16 };
                let Some(card) = store.card(r, &mut needs) else { continue };
                let links = store.links(r, &mut needs).ok_or_else(|| Error::index(&card.id, "has a card but no links"))?;
                let vector = vectors.vectors.get(s).ok_or_else(|| Error::index(&card.id, "has a card but no vector"))?;
                let chunk = store.passages(r, &mut needs).ok_or_else(|| Error::index(&card.id, "its passage chunk is not loaded"))?;
                let span = card.passages;
                let passages = (span.first..span.first + span.count)
                    .map(|i| chunk.vectors.get(i as usize).ok_or_else(|| Error::index(&card.id, "passage vector missing")))
                    .collect::<Result<Vec<_>>>()?;
                refs.insert(card.id.clone(), r);
                reusable.insert(card.id.clone(), Reusable { hash: links.hash.clone(), vector, keywords: card.keywords.clone(), passages });
            }
        }
        Ok(Previous { refs, centroids, slots, layout: store.manifest.layout, reusable })
    }
}

/// An index in memory: its manifest and every shard's entry and bytes.
pub struct Built {
    /// The manifest.
    pub manifest: Manifest,
    /// Every shard, passage chunks included.
    pub files: Vec<(FileEntry, Vec<u8>)>,
    /// Whether an update had to re-cluster (the index outgrew its clusters).
    pub reclustered: bool,
}

fn round(x: f32, digits: i32) -> f32 {
    let p = 10f32.powi(digits);
    (x * p).round() / p
}

fn dequantised_unit(q: &QVec) -> Vec<f32> {
    let mut v: Vec<f32> = q.codes.iter().map(|&c| c as f32).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

/// Where every topic goes: (refs by entry, centroids, slots per cluster, reclustered).
fn place(entries: &[&Entry], dim: usize, cluster_size: usize, previous: Option<&Previous>) -> (Vec<TopicRef>, Centroids, Vec<usize>, bool) {
    let n = entries.len();
    let keep = previous.filter(|p| n <= RECLUSTER_GROWTH * p.centroids.len() * cluster_size && p.centroids.dim == dim);
    let Some(prev) = keep else {
        let points: Vec<f32> = entries.iter().flat_map(|e| dequantised_unit(&e.vector)).collect();
        let k = kmeans::clusters_for(n, cluster_size);
        let clustering = kmeans::cluster(&points, dim, k);
        let k = clustering.centroids.len() / dim;
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); k];
        for (i, &c) in clustering.assignment.iter().enumerate() {
            members[c].push(i);
        }
        let mut refs = vec![TopicRef { cluster: 0, slot: 0 }; n];
        let ordered: Vec<Vec<usize>> = members.into_par_iter().map(|m| locality_order(m, &points, dim, CHUNK as usize)).collect();
        for (c, m) in ordered.iter().enumerate() {
            for (s, &i) in m.iter().enumerate() {
                refs[i] = TopicRef { cluster: c as u16, slot: s as u16 };
            }
        }
        let slots: Vec<usize> = ordered.iter().map(Vec::len).collect();
        let sizes = slots.iter().map(|&s| s as u32).collect();
        return (refs, Centroids::quantised(dim, sizes, &clustering.centroids), slots, previous.is_some());
    };

    // Update: unchanged topics stay; a changed topic whose nearest cluster is
    // still its own keeps its slot; the rest take their nearest cluster's
    // lowest free slot, in id order.
    let k = prev.centroids.len();
    let mut taken: Vec<Vec<bool>> = prev.slots.iter().map(|&s| vec![false; s]).collect();
    let mut refs: Vec<Option<TopicRef>> = vec![None; n];
    let mut movers = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        match (prev.refs.get(&e.card.id), prev.reusable.get(&e.card.id)) {
            (Some(r), Some(old)) if old.hash == e.hash => {
                taken[r.cluster as usize][r.slot as usize] = true;
                refs[i] = Some(*r);
            }
            _ => {
                let c = kmeans::nearest(&prev.centroids.data, dim, &dequantised_unit(&e.vector));
                match prev.refs.get(&e.card.id) {
                    Some(r) if r.cluster as usize == c => {
                        taken[c][r.slot as usize] = true;
                        refs[i] = Some(*r);
                    }
                    _ => movers.push((i, c)),
                }
            }
        }
    }
    for (i, c) in movers {
        let slot = match taken[c].iter().position(|t| !t) {
            Some(s) => s,
            None => {
                taken[c].push(false);
                taken[c].len() - 1
            }
        };
        taken[c][slot] = true;
        refs[i] = Some(TopicRef { cluster: c as u16, slot: slot as u16 });
    }
    let slots: Vec<usize> = taken.iter().map(Vec::len).collect();
    let mut sizes = vec![0u32; k];
    let refs: Vec<TopicRef> = refs.into_iter().map(|r| r.expect("every topic placed")).collect();
    for r in &refs {
        sizes[r.cluster as usize] += 1;
    }
    (refs, Centroids { dim, sizes, data: prev.centroids.data.clone() }, slots, false)
}

/// Orders a cluster's members (indices into `points`, unit rows of width
/// `dim`) so that near topics get near slots: split at a multiple of `chunk`
/// along the members' main direction, recursively, until a part fits a chunk.
/// A topic page then finds most of its candidates in a few chunks.
/// Deterministic; within a chunk, members keep their given (id) order.
fn locality_order(mut members: Vec<usize>, points: &[f32], dim: usize, chunk: usize) -> Vec<usize> {
    if members.len() <= chunk {
        members.sort_unstable();
        return members;
    }
    let row = |i: usize| &points[i * dim..(i + 1) * dim];
    let mut mean = vec![0f32; dim];
    for &i in &members {
        mean.iter_mut().zip(row(i)).for_each(|(m, x)| *m += x);
    }
    mean.iter_mut().for_each(|m| *m /= members.len() as f32);
    // Main direction by power iteration on the centred members, from the farthest member's direction.
    let centred = |i: usize, v: &[f32]| -> f32 { row(i).iter().zip(&mean).zip(v).map(|((x, m), d)| (x - m) * d).sum() };
    let far = *members.iter().max_by(|&&a, &&b| {
        let d = |i: usize| row(i).iter().zip(&mean).map(|(x, m)| (x - m) * (x - m)).sum::<f32>();
        d(a).total_cmp(&d(b)).then(b.cmp(&a))
    }).expect("members");
    let mut axis: Vec<f32> = row(far).iter().zip(&mean).map(|(x, m)| x - m).collect();
    for _ in 0..8 {
        let mut next = vec![0f32; dim];
        for &i in &members {
            let p = centred(i, &axis);
            next.iter_mut().zip(row(i)).zip(&mean).for_each(|((n, x), m)| *n += p * (x - m));
        }
        let norm = next.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm == 0.0 {
            break;
        }
        axis = next.into_iter().map(|x| x / norm).collect();
    }
    let mut keyed: Vec<(f32, usize)> = members.iter().map(|&i| (centred(i, &axis), i)).collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let chunks = members.len().div_ceil(chunk);
    let split = chunks.div_ceil(2) * chunk;
    members = keyed.into_iter().map(|(_, i)| i).collect();
    let right = members.split_off(split.min(members.len()));
    let mut out = locality_order(members, points, dim, chunk);
    out.extend(locality_order(right, points, dim, chunk));
    out
}

/// Up to this many topics, nearest-topic lists are exact (every pair compared);
/// above, each topic compares with the topics of its nearest clusters only, as
/// a query does ([`super::search::probe`]): O(N) instead of O(N^2). `cairn
/// bench index` measures the recall of both.
pub const EXACT_SIMILAR_LIMIT: usize = 20_000;

/// Nearest topics by meaning for every live topic: (entry, cosine), best first,
/// ties by entry order (id order). Exact up to [`EXACT_SIMILAR_LIMIT`] topics,
/// else from the probed clusters of `refs`/`centroids`.
fn similar_lists(entries: &[&Entry], refs: &[TopicRef], centroids: &Centroids) -> Vec<Vec<(usize, f32)>> {
    let norms: Vec<f32> = entries.iter().map(|e| (dot_i8(&e.vector.codes, &e.vector.codes) as f32).sqrt()).collect();
    let best = |i: usize, candidates: &mut dyn Iterator<Item = usize>| -> Vec<(usize, f32)> {
        let mut hits: Vec<(usize, f32)> = candidates
            .filter(|&j| j != i)
            .map(|j| (j, round(cosine_i8(&entries[i].vector.codes, norms[i], &entries[j].vector.codes, norms[j]), 4)))
            .collect();
        let order = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if hits.len() > SIMILAR_PER_TOPIC {
            hits.select_nth_unstable_by(SIMILAR_PER_TOPIC - 1, order);
            hits.truncate(SIMILAR_PER_TOPIC);
        }
        hits.sort_by(order);
        // The candidates' capacity (thousands of pairs) would otherwise stay with every list.
        hits.shrink_to_fit();
        hits
    };
    if entries.len() <= EXACT_SIMILAR_LIMIT {
        return (0..entries.len()).into_par_iter().map(|i| best(i, &mut (0..entries.len()))).collect();
    }
    let mut members = vec![Vec::new(); centroids.len()];
    for (i, r) in refs.iter().enumerate() {
        members[r.cluster as usize].push(i);
    }
    // Probe for blocks of topics at once: their centroid similarities are one
    // matrix product (topics x centroids^T), as in k-means.
    const BLOCK: usize = 256;
    let dim = centroids.dim;
    let k = centroids.len();
    let scorer = crate::backend::cpu::Linear::new(&centroids.data, &vec![0.0; k], k, dim);
    (0..entries.len())
        .collect::<Vec<usize>>()
        .par_chunks(BLOCK)
        .flat_map_iter(|block| {
            let units: Vec<f32> = block.iter().flat_map(|&i| dequantised_unit(&entries[i].vector)).collect();
            let mut scores = vec![0.0f32; block.len() * k];
            scorer.forward(&units, block.len(), &mut scores);
            block
                .iter()
                .zip(scores.chunks_exact(k))
                .map(|(&i, s)| {
                    let probed = super::search::probe_scored(&centroids.sizes, s);
                    best(i, &mut probed.iter().flat_map(|&c| members[c as usize].iter().copied()))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The lexical document of a topic: its title (twice: titles say most) and its passages.
pub fn lexical_document(title: &str, passages: &[&str]) -> Vec<String> {
    let mut doc = lexical::tokens(title);
    doc.extend(doc.clone());
    for p in passages {
        doc.extend(lexical::tokens(p));
    }
    doc
}

/// How a fresh build cuts the index.
#[derive(Debug, Clone, Copy)]
pub struct BuildOptions {
    /// Topics per cluster to aim for ([`kmeans::TARGET_CLUSTER_SIZE`] by default).
    pub cluster_size: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions { cluster_size: kmeans::TARGET_CLUSTER_SIZE }
    }
}

/// Builds every shard and the manifest. `previous` makes it an update;
/// `pack` (the bytes of the model pack that embedded the entries, if any) is
/// stored with the index so the browser encodes queries with exactly it.
pub fn build(entries: &[Entry], model: ModelInfo, left_out: LeftOut, previous: Option<&Previous>, pack: Option<&[u8]>, opts: BuildOptions) -> Result<Built> {
    let dim = model.dim;
    for e in entries {
        if e.vector.codes.len() != dim || e.passages.iter().any(|(_, v)| v.codes.len() != dim) {
            return Err(Error::index(&e.card.id, format!("has a vector that is not {dim} wide")));
        }
    }
    let mut seen = HashSet::new();
    if let Some(dup) = entries.iter().find(|e| !seen.insert(e.card.id.as_str())) {
        return Err(Error::Input { location: format!("topic {}", dup.card.id), message: "two topics have this id".into() });
    }
    // Id order makes everything below independent of the source's order.
    let mut entries: Vec<&Entry> = entries.iter().collect();
    entries.sort_by(|a, b| a.card.id.cmp(&b.card.id));
    let n = entries.len();

    let (refs, centroids, slots, reclustered) = place(&entries, dim, opts.cluster_size.max(1), previous);
    let k = centroids.len();

    // Links between topics.
    let similar = similar_lists(&entries, &refs, &centroids);
    let cp = CoParticipation::build(n, entries.iter().enumerate().flat_map(|(i, e)| e.participants.iter().map(move |u| (i, u.as_str()))));
    let norms: Vec<f32> = entries.iter().map(|e| (dot_i8(&e.vector.codes, &e.vector.codes) as f32).sqrt()).collect();
    let cos = |a: usize, b: usize| round(cosine_i8(&entries[a].vector.codes, norms[a], &entries[b].vector.codes, norms[b]), 4);

    // Cards and links, by cluster and slot.
    let mut cards: Vec<Vec<Option<TopicCard>>> = slots.iter().map(|&s| vec![None; s]).collect();
    let mut links: Vec<Vec<Option<TopicLinks>>> = slots.iter().map(|&s| vec![None; s]).collect();
    for (i, e) in entries.iter().enumerate() {
        let similar: Vec<Similar> = similar[i].iter().map(|&(j, c)| Similar { topic: refs[j], cos: c }).collect();
        let mut people: Vec<(usize, f32)> = cp.neighbours(i);
        people.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        people.truncate(PEOPLE_PER_TOPIC);
        let people = people.into_iter().map(|(j, sim)| People { topic: refs[j], sim: round(sim, 2), shared: cp.shared(i, j) as u32, cos: cos(i, j) }).collect();
        let mut card = e.card.clone();
        card.near = similar.iter().take(NEAR_PER_CARD).copied().collect();
        let r = refs[i];
        cards[r.cluster as usize][r.slot as usize] = Some(card);
        links[r.cluster as usize][r.slot as usize] = Some(TopicLinks { hash: e.hash.clone(), similar, people });
    }
    let entry_at: HashMap<TopicRef, usize> = refs.iter().enumerate().map(|(i, r)| (*r, i)).collect();
    let layout = previous.filter(|_| !reclustered).map(|p| p.layout).unwrap_or_else(|| fresh_layout(&entries, &slots));

    let mut files: Vec<(FileEntry, Vec<u8>)> = Vec::new();
    let mut passages_total = 0;
    let per = layout.chunk as usize;
    for c in 0..k {
        // Per chunk of slots: passages (which fix each card's span), cards, links.
        for chunk in 0..slots[c].div_ceil(per) {
            let key = chunk_key(c as u16, chunk as u16);
            let slot_range = chunk * per..((chunk + 1) * per).min(slots[c]);
            let mut metas = Vec::new();
            let mut vectors = Vectors::new(dim);
            for s in slot_range.clone() {
                let r = TopicRef { cluster: c as u16, slot: s as u16 };
                let Some(&i) = entry_at.get(&r) else { continue };
                let card = cards[c][s].as_mut().expect("placed topics have cards");
                card.passages = PassageSpan { first: metas.len() as u32, count: entries[i].passages.len() as u32 };
                for (p, v) in &entries[i].passages {
                    metas.push(PassageMeta { slot: s as u16, post: p.post.clone(), url: p.url.clone(), kind: p.kind, score: p.score, text: p.text.clone() });
                    vectors.push(Some(v));
                }
            }
            passages_total += metas.len();
            let bytes = PassageChunk { passages: metas, vectors }.to_bytes();
            files.push((FileEntry::for_bytes(FileRole::Passages, key, &bytes), bytes));
            let chunk_cards = CardsChunk { cluster: c as u16, chunk: chunk as u16, cards: cards[c][slot_range.clone()].to_vec() };
            let bytes = serde_json::to_vec(&chunk_cards).expect("cards serialise");
            files.push((FileEntry::for_bytes(FileRole::Cards, key, &bytes), bytes));
            let chunk_links = LinksChunk { cluster: c as u16, chunk: chunk as u16, links: links[c][slot_range].to_vec() };
            let bytes = serde_json::to_vec(&chunk_links).expect("links serialise");
            files.push((FileEntry::for_bytes(FileRole::Links, key, &bytes), bytes));
        }

        let mut vectors = Vectors::new(dim);
        for s in 0..slots[c] {
            let r = TopicRef { cluster: c as u16, slot: s as u16 };
            vectors.push(entry_at.get(&r).map(|&i| &entries[i].vector));
        }
        let bytes = vectors.to_bytes();
        files.push((FileEntry::for_bytes(FileRole::Vectors, c as u32, &bytes), bytes));
    }

    // Directory buckets.
    let mut buckets: BTreeMap<u32, DirectoryShard> = (0..layout.directory_buckets).map(|b| (b, DirectoryShard::new())).collect();
    for (i, e) in entries.iter().enumerate() {
        let b = super::format::fnv1a(&e.card.id) % layout.directory_buckets;
        buckets.get_mut(&b).expect("bucket exists").insert(e.card.id.clone(), refs[i]);
    }
    for (b, shard) in buckets {
        let bytes = serde_json::to_vec(&shard).expect("directory serialises");
        files.push((FileEntry::for_bytes(FileRole::Directory, b, &bytes), bytes));
    }

    // Lexical postings.
    let (term_shards, stats, terms) = postings(&entries, &refs, layout.term_buckets);
    for (b, shard) in term_shards.into_iter().enumerate() {
        let bytes = shard.to_bytes();
        files.push((FileEntry::for_bytes(FileRole::Terms, b as u32, &bytes), bytes));
    }

    // The catalog: pages of shards, the root listing the pages; the manifest lists the root.
    let mut pages: BTreeMap<u32, Vec<FileEntry>> = BTreeMap::new();
    for (e, _) in &files {
        pages.entry(page_of(e.role, e.key, &layout).expect("shards belong on pages")).or_default().push(e.clone());
    }
    let mut root = Vec::new();
    for (page, mut listed) in pages {
        listed.sort_by(|a, b| (a.role, a.key).cmp(&(b.role, b.key)));
        let bytes = Catalog { page, files: listed }.to_bytes();
        let entry = FileEntry::for_bytes(FileRole::Catalog, page, &bytes);
        root.push(entry.clone());
        files.push((entry, bytes));
    }
    let bytes = Catalog { page: 0, files: root }.to_bytes();
    let mut listed = vec![FileEntry::for_bytes(FileRole::Catalog, 0, &bytes)];
    files.push((listed[0].clone(), bytes));
    let bytes = centroids.to_bytes();
    listed.push(FileEntry::for_bytes(FileRole::Centroids, 0, &bytes));
    files.push((listed[1].clone(), bytes));
    if let Some(pack) = pack {
        listed.push(FileEntry::for_bytes(FileRole::Model, 0, pack));
        files.push((listed[2].clone(), pack.to_vec()));
    }
    listed.sort_by(|a, b| (a.role, a.key).cmp(&(b.role, b.key)));
    let manifest = Manifest {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        model,
        counts: Counts { topics: n, clusters: k, passages: passages_total, terms },
        layout,
        lexical: stats,
        left_out,
        files: listed,
    };
    Ok(Built { manifest, files, reclustered })
}

/// The shard layout a fresh build picks for `entries` placed in clusters of `slots` slots.
///
/// Catalog pages are sized so that a query's catalog bytes are smallest: the
/// root lists P pages and a query reads the root and the pages of the few
/// clusters (or buckets) it touches, so with R records per cluster and C
/// clusters, clusters per page g minimises C/g + touched * R * g: g = sqrt(C / (touched R)).
fn fresh_layout(entries: &[&Entry], slots: &[usize]) -> Layout {
    let postings: usize = entries
        .iter()
        .map(|e| {
            let texts: Vec<&str> = e.passages.iter().map(|(p, _)| p.text.as_str()).collect();
            let mut doc = lexical_document(&e.card.title, &texts);
            doc.sort_unstable();
            doc.dedup();
            doc.len()
        })
        .sum();
    let term_buckets = (postings * 8).div_ceil(TERMS_SHARD_BYTES).clamp(1, 4096) as u32;
    let directory_buckets = entries.len().div_ceil(DIRECTORY_BUCKET_TOPICS).max(1) as u32;
    let clusters = slots.len().max(1) as f64;
    let mean_slots = slots.iter().sum::<usize>() as f64 / clusters;
    let records_per_cluster = 3.0 * (mean_slots / CHUNK as f64).ceil() + 1.0;
    let clusters_per_page = (clusters / (CLUSTERS_TOUCHED * records_per_cluster)).sqrt().round().max(1.0) as u32;
    let buckets_per_page = (term_buckets.max(directory_buckets) as f64 / BUCKETS_TOUCHED).sqrt().round().max(1.0) as u32;
    Layout { directory_buckets, term_buckets, chunk: CHUNK, clusters_per_page, buckets_per_page }
}

/// Terms shards by bucket, the collection statistics and the number of distinct terms.
fn postings(entries: &[&Entry], refs: &[TopicRef], buckets: u32) -> (Vec<TermsShard>, LexicalStats, usize) {
    // term -> [(entry, tf, len)], entries in id order. One document's tokens
    // live at a time: a million topics' token lists would not fit in memory.
    let mut by_term: BTreeMap<String, Vec<(u32, u32, u32)>> = BTreeMap::new();
    let mut total_len = 0u64;
    for (i, e) in entries.iter().enumerate() {
        let texts: Vec<&str> = e.passages.iter().map(|(p, _)| p.text.as_str()).collect();
        let doc = lexical_document(&e.card.title, &texts);
        let (tf, len) = lexical::term_counts(&doc);
        total_len += len as u64;
        for (t, f) in tf {
            let posting = (i as u32, f, len);
            match by_term.get_mut(t) {
                Some(list) => list.push(posting),
                None => {
                    by_term.insert(t.to_string(), vec![posting]);
                }
            }
        }
    }
    let avg_len = if entries.is_empty() { 0.0 } else { total_len as f32 / entries.len() as f32 };
    let terms = by_term.len();
    let mut shards: Vec<TermsShard> = (0..buckets.max(1)).map(|_| TermsShard { terms: Vec::new(), postings: Vec::new() }).collect();
    for (term, mut list) in by_term {
        let df = list.len() as u32;
        // Highest impact first (the order in which a pruned list keeps them), ties by id.
        list.sort_by(|a, b| lexical::impact(b.1, b.2, avg_len).total_cmp(&lexical::impact(a.1, a.2, avg_len)).then(a.0.cmp(&b.0)));
        list.truncate(lexical::MAX_POSTINGS);
        let shard = &mut shards[lexical::bucket(&term, buckets) as usize];
        shard.terms.push(TermEntry { term, df, first: shard.postings.len() as u32, count: list.len() as u32 });
        shard.postings.extend(list.into_iter().map(|(i, tf, len)| Posting { topic: refs[i as usize], tf: tf.min(u16::MAX as u32) as u16, len: len.min(u16::MAX as u32) as u16 }));
    }
    (shards, LexicalStats { docs: entries.len() as u32, avg_len }, terms)
}

/// What [`write`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Shards written (new content).
    pub written: usize,
    /// Shards already present with the same content.
    pub kept: usize,
    /// Shards deleted (listed by neither the new nor the previous manifest).
    pub removed: usize,
    /// Bytes written, manifest included.
    pub bytes_written: u64,
}

/// Whether `name` looks like a shard this module writes (`stem-key-hash.ext`), in this format or an older one.
fn is_shard_name(name: &str) -> bool {
    FileRole::stems().chain(["topics", "neighbours"]).any(|stem| name.starts_with(stem) && name[stem.len()..].starts_with('-'))
        && (name.ends_with(".json") || name.ends_with(".bin") || name.ends_with(".cpk"))
}

/// Every shard name the index in `dir` refers to now, for garbage collection:
/// the manifest's files and, when this reader understands the manifest, every
/// file its catalogs list. Best effort: an unreadable index refers to nothing.
fn referenced(dir: &Path) -> HashSet<String> {
    let mut names = HashSet::new();
    let Ok(bytes) = std::fs::read(dir.join(MANIFEST_FILE)) else { return names };
    if let Ok(m) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        names.extend(m["files"].as_array().into_iter().flatten().filter_map(|f| f["name"].as_str().map(str::to_string)));
    }
    let Ok(mut store) = Store::from_manifest(&bytes) else { return names };
    let mut tried = HashSet::new();
    loop {
        let pending: Vec<String> = store.listed().filter(|e| e.role == FileRole::Catalog && !tried.contains(&e.name)).map(|e| e.name.clone()).collect();
        if pending.is_empty() {
            break;
        }
        for n in pending {
            if let Ok(b) = std::fs::read(dir.join(&n)) {
                let _ = store.add(&n, &b); // a damaged page lists nothing more; the rest still count
            }
            tried.insert(n);
        }
    }
    names.extend(store.listed().map(|e| e.name.clone()));
    names
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".cairn-tmp-").tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(|e| Error::io(tmp.path().to_path_buf(), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644)).map_err(|e| Error::io(tmp.path().to_path_buf(), e))?;
    }
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Writes `built` into the index directory `out` (see the module docs).
/// Refuses a directory that is not empty and holds no index.
pub fn write(out: &Path, built: &Built, progress: &dyn Fn()) -> Result<WriteReport> {
    if out.exists() {
        if !out.is_dir() {
            return Err(Error::index(out.display().to_string(), "exists and is not a directory"));
        }
        let empty = std::fs::read_dir(out).map_err(|e| Error::io(out, e))?.next().is_none();
        if !empty && !out.join(MANIFEST_FILE).is_file() {
            return Err(Error::index(out.display().to_string(), "is not empty and holds no Cairn index (no manifest.json); refusing to write into it"));
        }
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let previous = referenced(out);
    let mut report = WriteReport::default();
    for (entry, bytes) in &built.files {
        let path = out.join(&entry.name);
        let same = std::fs::read(&path).is_ok_and(|have| super::format::verify(entry, &have).is_ok());
        if same {
            report.kept += 1;
        } else {
            write_atomically(&path, bytes)?;
            report.written += 1;
            report.bytes_written += bytes.len() as u64;
        }
        progress();
    }
    let manifest = serde_json::to_vec_pretty(&built.manifest).expect("manifest serialises");
    write_atomically(&out.join(MANIFEST_FILE), &manifest)?;
    report.bytes_written += manifest.len() as u64;

    let current: HashSet<&str> = built.files.iter().map(|(e, _)| e.name.as_str()).collect();
    for item in std::fs::read_dir(out).map_err(|e| Error::io(out, e))? {
        let item = item.map_err(|e| Error::io(out, e))?;
        let name = item.file_name().to_string_lossy().into_owned();
        let stale_tmp = name.starts_with(".cairn-tmp-");
        if (is_shard_name(&name) && !current.contains(name.as_str()) && !previous.contains(&name)) || stale_tmp {
            std::fs::remove_file(item.path()).map_err(|e| Error::io(item.path(), e))?;
            report.removed += usize::from(!stale_tmp);
        }
    }
    Ok(report)
}
