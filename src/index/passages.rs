//! Threads cut into passages: the units the assistant quotes as evidence.
//!
//! A passage is a run of consecutive lines (paragraphs, list items, code
//! lines) of one post, [`TARGET_WORDS`] to [`MAX_WORDS`] words long; a longer
//! paragraph is cut at sentence ends. Posts are taken in the order a reader
//! values them: the question, the accepted answer, then the best-scored
//! answers, each contributing a bounded number of passages.

use super::format::PassageKind;
use crate::ingest::Topic;

/// A passage is closed once it reaches this many words.
pub const TARGET_WORDS: usize = 60;
/// No passage is longer than this many words (a longer sentence stays whole).
pub const MAX_WORDS: usize = 140;
/// Passages taken from the question.
pub const QUESTION_PASSAGES: usize = 4;
/// Passages taken from the accepted answer.
pub const ACCEPTED_PASSAGES: usize = 4;
/// Passages taken from each other answer.
pub const ANSWER_PASSAGES: usize = 2;
/// Answers besides the accepted one that contribute passages.
pub const MAX_OTHER_ANSWERS: usize = 3;
/// Passages shorter than this many words are dropped unless the post has nothing else.
pub const MIN_WORDS: usize = 3;

/// A passage before it is embedded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassageText {
    /// The post it is part of (source id).
    pub post: String,
    /// Link to that post.
    pub url: String,
    /// Question, accepted answer or answer.
    pub kind: PassageKind,
    /// Votes on the post.
    pub score: i64,
    /// Plain text, newlines kept.
    pub text: String,
}

/// The passages of `topic`, question first.
pub fn split(topic: &Topic) -> Vec<PassageText> {
    let mut out = Vec::new();
    let mut add = |post: &str, url: &str, kind: PassageKind, score: i64, text: &str, limit: usize| {
        for text in chunks(text).into_iter().take(limit) {
            out.push(PassageText { post: post.to_string(), url: url.to_string(), kind, score, text });
        }
    };
    add(&topic.id, &topic.url, PassageKind::Question, topic.score, &topic.body_text, QUESTION_PASSAGES);
    let mut others = 0;
    for a in &topic.answers {
        if a.accepted {
            add(&a.id, &a.url, PassageKind::Accepted, a.score, &a.body_text, ACCEPTED_PASSAGES);
        } else if others < MAX_OTHER_ANSWERS {
            others += 1;
            add(&a.id, &a.url, PassageKind::Answer, a.score, &a.body_text, ANSWER_PASSAGES);
        }
    }
    out
}

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

/// Cuts one post's text into passages (see the module docs).
pub fn chunks(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    let mut cur_words = 0;
    let flush = |cur: &mut Vec<&str>, cur_words: &mut usize, out: &mut Vec<String>| {
        if !cur.is_empty() {
            out.push(cur.join("\n"));
            cur.clear();
            *cur_words = 0;
        }
    };
    for line in text.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()) {
        let n = words(line);
        if n > MAX_WORDS {
            flush(&mut cur, &mut cur_words, &mut out);
            out.extend(sentences_into_pieces(line));
            continue;
        }
        if cur_words + n > MAX_WORDS {
            flush(&mut cur, &mut cur_words, &mut out);
        }
        cur.push(line);
        cur_words += n;
        if cur_words >= TARGET_WORDS {
            flush(&mut cur, &mut cur_words, &mut out);
        }
    }
    flush(&mut cur, &mut cur_words, &mut out);
    if out.len() > 1 {
        out.retain(|p| words(p) >= MIN_WORDS);
    }
    out
}

/// Splits a long paragraph at sentence ends and regroups the sentences into
/// pieces of [`TARGET_WORDS`]..[`MAX_WORDS`] words.
fn sentences_into_pieces(paragraph: &str) -> Vec<String> {
    let mut sentences = Vec::new();
    let mut start = 0;
    let bytes = paragraph.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if matches!(b, b'.' | b'?' | b'!') && bytes.get(i + 1).is_some_and(|n| n.is_ascii_whitespace()) {
            sentences.push(paragraph[start..=i].trim());
            start = i + 1;
        }
    }
    sentences.push(paragraph[start..].trim());
    let mut out = Vec::new();
    let mut cur = String::new();
    for s in sentences.into_iter().filter(|s| !s.is_empty()) {
        if !cur.is_empty() && words(&cur) + words(s) > MAX_WORDS {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(s);
        if words(&cur) >= TARGET_WORDS {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn para(n: usize, word: &str) -> String {
        vec![word; n].join(" ")
    }

    #[test]
    fn short_lines_merge_until_the_target_and_never_past_the_maximum() {
        let text = [para(30, "a"), para(20, "b"), para(20, "c"), para(5, "d")].join("\n");
        let got = chunks(&text);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(words(&got[0]), 70);
        assert!(got[0].contains('\n'), "lines stay lines");
        assert_eq!(words(&got[1]), 5);
        for p in chunks(&[para(100, "x"), para(100, "y")].join("\n")) {
            assert!(words(&p) <= MAX_WORDS, "{}", words(&p));
        }
    }

    #[test]
    fn a_long_paragraph_is_cut_at_sentence_ends() {
        let sentence = format!("{}.", para(25, "w"));
        let text = vec![sentence.as_str(); 8].join(" ");
        let got = chunks(&text);
        assert!(got.len() >= 3, "{got:?}");
        for p in &got {
            assert!(p.ends_with('.') && words(p) <= MAX_WORDS && words(p) >= TARGET_WORDS.min(50), "{p}");
        }
        assert_eq!(got.iter().map(|p| words(p)).sum::<usize>(), 200);
    }

    #[test]
    fn tiny_fragments_go_unless_alone() {
        assert_eq!(chunks("Thanks!"), vec!["Thanks!"]);
        let got = chunks(&format!("{}\n\nok\n", para(70, "z")));
        assert_eq!(got.len(), 1);
    }
}
