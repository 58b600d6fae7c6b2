//! A documented JSON Lines format that any forum can export to (phpBB, Flarum,
//! NodeBB, a docs site...): one thread per line.
//!
//! ```json
//! {"id": "123", "title": "How do I ...?", "url": "https://forum.example.com/t/123",
//!  "public": true, "created": "2024-05-01T10:00:00Z", "last_activity": "2024-05-02T08:00:00Z",
//!  "tags": ["install", "linux"], "score": 4, "views": 210,
//!  "author": {"id": "u1", "name": "Ann"},
//!  "body_html": "<p>...</p>",
//!  "answers": [{"id": "p9", "url": "https://forum.example.com/t/123/2", "author": {"id": "u2", "name": "Bo"},
//!               "created": "2024-05-01T11:00:00Z", "score": 6, "accepted": true, "body_html": "<p>...</p>",
//!               "comments": []}],
//!  "comments": [{"id": "c1", "author": {"id": "u3", "name": "Cy"}, "created": "...", "score": 0, "text": "..."}],
//!  "links": [{"target": "456", "kind": "duplicate"}]}
//! ```
//!
//! Required: `id`, `title`, `created` and `public`. Only rows with
//! `"public": true` are indexed: a static index is public, so the exporter must
//! say, row by row, that an anonymous visitor may read the thread; rows with
//! `false` (or `"deleted": true`) are left out and counted. Bodies are given as
//! `body_html` (sanitised before display, never trusted) or `body` (plain
//! text). `url` defaults to `--url-template` with `{id}`; an answer's `url` to
//! the thread's with `#post-{id}`. Times are ISO 8601 (UTC). A line that is not
//! such an object is reported with its line number and skipped.

use super::{html, Answer, Author, Comment, Excluded, Import, Link, Skipped, Topic};
use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    id: IdValue,
    title: String,
    public: bool,
    created: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    last_activity: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    score: i64,
    #[serde(default)]
    views: Option<u64>,
    #[serde(default)]
    author: Option<RowAuthor>,
    #[serde(default)]
    body_html: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    answers: Vec<RowAnswer>,
    #[serde(default)]
    comments: Vec<RowComment>,
    #[serde(default)]
    links: Vec<Link>,
    #[serde(default)]
    deleted: bool,
}

/// Ids may be strings or numbers in exports; both become strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum IdValue {
    Text(String),
    Number(i64),
}

impl IdValue {
    fn text(self) -> String {
        match self {
            IdValue::Text(s) => s,
            IdValue::Number(n) => n.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RowAuthor {
    #[serde(default)]
    id: Option<IdValue>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RowAnswer {
    id: IdValue,
    created: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    author: Option<RowAuthor>,
    #[serde(default)]
    score: i64,
    #[serde(default)]
    accepted: bool,
    #[serde(default)]
    body_html: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    comments: Vec<RowComment>,
    #[serde(default)]
    deleted: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RowComment {
    id: IdValue,
    created: String,
    #[serde(default)]
    author: Option<RowAuthor>,
    #[serde(default)]
    score: i64,
    text: String,
    #[serde(default)]
    deleted: bool,
}

fn author(a: Option<RowAuthor>) -> Author {
    match a {
        None => Author { id: None, name: "anonymous".into() },
        Some(a) => {
            let id = a.id.map(IdValue::text);
            let name = a.name.or_else(|| id.as_ref().map(|i| format!("user{i}"))).unwrap_or_else(|| "anonymous".into());
            Author { id, name }
        }
    }
}

/// (html, text) of a body given as HTML or as plain text.
fn body(html_body: Option<String>, text: Option<String>) -> (String, String) {
    match (html_body, text) {
        (Some(h), _) => {
            let t = html::to_text(&h);
            (h, t)
        }
        (None, Some(t)) => (html_escape::encode_text(&t).replace('\n', "<br>"), t),
        (None, None) => (String::new(), String::new()),
    }
}

fn comment(c: RowComment) -> Comment {
    Comment { id: c.id.text(), author: author(c.author), created: c.created, score: c.score, text: c.text }
}

/// Imports a JSONL export. `url_template` makes URLs for rows without one (`{id}` = the row's id).
pub fn import(path: &Path, url_template: &str) -> Result<Import> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let file = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut out = Import::default();
    let mut seen = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let location = format!("{file} line {}", i + 1);
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = match serde_json::from_str(line) {
            Ok(r) => r,
            Err(e) => {
                out.skipped.push(Skipped { location, reason: format!("not a thread object: {e}") });
                continue;
            }
        };
        let id = row.id.text();
        if !row.public {
            out.excluded.push(Excluded { location, reason: "not public".into() });
            continue;
        }
        if row.deleted {
            out.excluded.push(Excluded { location, reason: "deleted".into() });
            continue;
        }
        if !seen.insert(id.clone()) {
            out.skipped.push(Skipped { location, reason: format!("thread id {id} appears twice; the first is kept") });
            continue;
        }
        let url = row.url.unwrap_or_else(|| url_template.replace("{id}", &id));
        let (body_html, body_text) = body(row.body_html, row.body);
        let mut answers = Vec::new();
        for a in row.answers {
            if a.deleted {
                out.excluded.push(Excluded { location: format!("{location} answer"), reason: "deleted".into() });
                continue;
            }
            let aid = a.id.text();
            let (body_html, body_text) = body(a.body_html, a.body);
            answers.push(Answer {
                url: a.url.unwrap_or_else(|| format!("{url}#post-{aid}")),
                id: aid,
                author: author(a.author),
                created: a.created,
                score: a.score,
                accepted: a.accepted,
                body_html,
                body_text,
                comments: a.comments.into_iter().filter(|c| !c.deleted).map(comment).collect(),
            });
        }
        let mut topic = Topic {
            last_activity: row.last_activity.unwrap_or_else(|| row.created.clone()),
            id,
            title: row.title,
            url,
            tags: row.tags,
            author: author(row.author),
            created: row.created,
            score: row.score,
            views: row.views,
            body_html,
            body_text,
            answers,
            comments: row.comments.into_iter().filter(|c| !c.deleted).map(comment).collect(),
            participants: Vec::new(),
            links: row.links,
        };
        super::finish(&mut topic);
        out.topics.push(topic);
    }
    Ok(out)
}
