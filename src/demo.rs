//! `cairn demo`: a static demo forum built from imported topics: a topic list
//! and one page per topic laid out like a Q&A forum, each with the Cairn script
//! tag and widgets. Forum HTML is sanitised (ammonia) before it is written;
//! every other piece of forum text is escaped.

use crate::error::{Error, Result};
use crate::ingest::{Answer, Comment, Topic};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use std::fmt::Write as _;
use std::path::Path;

/// The demo's stylesheet, written beside the pages.
const FORUM_CSS: &str = include_str!("../www/demo/forum.css");
/// The demo's icon: a cairn of three stones.
const FAVICON_SVG: &str = include_str!("../www/demo/favicon.svg");

/// What the demo pages need to know beyond the topics.
pub struct DemoSite<'a> {
    /// Shown in the header and titles.
    pub site_name: &'a str,
    /// Credit line for the content (licence and source), shown in every footer.
    pub attribution: &'a str,
    /// URL of cairn.js as pages reference it.
    pub script_src: &'a str,
    /// URL of the index directory (the `data-index` attribute).
    pub index_url: &'a str,
}

/// Writes `index.html`, `ask/`, `new/`, `forum.css`, `favicon.svg` and `questions/{id}/index.html` for every topic into `out`; returns the pages written.
pub fn write(out: &Path, site: &DemoSite, topics: &[Topic]) -> Result<usize> {
    let write_file = |rel: &str, body: &str| -> Result<()> {
        let p = out.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        std::fs::write(&p, body).map_err(|e| Error::io(&p, e))
    };
    write_file("forum.css", FORUM_CSS)?;
    write_file("favicon.svg", FAVICON_SVG)?;
    write_file("index.html", &topic_list(site, topics))?;
    write_file("ask/index.html", &ask_page(site))?;
    write_file("new/index.html", &new_topic_page(site))?;
    for t in topics {
        write_file(&format!("questions/{}/index.html", path_segment(&t.id)), &topic_page(site, t))?;
    }
    Ok(topics.len() + 3)
}

/// Ids become directory names: keep them to a safe alphabet.
fn path_segment(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

fn page(site: &DemoSite, title: &str, main: &str, aside: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · {site_name}</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/forum.css">
<script type="module" src="{script}" data-index="{index}" data-new-topic="/new/?title={{title}}"></script>
</head>
<body>
<header class="site"><a class="brand" href="/">{site_name}</a><span class="tagline">a Cairn demo forum</span><nav><a href="/">Questions</a> <a href="/ask/">Ask the forum</a> <a href="/new/">New topic</a></nav></header>
<div class="layout">
<main>
{main}
</main>
<aside>
{aside}
</aside>
</div>
<footer class="site">{attribution}</footer>
</body>
</html>
"#,
        title = text(title),
        site_name = text(site.site_name),
        script = attr(site.script_src),
        index = attr(site.index_url),
        attribution = text(site.attribution),
    )
}

fn tags_html(tags: &[String]) -> String {
    let mut s = String::from(r#"<ul class="tags">"#);
    for t in tags {
        let _ = write!(s, r#"<li class="tag">{}</li>"#, text(t));
    }
    s.push_str("</ul>");
    s
}

fn date(iso: &str) -> &str {
    iso.get(..10).unwrap_or(iso)
}

fn topic_list(site: &DemoSite, topics: &[Topic]) -> String {
    let mut sorted: Vec<&Topic> = topics.iter().collect();
    sorted.sort_by(|a, b| b.last_activity.cmp(&a.last_activity));
    let mut main = format!("<h1>All questions <small>{} topics</small></h1>\n<ol class=\"topic-list\">\n", topics.len());
    for t in sorted {
        let _ = writeln!(
            main,
            r#"<li class="topic-row"><div class="stats"><span class="votes">{score} votes</span><span class="answers{acc}">{answers} answers</span>{views}</div><div class="summary"><a class="title" href="{url}">{title}</a>{tags}<span class="meta">asked {date} by {author}</span></div></li>"#,
            score = t.score,
            acc = if t.answers.iter().any(|a| a.accepted) { " accepted" } else { "" },
            answers = t.answers.len(),
            views = t.views.map(|v| format!(r#"<span class="views">{v} views</span>"#)).unwrap_or_default(),
            url = attr(&format!("/questions/{}", path_segment(&t.id))),
            title = text(&t.title),
            tags = tags_html(&t.tags),
            date = date(&t.created),
            author = text(&t.author.name),
        );
    }
    main.push_str("</ol>");
    let aside = r#"<cairn-feed limit="8"></cairn-feed>
<p class="meta">Open a question: Cairn suggests related topics beside it, and this feed learns from what you read. Everything is computed in your browser; your reading history never leaves it.</p>"#;
    page(site, "All questions", &main, aside)
}

/// `ask/`: the assistant, full width.
fn ask_page(site: &DemoSite) -> String {
    let main = r#"<h1>Ask the forum</h1>
<p class="meta">Ask a question or paste an error message: Cairn finds the threads and the passages that answer it. The model runs in your browser; nothing you type is sent anywhere.</p>
<cairn-ask></cairn-ask>"#;
    page(site, "Ask the forum", main, "")
}

/// `new/`: a composer that warns, as the title is typed, when the question may already exist.
fn new_topic_page(site: &DemoSite) -> String {
    let main = r#"<h1>New topic</h1>
<form class="compose" onsubmit="event.preventDefault()">
<label for="new-title">Title</label>
<input id="new-title" name="title" autocomplete="off" placeholder="What is your question? Be specific.">
<cairn-duplicates for="new-title"></cairn-duplicates>
<label for="new-body">Body</label>
<textarea id="new-body" name="body" rows="8"></textarea>
<button type="submit" disabled title="This demo does not post">Post (demo)</button>
</form>"#;
    page(site, "New topic", main, "")
}

fn comments_html(comments: &[Comment]) -> String {
    if comments.is_empty() {
        return String::new();
    }
    let mut s = String::from(r#"<ul class="comments">"#);
    for c in comments {
        let _ = write!(
            s,
            r#"<li class="comment"><span class="comment-score">{}</span> {} <span class="meta">– {} {}</span></li>"#,
            c.score,
            text(&c.text),
            text(&c.author.name),
            date(&c.created)
        );
    }
    s.push_str("</ul>");
    s
}

fn answer_html(a: &Answer) -> String {
    format!(
        r#"<article class="post answer{acc}" id="answer-{id}"><div class="votes">{score}{badge}</div><div class="post-body">{body}<p class="meta">answered {date} by {author}</p>{comments}</div></article>"#,
        acc = if a.accepted { " accepted" } else { "" },
        id = attr(&a.id),
        score = a.score,
        badge = if a.accepted { r#"<span class="accepted-mark" title="Accepted answer">✓</span>"# } else { "" },
        body = ammonia::clean(&a.body_html),
        date = date(&a.created),
        author = text(&a.author.name),
        comments = comments_html(&a.comments),
    )
}

fn topic_page(site: &DemoSite, t: &Topic) -> String {
    let mut main = format!(
        r#"<h1 class="question-title">{title}</h1><p class="meta">Asked {date} · {views}score {score}</p>
<article class="post question"><div class="votes">{score}</div><div class="post-body">{body}{tags}<p class="meta">asked by {author}</p>{comments}</div></article>
<h2>{n} answers</h2>
"#,
        title = text(&t.title),
        date = date(&t.created),
        views = t.views.map(|v| format!("viewed {v} times · ")).unwrap_or_default(),
        score = t.score,
        body = ammonia::clean(&t.body_html),
        tags = tags_html(&t.tags),
        author = text(&t.author.name),
        comments = comments_html(&t.comments),
        n = t.answers.len(),
    );
    for a in &t.answers {
        main.push_str(&answer_html(a));
        main.push('\n');
    }
    let aside = format!(r#"<cairn-related topic="{}" limit="8"></cairn-related>"#, attr(&t.id));
    page(site, &t.title, &main, &aside)
}
