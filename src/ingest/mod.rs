//! Importers: forum data in, one [`Topic`] type out.
//!
//! A topic is one thread: the question (or opening post), its answers and
//! comments, who took part and when, and the links the source records between
//! threads. Everything downstream (embedding, the index, the demo forum) reads
//! topics and nothing else, so a new importer only has to produce them.

#[cfg(not(target_arch = "wasm32"))]
pub mod discourse;
pub mod html;
#[cfg(not(target_arch = "wasm32"))]
pub mod jsonl;
#[cfg(not(target_arch = "wasm32"))]
pub mod stackexchange;

use serde::{Deserialize, Serialize};

/// How someone took part in a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Opened the thread.
    Asked,
    /// Wrote an answer or reply.
    Answered,
    /// Commented on the question or an answer.
    Commented,
}

/// One act of participation: who, how, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participation {
    /// The source's user id.
    pub user: String,
    /// What they did.
    pub role: Role,
    /// When, ISO 8601 as the source gives it (UTC).
    pub at: String,
}

/// A person as shown on a post.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// The source's user id, when the account still exists.
    pub id: Option<String>,
    /// Display name.
    pub name: String,
}

/// A comment on the question or on an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    /// The source's comment id.
    pub id: String,
    /// Who wrote it.
    pub author: Author,
    /// ISO 8601 creation time.
    pub created: String,
    /// Votes.
    pub score: i64,
    /// Plain text (comments are not HTML in Stack Exchange dumps).
    pub text: String,
}

/// An answer (or reply) in a thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The source's post id.
    pub id: String,
    /// Link to this answer (the thread's URL with the post's anchor, or the post's own URL).
    pub url: String,
    /// Who wrote it.
    pub author: Author,
    /// ISO 8601 creation time.
    pub created: String,
    /// Votes.
    pub score: i64,
    /// Whether the asker accepted it.
    pub accepted: bool,
    /// The body as the source gives it (HTML, unsanitised: sanitise before display).
    pub body_html: String,
    /// The body as plain text.
    pub body_text: String,
    /// Comments on this answer, oldest first.
    pub comments: Vec<Comment>,
}

/// What kind of link the source records between two threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// "Related" / "linked" question.
    Related,
    /// Closed as a duplicate of the target.
    Duplicate,
}

/// A link from this topic to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The other topic's id.
    pub target: String,
    /// Related or duplicate.
    pub kind: LinkKind,
}

/// One thread, as every importer produces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Topic {
    /// The source's own id (for Stack Exchange, the question's post id).
    pub id: String,
    /// Title, plain text.
    pub title: String,
    /// Where the thread lives, absolute or relative to the site root.
    pub url: String,
    /// Tags, in the source's order.
    pub tags: Vec<String>,
    /// Who opened it.
    pub author: Author,
    /// ISO 8601 creation time.
    pub created: String,
    /// ISO 8601 time of the last activity.
    pub last_activity: String,
    /// Votes on the question.
    pub score: i64,
    /// Views, where the source counts them.
    pub views: Option<u64>,
    /// The question as the source gives it (HTML, unsanitised).
    pub body_html: String,
    /// The question as plain text.
    pub body_text: String,
    /// Answers, accepted first, then by score.
    pub answers: Vec<Answer>,
    /// Comments on the question, oldest first.
    pub comments: Vec<Comment>,
    /// Everyone who took part, in time order.
    pub participants: Vec<Participation>,
    /// Links to other topics recorded by the source.
    pub links: Vec<Link>,
}

impl Topic {
    /// The best answer: the accepted one, else the highest scored.
    pub fn best_answer(&self) -> Option<&Answer> {
        self.answers.iter().find(|a| a.accepted).or_else(|| self.answers.iter().max_by_key(|a| a.score))
    }

    /// Comments on the question and on all answers.
    pub fn comment_count(&self) -> usize {
        self.comments.len() + self.answers.iter().map(|a| a.comments.len()).sum::<usize>()
    }

    /// The text the encoder sees for this topic: title, then question.
    /// The encoder truncates it (256 tokens for MiniLM), so the title always counts.
    pub fn embedding_text(&self) -> String {
        format!("{}\n\n{}", self.title, self.body_text)
    }
}

/// A record an importer could not use, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// File and position, e.g. "Posts.xml line 17".
    pub location: String,
    /// What was wrong.
    pub reason: String,
}

/// A record left out on purpose: what an anonymous visitor may not see
/// (private, restricted, deleted) never enters a public index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    /// File and position, e.g. "forum.jsonl line 3" or "t/12.json post 4".
    pub location: String,
    /// Why, e.g. "not public", "restricted category", "private message", "deleted".
    pub reason: String,
}

/// The outcome of an import: topics plus an honest account of what was left out.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Import {
    /// The topics, in the source's id order.
    pub topics: Vec<Topic>,
    /// Records that were malformed or could not be attached to a topic.
    pub skipped: Vec<Skipped>,
    /// Records left out because they are not public.
    pub excluded: Vec<Excluded>,
}

impl Import {
    /// What was left out, as an index manifest records it: counts by reason.
    pub fn left_out(&self) -> crate::index::format::LeftOut {
        let mut excluded = std::collections::BTreeMap::new();
        for e in &self.excluded {
            *excluded.entry(e.reason.clone()).or_insert(0u64) += 1;
        }
        crate::index::format::LeftOut { excluded, malformed: self.skipped.len() as u64 }
    }
}

/// Orders answers (accepted first, then by score) and comments (by time), and
/// lists every participation in time order. Every importer ends with this.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn finish(topic: &mut Topic) {
    topic.answers.sort_by(|a, b| b.accepted.cmp(&a.accepted).then(b.score.cmp(&a.score)).then(a.created.cmp(&b.created)));
    topic.comments.sort_by(|a, b| a.created.cmp(&b.created));
    let mut people = Vec::new();
    let mut add = |who: &Author, role: Role, at: &str| {
        if let Some(user) = &who.id {
            people.push(Participation { user: user.clone(), role, at: at.to_string() });
        }
    };
    add(&topic.author, Role::Asked, &topic.created);
    for c in &topic.comments {
        add(&c.author, Role::Commented, &c.created);
    }
    for a in &mut topic.answers {
        a.comments.sort_by(|x, y| x.created.cmp(&y.created));
        add(&a.author, Role::Answered, &a.created);
        for c in &a.comments {
            add(&c.author, Role::Commented, &c.created);
        }
    }
    people.sort_by(|a, b| a.at.cmp(&b.at));
    topic.participants = people;
}
