//! Stack Exchange data dumps: `Posts.xml`, `Comments.xml`, `PostLinks.xml`, and
//! optionally `Users.xml` (display names) into [`Topic`]s, one per question.
//!
//! Dumps hold one `<row .../>` per line. Each line is parsed on its own, so a
//! malformed row is reported with its file and line and skipped without
//! disturbing the rows around it.

use super::html;
use super::{Answer, Author, Comment, Excluded, Import, Link, LinkKind, Skipped, Topic};
use crate::error::{Error, Result};
use quick_xml::events::Event;
use std::collections::HashMap;
use std::path::Path;

/// How topic URLs are made: `{id}` is replaced by the question id.
pub const DEFAULT_URL_TEMPLATE: &str = "/questions/{id}";

/// One parsed `<row>`: its attributes, and where it was.
struct Row {
    attrs: HashMap<String, String>,
    location: String,
}

impl Row {
    fn get(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).map(String::as_str)
    }

    fn require(&self, name: &str) -> Result<&str, Skipped> {
        self.get(name).ok_or_else(|| self.skip(format!("missing attribute {name}")))
    }

    fn int(&self, name: &str) -> Result<Option<i64>, Skipped> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| self.skip(format!("attribute {name}={v:?} is not an integer"))),
        }
    }

    fn skip(&self, reason: String) -> Skipped {
        Skipped { location: self.location.clone(), reason }
    }
}

/// Reads every `<row>` of `dir/file`. `Ok(None)` when the file is absent.
fn read_rows(dir: &Path, file: &str, skipped: &mut Vec<Skipped>) -> Result<Option<Vec<Row>>> {
    let path = dir.join(file);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let location = format!("{file} line {}", i + 1);
        let line = line.trim_start_matches('\u{feff}').trim();
        if line.is_empty() || line.starts_with("<?xml") || (line.starts_with('<') && !line.starts_with("<row")) {
            continue; // the declaration and the root element's open and close tags
        }
        match parse_row(line) {
            Ok(attrs) => rows.push(Row { attrs, location }),
            Err(reason) => skipped.push(Skipped { location, reason }),
        }
    }
    Ok(Some(rows))
}

/// Parses one `<row a="..." b="..." />` line into its attributes.
fn parse_row(line: &str) -> Result<HashMap<String, String>, String> {
    let mut reader = quick_xml::Reader::from_str(line);
    match reader.read_event() {
        Ok(Event::Empty(e)) if e.name().as_ref() == b"row" => {
            let mut attrs = HashMap::new();
            for a in e.attributes() {
                let a = a.map_err(|err| format!("malformed attribute: {err}"))?;
                let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
                let value = a.unescape_value().map_err(|err| format!("attribute {key}: {err}"))?.into_owned();
                attrs.insert(key, value);
            }
            match reader.read_event() {
                Ok(Event::Eof) => Ok(attrs),
                Ok(_) => Err("unexpected content after the row".into()),
                Err(err) => Err(format!("not well-formed XML: {err}")),
            }
        }
        Ok(_) => Err("not a self-closing <row/> element".into()),
        Err(err) => Err(format!("not well-formed XML: {err}")),
    }
}

/// Tags as dumps write them: `<a><b>` (older) or `|a|b|` (newer).
fn parse_tags(raw: &str) -> Vec<String> {
    raw.split(['<', '>', '|']).filter(|t| !t.is_empty()).map(str::to_string).collect()
}

/// Imports a dump directory. `url_template` makes each topic's URL (see [`DEFAULT_URL_TEMPLATE`]).
pub fn import(dir: &Path, url_template: &str) -> Result<Import> {
    let mut skipped = Vec::new();
    let posts = read_rows(dir, "Posts.xml", &mut skipped)?
        .ok_or_else(|| Error::Input { location: dir.join("Posts.xml").display().to_string(), message: "file not found; is this a Stack Exchange dump directory?".into() })?;
    let comments = read_rows(dir, "Comments.xml", &mut skipped)?.unwrap_or_default();
    let links = read_rows(dir, "PostLinks.xml", &mut skipped)?.unwrap_or_default();
    let users = read_rows(dir, "Users.xml", &mut skipped)?.unwrap_or_default();

    let names: HashMap<String, String> =
        users.iter().filter_map(|u| Some((u.get("Id")?.to_string(), u.get("DisplayName")?.to_string()))).collect();
    let author = |row: &Row, id_attr: &str, name_attr: &str| -> Author {
        let id = row.get(id_attr).map(str::to_string);
        let name = row
            .get(name_attr)
            .map(str::to_string)
            .or_else(|| id.as_ref().and_then(|i| names.get(i).cloned()))
            .unwrap_or_else(|| id.as_ref().map(|i| format!("user{i}")).unwrap_or_else(|| "anonymous".into()));
        Author { id, name }
    };

    // Pass 1: questions become topics; answers are kept aside with their parent.
    let mut topics: Vec<Topic> = Vec::new();
    let mut excluded: Vec<Excluded> = Vec::new();
    let mut deleted: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut topic_of_id: HashMap<String, usize> = HashMap::new();
    let mut accepted: HashMap<usize, String> = HashMap::new();
    let mut answers: Vec<(String, Answer, String)> = Vec::new(); // (parent id, answer, location)
    for row in &posts {
        if row.get("DeletionDate").is_some() {
            // Some exports (SEDE, newer dumps) keep deleted posts with a DeletionDate: never index them.
            excluded.push(Excluded { location: row.location.clone(), reason: "deleted".into() });
            deleted.extend(row.get("Id").map(str::to_string));
            continue;
        }
        let result = (|| -> Result<(), Skipped> {
            let id = row.require("Id")?.to_string();
            let kind = row.int("PostTypeId")?.ok_or_else(|| row.skip("missing attribute PostTypeId".into()))?;
            let body_html = row.get("Body").unwrap_or_default().to_string();
            let created = row.require("CreationDate")?.to_string();
            let score = row.int("Score")?.unwrap_or(0);
            match kind {
                1 => {
                    let title = row.require("Title")?.to_string();
                    let views = row.int("ViewCount")?.map(|v| v.max(0) as u64);
                    if let Some(a) = row.get("AcceptedAnswerId") {
                        accepted.insert(topics.len(), a.to_string());
                    }
                    topic_of_id.insert(id.clone(), topics.len());
                    topics.push(Topic {
                        url: url_template.replace("{id}", &id),
                        id,
                        title,
                        tags: row.get("Tags").map(parse_tags).unwrap_or_default(),
                        author: author(row, "OwnerUserId", "OwnerDisplayName"),
                        last_activity: row.get("LastActivityDate").unwrap_or(&created).to_string(),
                        created,
                        score,
                        views,
                        body_text: html::to_text(&body_html),
                        body_html,
                        answers: Vec::new(),
                        comments: Vec::new(),
                        participants: Vec::new(),
                        links: Vec::new(),
                    });
                }
                2 => {
                    let parent = row.require("ParentId")?.to_string();
                    answers.push((
                        parent,
                        Answer {
                            url: String::new(), // the question's URL is known once the answer joins it
                            id,
                            author: author(row, "OwnerUserId", "OwnerDisplayName"),
                            created,
                            score,
                            accepted: false,
                            body_text: html::to_text(&body_html),
                            body_html,
                            comments: Vec::new(),
                        },
                        row.location.clone(),
                    ));
                }
                _ => {} // tag wikis, excerpts and other post types are not threads
            }
            Ok(())
        })();
        if let Err(s) = result {
            skipped.push(s);
        }
    }

    // Pass 2: answers join their question.
    let mut answer_owner: HashMap<String, (usize, usize)> = HashMap::new(); // answer id -> (topic, answer index)
    for (parent, mut answer, location) in answers {
        if deleted.contains(&parent) {
            excluded.push(Excluded { location, reason: "answer to a deleted question".into() });
            deleted.insert(answer.id);
            continue;
        }
        let Some(&t) = topic_of_id.get(&parent) else {
            skipped.push(Skipped { location, reason: format!("answer {} belongs to question {parent}, which is not in the dump", answer.id) });
            continue;
        };
        answer.accepted = accepted.get(&t) == Some(&answer.id);
        answer.url = format!("{}#answer-{}", topics[t].url, answer.id);
        answer_owner.insert(answer.id.clone(), (t, topics[t].answers.len()));
        topics[t].answers.push(answer);
    }

    // Pass 3: comments join the question or answer they are on.
    for row in &comments {
        if row.get("PostId").is_some_and(|p| deleted.contains(p)) {
            excluded.push(Excluded { location: row.location.clone(), reason: "comment on a deleted post".into() });
            continue;
        }
        let result = (|| -> Result<(), Skipped> {
            let post = row.require("PostId")?;
            let comment = Comment {
                id: row.require("Id")?.to_string(),
                author: author(row, "UserId", "UserDisplayName"),
                created: row.require("CreationDate")?.to_string(),
                score: row.int("Score")?.unwrap_or(0),
                text: row.get("Text").unwrap_or_default().to_string(),
            };
            if let Some(&t) = topic_of_id.get(post) {
                topics[t].comments.push(comment);
            } else if let Some(&(t, a)) = answer_owner.get(post) {
                topics[t].answers[a].comments.push(comment);
            } else {
                return Err(row.skip(format!("comment on post {post}, which is neither a question nor an answer in the dump")));
            }
            Ok(())
        })();
        if let Err(s) = result {
            skipped.push(s);
        }
    }

    // Pass 4: links between questions.
    for row in &links {
        let result = (|| -> Result<(), Skipped> {
            let from = row.require("PostId")?;
            let to = row.require("RelatedPostId")?;
            let kind = match row.int("LinkTypeId")? {
                Some(1) => LinkKind::Related,
                Some(3) => LinkKind::Duplicate,
                other => return Err(row.skip(format!("unknown LinkTypeId {other:?}"))),
            };
            let Some(&t) = topic_of_id.get(from) else {
                return Err(row.skip(format!("link from post {from}, which is not a question in the dump")));
            };
            if !topic_of_id.contains_key(to) {
                return Err(row.skip(format!("link to post {to}, which is not a question in the dump")));
            }
            topics[t].links.push(Link { target: to.to_string(), kind });
            Ok(())
        })();
        if let Err(s) = result {
            skipped.push(s);
        }
    }

    for topic in &mut topics {
        super::finish(topic);
    }
    Ok(Import { topics, skipped, excluded })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_in_both_dump_formats() {
        assert_eq!(parse_tags("<quantum-gate><qiskit>"), vec!["quantum-gate", "qiskit"]);
        assert_eq!(parse_tags("|quantum-gate|qiskit|"), vec!["quantum-gate", "qiskit"]);
    }

    #[test]
    fn row_parsing_reports_what_is_wrong() {
        assert!(parse_row(r#"<row Id="1" Title="a &amp; b" />"#).unwrap()["Title"] == "a & b");
        assert!(parse_row(r#"<row Id="1" Title="unclosed />"#).is_err());
        assert!(parse_row(r#"<other Id="1" />"#).is_err());
    }
}
