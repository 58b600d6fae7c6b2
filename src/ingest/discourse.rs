//! Discourse forums, through their public JSON (what an anonymous visitor's
//! browser receives): crawled politely into a directory, or read from one.
//!
//! The directory mirrors the API:
//!
//! ```text
//! DIR/categories.json        GET /categories.json
//! DIR/latest/page-N.json     GET /latest.json?page=N
//! DIR/t/ID.json              GET /t/ID.json, its post stream completed from /t/ID/posts.json
//! DIR/cairn-crawl.json       {"base": "https://forum.example.com"}: where it came from (crawls only)
//! ```
//!
//! [`crawl`] fills it: one request at a time at most every `delay`, retries
//! with exponential backoff on 429 and 5xx (honouring `Retry-After`), no
//! credentials ever, and resumable: a topic whose saved copy is as recent as
//! the listing says is not fetched again, so an interrupted crawl continues
//! where it stopped and a later one fetches only what changed. `--since`
//! stops paging once topics are older than a date. Topics the listing marks as
//! in a restricted category, private or unlisted are not fetched at all.
//!
//! [`import_dir`] turns the directory into topics: the first post is the
//! question, the other regular posts are the replies (the "solved" plugin's
//! accepted answer marked); private messages, restricted categories, unlisted
//! or deleted topics, whispers and hidden or deleted posts are left out and
//! counted.

use super::{html, Answer, Author, Excluded, Import, Link, LinkKind, Skipped, Topic};
use crate::error::{Error, Result};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Topic URLs of a saved directory without a crawl record: `{slug}` and `{id}` are replaced.
pub const DEFAULT_URL_TEMPLATE: &str = "/t/{slug}/{id}";

#[derive(Deserialize)]
struct Crawled {
    base: String,
}

/// An id that Discourse writes as a number (or, rarely, a string).
fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// Tags are strings in older versions and `{name}` objects in newer ones.
fn tags_of(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string).or_else(|| t["name"].as_str().map(str::to_string)))
        .collect()
}

fn read_json(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Json { what: path.display().to_string(), source })
}

/// Ids of the categories an anonymous visitor cannot read, from `categories.json`.
fn restricted_categories(dir: &Path) -> Result<HashSet<String>> {
    let path = dir.join("categories.json");
    if !path.exists() {
        return Ok(HashSet::new());
    }
    let v = read_json(&path)?;
    let mut out = HashSet::new();
    let mut stack: Vec<&Value> = v["category_list"]["categories"].as_array().into_iter().flatten().collect();
    while let Some(c) = stack.pop() {
        if c["read_restricted"].as_bool() == Some(true) {
            if let Some(id) = id_of(&c["id"]) {
                out.insert(id);
            }
        }
        stack.extend(c["subcategory_list"].as_array().into_iter().flatten());
    }
    Ok(out)
}

/// Why a topic (from a listing or its own JSON) must stay out of a public index, if it must.
fn exclusion(t: &Value, restricted: &HashSet<String>) -> Option<&'static str> {
    if t["archetype"].as_str().is_some_and(|a| a == "private_message") {
        return Some("private message");
    }
    if id_of(&t["category_id"]).is_some_and(|c| restricted.contains(&c)) {
        return Some("restricted category");
    }
    if t["visible"].as_bool() == Some(false) {
        return Some("unlisted");
    }
    if !t["deleted_at"].is_null() && t.get("deleted_at").is_some() {
        return Some("deleted");
    }
    None
}

/// Imports a saved directory (see the module docs). `url_template` is used when the
/// directory has no crawl record; with one, URLs are absolute on the crawled site.
pub fn import_dir(dir: &Path, url_template: &str) -> Result<Import> {
    let topics_dir = dir.join("t");
    if !topics_dir.is_dir() {
        return Err(Error::Input { location: dir.display().to_string(), message: "has no t/ directory of topic JSON files; is this a saved Discourse crawl?".into() });
    }
    let restricted = restricted_categories(dir)?;
    let base = std::fs::read(dir.join("cairn-crawl.json")).ok().and_then(|b| serde_json::from_slice::<Crawled>(&b).ok()).map(|c| c.base);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&topics_dir)
        .map_err(|e| Error::io(&topics_dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut out = Import::default();
    let mut raw_links: Vec<(usize, Vec<String>)> = Vec::new();
    for path in files {
        let location = format!("t/{}", path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        let v = match read_json(&path) {
            Ok(v) => v,
            Err(e) => {
                out.skipped.push(Skipped { location, reason: e.to_string() });
                continue;
            }
        };
        if let Some(reason) = exclusion(&v, &restricted) {
            out.excluded.push(Excluded { location, reason: reason.into() });
            continue;
        }
        match topic(&v, base.as_deref(), url_template, &location, &mut out.excluded) {
            Ok((t, links)) => {
                raw_links.push((out.topics.len(), links));
                out.topics.push(t);
            }
            Err(reason) => out.skipped.push(Skipped { location, reason }),
        }
    }
    // Links to other imported topics, from the URLs a post cites.
    let known: HashSet<String> = out.topics.iter().map(|t| t.id.clone()).collect();
    for (i, targets) in raw_links {
        let mut seen = HashSet::new();
        for target in targets {
            if target != out.topics[i].id && known.contains(&target) && seen.insert(target.clone()) {
                out.topics[i].links.push(Link { target, kind: LinkKind::Related });
            }
        }
    }
    out.topics.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The id of a topic a URL points at (`.../t/slug/123` or `.../t/123`), if any.
fn linked_topic(url: &str) -> Option<String> {
    let after = url.split("/t/").nth(1)?;
    let mut parts = after.split(['/', '?', '#']);
    let first = parts.next()?;
    if first.chars().all(|c| c.is_ascii_digit()) && !first.is_empty() {
        return Some(first.to_string());
    }
    let second = parts.next()?;
    (second.chars().all(|c| c.is_ascii_digit()) && !second.is_empty()).then(|| second.to_string())
}

/// One topic from its JSON; the excluded posts are recorded. Errors are the reason to skip it.
fn topic(v: &Value, base: Option<&str>, url_template: &str, location: &str, excluded: &mut Vec<Excluded>) -> Result<(Topic, Vec<String>), String> {
    let id = id_of(&v["id"]).ok_or("no topic id")?;
    let title = v["title"].as_str().or_else(|| v["fancy_title"].as_str()).ok_or("no title")?.to_string();
    let slug = v["slug"].as_str().unwrap_or("topic");
    let url = match base {
        Some(b) => format!("{}/t/{slug}/{id}", b.trim_end_matches('/')),
        None => url_template.replace("{slug}", slug).replace("{id}", &id),
    };
    let created = v["created_at"].as_str().ok_or("no created_at")?.to_string();
    let posts = v["post_stream"]["posts"].as_array().ok_or("no post_stream.posts")?;
    let accepted_number = v["accepted_answer"]["post_number"].as_u64();
    let mut question: Option<&Value> = None;
    let mut answers = Vec::new();
    let mut links = Vec::new();
    for p in posts {
        let number = p["post_number"].as_u64().unwrap_or(0);
        let where_ = format!("{location} post {number}");
        if p["post_type"].as_u64().is_some_and(|t| t != 1) {
            if p["post_type"].as_u64() == Some(4) {
                excluded.push(Excluded { location: where_, reason: "whisper".into() });
            }
            continue; // moderator actions and small actions are not content
        }
        if p["hidden"].as_bool() == Some(true) || !p["deleted_at"].is_null() && p.get("deleted_at").is_some() || p["user_deleted"].as_bool() == Some(true) {
            excluded.push(Excluded { location: where_, reason: "hidden or deleted post".into() });
            continue;
        }
        for l in p["link_counts"].as_array().into_iter().flatten() {
            if l["internal"].as_bool() == Some(true) {
                if let Some(t) = l["url"].as_str().and_then(linked_topic) {
                    links.push(t);
                }
            }
        }
        if number == 1 {
            question = Some(p);
            continue;
        }
        let cooked = p["cooked"].as_str().unwrap_or_default().to_string();
        let pid = id_of(&p["id"]).unwrap_or_else(|| format!("{id}-{number}"));
        answers.push(Answer {
            url: format!("{url}/{number}"),
            id: pid,
            author: author(p),
            created: p["created_at"].as_str().unwrap_or(&created).to_string(),
            score: likes(p),
            accepted: p["accepted_answer"].as_bool() == Some(true) || accepted_number == Some(number),
            body_text: html::to_text(&cooked),
            body_html: cooked,
            comments: Vec::new(),
        });
    }
    let q = question.ok_or("the first post is missing")?;
    let body_html = q["cooked"].as_str().unwrap_or_default().to_string();
    let mut t = Topic {
        id,
        title: html_escape::decode_html_entities(&title).into_owned(),
        url,
        tags: tags_of(&v["tags"]),
        author: author(q),
        last_activity: v["last_posted_at"].as_str().or_else(|| v["bumped_at"].as_str()).unwrap_or(&created).to_string(),
        created,
        score: likes(q),
        views: v["views"].as_u64(),
        body_text: html::to_text(&body_html),
        body_html,
        answers,
        comments: Vec::new(),
        participants: Vec::new(),
        links: Vec::new(),
    };
    super::finish(&mut t);
    Ok((t, links))
}

fn author(p: &Value) -> Author {
    let id = id_of(&p["user_id"]).or_else(|| p["username"].as_str().map(str::to_string));
    let name = p["name"].as_str().filter(|n| !n.is_empty()).or_else(|| p["username"].as_str()).unwrap_or("anonymous").to_string();
    Author { id, name }
}

/// Likes on a post: `like_count`, or the like action (id 2) in `actions_summary`.
fn likes(p: &Value) -> i64 {
    p["like_count"].as_i64().unwrap_or_else(|| {
        p["actions_summary"].as_array().into_iter().flatten().find(|a| a["id"].as_u64() == Some(2)).and_then(|a| a["count"].as_i64()).unwrap_or(0)
    })
}

/// How to crawl.
#[derive(Debug, Clone)]
pub struct CrawlOptions {
    /// The forum, e.g. `https://forum.example.com`.
    pub base: String,
    /// Where to save (and resume from).
    pub dir: PathBuf,
    /// At least this long between two requests.
    pub delay: Duration,
    /// Retries of a request that got 429, 5xx or no answer.
    pub retries: u32,
    /// Stop paging once topics were last active before this ISO 8601 date.
    pub since: Option<String>,
    /// Listing pages at most.
    pub max_pages: usize,
}

/// What a crawl did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrawlReport {
    /// HTTP requests made (retries included).
    pub requests: usize,
    /// Topics fetched.
    pub fetched: usize,
    /// Topics whose saved copy was current.
    pub reused: usize,
    /// Topics the listing marked private, restricted or unlisted (not fetched).
    pub excluded: usize,
}

/// One polite HTTP client: spacing, retries, no cookies, no credentials.
/// A request starts no sooner than `delay` after the previous one *finished*,
/// so the forum sees requests at least `delay` apart however slow either side is.
struct Client {
    agent: ureq::Agent,
    delay: Duration,
    retries: u32,
    last: Option<Instant>,
    requests: usize,
}

/// Longest wait a `Retry-After` may ask for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

impl Client {
    fn new(delay: Duration, retries: u32) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION"), " (static index builder)"))
            .build()
            .into();
        Client { agent, delay, retries, last: None, requests: 0 }
    }

    fn wait_turn(&self) {
        if let Some(last) = self.last {
            let since = last.elapsed();
            if since < self.delay {
                std::thread::sleep(self.delay - since);
            }
        }
    }

    /// GETs `url` as JSON, retrying what can be retried.
    fn get(&mut self, url: &str) -> Result<Value> {
        let mut backoff = self.delay.max(Duration::from_millis(250));
        for attempt in 0..=self.retries {
            self.wait_turn();
            self.requests += 1;
            let outcome = self.agent.get(url).header("Accept", "application/json").call();
            let (retry, why) = match outcome {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    if status == 200 {
                        let body = resp.body_mut().read_to_vec();
                        self.last = Some(Instant::now());
                        let body = body.map_err(|e| Error::External(format!("{url}: reading the body failed: {e}")))?;
                        return serde_json::from_slice(&body).map_err(|source| Error::Json { what: url.to_string(), source });
                    }
                    self.last = Some(Instant::now());
                    let after = resp.headers().get("retry-after").and_then(|h| h.to_str().ok()).and_then(|s| s.trim().parse::<u64>().ok());
                    if let Some(secs) = after {
                        backoff = Duration::from_secs(secs).min(MAX_RETRY_AFTER);
                    }
                    (status == 429 || status >= 500, format!("HTTP {status}"))
                }
                Err(e) => {
                    self.last = Some(Instant::now());
                    (true, e.to_string())
                }
            };
            if !retry || attempt == self.retries {
                return Err(Error::External(format!("{url}: {why}{}", if retry { format!(" after {} attempts", attempt + 1) } else { String::new() })));
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_RETRY_AFTER);
        }
        unreachable!("the loop returns")
    }
}

fn save(path: &Path, v: &Value) -> Result<()> {
    let dir = path.parent().expect("saved files live in a directory");
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    std::io::Write::write_all(&mut tmp, &serde_json::to_vec(v).expect("JSON serialises")).map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Post ids fetched per `/t/ID/posts.json` request.
const POSTS_PER_REQUEST: usize = 20;

/// Crawls a forum into `opts.dir` (see the module docs). `progress` hears about each topic.
pub fn crawl(opts: &CrawlOptions, progress: &dyn Fn(&str)) -> Result<CrawlReport> {
    let base = opts.base.trim_end_matches('/').to_string();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(Error::Input { location: "--discourse".into(), message: format!("{base:?} is neither a directory nor an http(s) URL") });
    }
    let mut client = Client::new(opts.delay, opts.retries);
    let mut report = CrawlReport::default();
    save(&opts.dir.join("cairn-crawl.json"), &serde_json::json!({ "base": base }))?;
    let categories = client.get(&format!("{base}/categories.json"))?;
    save(&opts.dir.join("categories.json"), &categories)?;
    let restricted = restricted_categories(&opts.dir)?;

    for page in 0..opts.max_pages {
        let listing = client.get(&format!("{base}/latest.json?page={page}"))?;
        save(&opts.dir.join(format!("latest/page-{page}.json")), &listing)?;
        let topics = listing["topic_list"]["topics"].as_array().cloned().unwrap_or_default();
        let mut older = false;
        for t in &topics {
            let Some(id) = id_of(&t["id"]) else { continue };
            let active = t["last_posted_at"].as_str().or_else(|| t["bumped_at"].as_str()).unwrap_or_default();
            if opts.since.as_deref().is_some_and(|s| active < s) {
                older = true;
                continue;
            }
            if exclusion(t, &restricted).is_some() {
                report.excluded += 1;
                continue;
            }
            let path = opts.dir.join(format!("t/{id}.json"));
            let saved = read_json(&path).ok();
            let current = saved.as_ref().is_some_and(|s| {
                s["last_posted_at"] == t["last_posted_at"] && s["posts_count"] == t["posts_count"] && complete(s)
            });
            if current {
                report.reused += 1;
                continue;
            }
            progress(&id);
            let mut topic = client.get(&format!("{base}/t/{id}.json"))?;
            fill_post_stream(&mut client, &base, &id, &mut topic)?;
            save(&path, &topic)?;
            report.fetched += 1;
        }
        if older || topics.is_empty() || listing["topic_list"]["more_topics_url"].is_null() {
            break;
        }
    }
    report.requests = client.requests;
    Ok(report)
}

/// Whether every post the stream lists is present.
fn complete(topic: &Value) -> bool {
    let have = topic["post_stream"]["posts"].as_array().map_or(0, Vec::len);
    let want = topic["post_stream"]["stream"].as_array().map_or(have, Vec::len);
    have >= want
}

/// Fetches the posts `/t/ID.json` did not include (it embeds the first 20).
fn fill_post_stream(client: &mut Client, base: &str, id: &str, topic: &mut Value) -> Result<()> {
    let have: HashSet<String> = topic["post_stream"]["posts"].as_array().into_iter().flatten().filter_map(|p| id_of(&p["id"])).collect();
    let missing: Vec<String> = topic["post_stream"]["stream"].as_array().into_iter().flatten().filter_map(id_of).filter(|p| !have.contains(p)).collect();
    let mut extra: HashMap<String, Value> = HashMap::new();
    for chunk in missing.chunks(POSTS_PER_REQUEST) {
        let query: Vec<String> = chunk.iter().map(|p| format!("post_ids[]={p}")).collect();
        let got = client.get(&format!("{base}/t/{id}/posts.json?{}", query.join("&")))?;
        for p in got["post_stream"]["posts"].as_array().into_iter().flatten() {
            if let Some(pid) = id_of(&p["id"]) {
                extra.insert(pid, p.clone());
            }
        }
    }
    if let Some(posts) = topic["post_stream"]["posts"].as_array_mut() {
        for pid in missing {
            if let Some(p) = extra.remove(&pid) {
                posts.push(p);
            }
        }
        posts.sort_by_key(|p| p["post_number"].as_u64().unwrap_or(0));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_links_name_their_topic() {
        assert_eq!(linked_topic("https://f.example/t/some-slug/123/4"), Some("123".into()));
        assert_eq!(linked_topic("/t/123"), Some("123".into()));
        assert_eq!(linked_topic("https://f.example/u/ann"), None);
    }

    #[test]
    fn private_restricted_and_unlisted_topics_are_excluded() {
        let restricted: HashSet<String> = ["7".to_string()].into();
        assert_eq!(exclusion(&serde_json::json!({"archetype": "private_message"}), &restricted), Some("private message"));
        assert_eq!(exclusion(&serde_json::json!({"category_id": 7}), &restricted), Some("restricted category"));
        assert_eq!(exclusion(&serde_json::json!({"category_id": 3, "visible": false}), &restricted), Some("unlisted"));
        assert_eq!(exclusion(&serde_json::json!({"category_id": 3, "visible": true, "archetype": "regular", "deleted_at": null}), &restricted), None);
    }
}
