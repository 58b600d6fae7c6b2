//! Ranking: what a visitor is shown. Today, related topics by meaning; the
//! co-participation and history signals join here.

pub mod coparticipation;

use crate::error::Result;
use crate::index::{Index, TopicMeta};
use serde::Serialize;

/// One suggested topic, as the widget renders it and `cairn related` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    /// The topic's source id.
    pub id: String,
    /// Its title, plain text.
    pub title: String,
    /// Its link.
    pub url: String,
    /// Cosine similarity to the topic being read.
    pub score: f32,
    /// Its tags.
    pub tags: Vec<String>,
    /// Number of answers.
    pub answers: u32,
    /// Whether an answer was accepted.
    pub accepted: bool,
}

/// Related topics for one topic page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Related {
    /// The topic being read.
    pub topic: TopicMeta,
    /// The suggestions, best first.
    pub related: Vec<Suggestion>,
}

/// The `k` topics most related to topic `id`.
pub fn related(index: &Index, id: &str, k: usize) -> Result<Related> {
    let hits = index.related(id, k)?;
    let topic = index.topics[index.position(id).expect("related() found it")].clone();
    let related = hits
        .into_iter()
        .map(|h| {
            let t = &index.topics[h.index];
            Suggestion {
                id: t.id.clone(),
                title: t.title.clone(),
                url: t.url.clone(),
                score: h.score,
                tags: t.tags.clone(),
                answers: t.answers,
                accepted: t.accepted,
            }
        })
        .collect();
    Ok(Related { topic, related })
}
