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
    /// Why it is suggested, in a few English words: [`Reason::english`] of
    /// `why`, parts joined by " · ".
    pub reason: String,
    /// The same reasons as data, for a page to word in its own language.
    pub why: Vec<Reason>,
}

impl Suggestion {
    /// [`Suggestion::reason`] for `why`.
    pub fn english(why: &[Reason]) -> String {
        why.iter().map(Reason::english).collect::<Vec<_>>().join(" · ")
    }
}

/// One true reason for a suggestion. Serialised as `{"kind": "...", ...}`;
/// the widget words each kind in the page's language.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// Close in meaning to the topic beside it.
    Similar,
    /// `count` people took part in both topics.
    People {
        /// How many.
        count: u32,
    },
    /// Both topics carry `tag`.
    AlsoTagged {
        /// The shared tag.
        tag: String,
    },
    /// Close in meaning to a topic the visitor read, titled `title`.
    BecauseYouRead {
        /// That topic's title.
        title: String,
    },
    /// People who took part in a topic the visitor read (`title`) took part here.
    PeopleFrom {
        /// That topic's title.
        title: String,
    },
    /// Carries `tag`, like `count` topics the visitor read.
    TaggedLike {
        /// The tag.
        tag: String,
        /// Topics read with that tag.
        count: u32,
    },
    /// Loosely related to a topic the visitor read (`title`).
    RelatedTo {
        /// That topic's title.
        title: String,
    },
    /// Shares tags with what the visitor read.
    SharesTags,
    /// Popular on this forum.
    Popular,
    /// Not answered yet: the visitor could help.
    Unanswered,
}

impl Reason {
    /// The reason in English, as `cairn related` and `cairn feed` print it.
    pub fn english(&self) -> String {
        match self {
            Reason::Similar => "Similar question".into(),
            Reason::People { count: 1 } => "1 person took part in both".into(),
            Reason::People { count } => format!("{count} people took part in both"),
            Reason::AlsoTagged { tag } => format!("Also tagged {tag}"),
            Reason::BecauseYouRead { title } => format!("Because you read “{title}”"),
            Reason::PeopleFrom { title } => format!("People who took part in “{title}” also took part here"),
            Reason::TaggedLike { tag, count } => format!("Tagged {tag} like {count} topics you read"),
            Reason::RelatedTo { title } => format!("Related to “{title}”"),
            Reason::SharesTags => "Shares tags with what you read".into(),
            Reason::Popular => "Popular on this forum".into(),
            Reason::Unanswered => "No answer yet: you could help".into(),
        }
    }
}

/// Jaccard similarity of two tag lists.
pub fn jaccard(a: &[String], b: &[String]) -> f32 {
    let inter = a.iter().filter(|t| b.contains(t)).count();
    let union = a.len() + b.len() - inter;
    if union == 0 { 0.0 } else { inter as f32 / union as f32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_word_themselves_and_serialise_by_kind() {
        let why = vec![Reason::Similar, Reason::People { count: 1 }, Reason::People { count: 3 }, Reason::AlsoTagged { tag: "qubit".into() }];
        assert_eq!(Suggestion::english(&why), "Similar question · 1 person took part in both · 3 people took part in both · Also tagged qubit");
        assert_eq!(Reason::TaggedLike { tag: "qubit".into(), count: 2 }.english(), "Tagged qubit like 2 topics you read");
        let json = serde_json::to_string(&[Reason::BecauseYouRead { title: "T".into() }, Reason::Unanswered]).unwrap();
        assert_eq!(json, r#"[{"kind":"because_you_read","title":"T"},{"kind":"unanswered"}]"#);
    }
}
