//! Ranking: what a visitor is shown, and why.
//!
//! * [`related`]: related topics for a topic page (meaning, co-participation,
//!   tags, diversified).
//! * [`feed`]: the "for you" feed from the visitor's own history.
//! * [`coparticipation`]: item-to-item collaborative filtering over who took part where.
//! * [`fusion`]: reciprocal rank fusion, for hybrid retrieval.
//!
//! Every suggestion carries a short reason that is true of the data.

pub mod coparticipation;
pub mod feed;
pub mod fusion;
pub mod related;

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
    /// Blended relevance (higher is better; comparable within one list only).
    pub score: f32,
    /// Its tags.
    pub tags: Vec<String>,
    /// Number of answers.
    pub answers: u32,
    /// Whether an answer was accepted.
    pub accepted: bool,
    /// Why it is suggested, in a few words.
    pub reason: String,
}

/// Jaccard similarity of two tag lists.
pub fn jaccard(a: &[String], b: &[String]) -> f32 {
    let inter = a.iter().filter(|t| b.contains(t)).count();
    let union = a.len() + b.len() - inter;
    if union == 0 { 0.0 } else { inter as f32 / union as f32 }
}
