//! From imported topics to index entries: passages, key phrases, and the
//! texts to embed, reusing what an earlier index already computed for topics
//! that did not change (native only).
//!
//! Two steps so the caller can show progress over the one slow part:
//! [`plan`] lists every text that needs the encoder; the caller embeds them
//! (`Encoder::embed_many`) and hands the vectors to [`Plan::finish`].

use super::build::{Entry, Previous};
use super::format::{PassageSpan, QVec, TopicCard};
use super::keywords;
use super::passages::{self, PassageText};
use crate::error::{Error, Result};
use crate::ingest::Topic;
use sha2::{Digest, Sha256};

/// Version of how topics become passages, key phrases and embedding texts:
/// bump it when that code changes, so updates recompute what it derives.
pub const DERIVATION_VERSION: &str = "1";

/// Everything the index derives from a topic by the encoder, as one hash: if
/// it is unchanged, the topic's vectors and key phrases are reused. Card fields
/// that need no encoder (votes, answer counts) are not part of it.
pub fn content_hash(weights_id: &str, topic: &Topic, passages: &[PassageText]) -> String {
    let mut h = Sha256::new();
    for part in [DERIVATION_VERSION, "\u{0}", weights_id, "\u{0}", &topic.embedding_text(), "\u{0}", &topic.title, "\u{0}", &topic.body_text] {
        h.update(part.as_bytes());
    }
    for p in passages {
        h.update(b"\x01");
        h.update(p.text.as_bytes());
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// One topic being prepared.
struct Pending {
    card: TopicCard,
    hash: String,
    passages: Vec<PassageText>,
    participants: Vec<String>,
    /// Reused vectors, or positions of its texts in [`Plan::texts`].
    source: Source,
}

enum Source {
    Reused { vector: QVec, passages: Vec<QVec> },
    /// `topic` is the topic text's position; passages and keyword candidates follow it.
    Embed { topic: usize, candidates: Vec<String> },
}

/// The texts to embed for a set of topics, and how to assemble the entries.
pub struct Plan {
    /// Every text the encoder must embed, in order.
    pub texts: Vec<String>,
    /// Topics whose vectors were reused from the previous index.
    pub reused: usize,
    pending: Vec<Pending>,
}

/// The card of `topic`, before the builder adds its nearest topics and passages.
pub fn card(topic: &Topic, keywords: Vec<String>) -> TopicCard {
    TopicCard {
        id: topic.id.clone(),
        title: topic.title.clone(),
        url: topic.url.clone(),
        tags: topic.tags.clone(),
        created: topic.created.clone(),
        activity: topic.last_activity.clone(),
        score: topic.score,
        answers: topic.answers.len() as u32,
        accepted: topic.answers.iter().any(|a| a.accepted),
        comments: topic.comment_count() as u32,
        views: topic.views,
        keywords,
        near: Vec::new(),
        passages: PassageSpan::default(),
    }
}

/// Lists what must be embedded for `topics`; `previous` offers vectors to reuse.
pub fn plan(topics: &[Topic], weights_id: &str, previous: Option<&Previous>) -> Plan {
    let mut texts = Vec::new();
    let mut reused = 0;
    let pending = topics
        .iter()
        .map(|t| {
            let passages = passages::split(t);
            let hash = content_hash(weights_id, t, &passages);
            let participants = t.participants.iter().map(|p| p.user.clone()).collect();
            let old = previous.and_then(|p| p.reusable.get(&t.id)).filter(|r| r.hash == hash && r.passages.len() == passages.len());
            match old {
                Some(r) => {
                    reused += 1;
                    let card = card(t, r.keywords.clone());
                    Pending { card, hash, passages, participants, source: Source::Reused { vector: r.vector.clone(), passages: r.passages.clone() } }
                }
                None => {
                    let topic = texts.len();
                    texts.push(t.embedding_text());
                    texts.extend(passages.iter().map(|p| p.text.clone()));
                    let candidates = keywords::candidates(&t.title, &t.body_text);
                    texts.extend(candidates.iter().cloned());
                    Pending { card: card(t, Vec::new()), hash, passages, participants, source: Source::Embed { topic, candidates } }
                }
            }
        })
        .collect();
    Plan { texts, reused, pending }
}

impl Plan {
    /// Assembles the entries from the embeddings of [`Plan::texts`] (unit vectors, in order).
    pub fn finish(self, vectors: Vec<Vec<f32>>) -> Result<Vec<Entry>> {
        if vectors.len() != self.texts.len() {
            return Err(Error::Input { location: "embeddings".into(), message: format!("{} vectors for {} texts", vectors.len(), self.texts.len()) });
        }
        Ok(self
            .pending
            .into_iter()
            .map(|p| {
                let Pending { mut card, hash, passages, participants, source } = p;
                let (vector, passage_vectors) = match source {
                    Source::Reused { vector, passages } => (vector, passages),
                    Source::Embed { topic, candidates } => {
                        let first_candidate = topic + 1 + passages.len();
                        let cand_vectors = &vectors[first_candidate..first_candidate + candidates.len()];
                        card.keywords = keywords::choose(&candidates, cand_vectors, &vectors[topic]);
                        let pv = (0..passages.len()).map(|i| QVec::quantise(&vectors[topic + 1 + i])).collect();
                        (QVec::quantise(&vectors[topic]), pv)
                    }
                };
                Entry { card, hash, vector, passages: passages.into_iter().zip(passage_vectors).collect(), participants }
            })
            .collect())
    }
}
