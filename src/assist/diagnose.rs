//! Pasted errors and logs, normalised so the same failure on another machine
//! matches: paths, addresses, line numbers, ids, versions, times and other
//! machine-specific details are masked; the error's type and message are kept.
//!
//! [`prepare`] decides whether an input is a question or an error dump and
//! returns the text the encoder sees and the terms the lexical search uses.
//! Masked pieces never become lexical terms (a path's directories say nothing
//! about the bug; its file name often does, so it is kept).

use crate::index::lexical;
use serde::Serialize;

/// What the visitor gave the assistant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A question in words.
    Question,
    /// A stack trace, log or error message.
    Error,
}

/// A query ready for retrieval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Query {
    /// Question or error.
    pub mode: Mode,
    /// What the encoder embeds.
    pub text: String,
    /// Lexical terms.
    pub terms: Vec<String>,
}

/// Lines an error dump is reduced to, at most.
pub const MAX_KEY_LINES: usize = 6;

/// Words that mark a line as carrying the error itself.
const ERROR_MARKERS: &[&str] = &[
    "error", "exception", "fatal", "failed", "failure", "panicked", "panic", "denied", "refused", "cannot", "can't", "unable", "not found",
    "no such", "traceback", "segmentation fault", "core dumped", "undefined", "unresolved", "invalid", "warning", "timeout", "timed out",
];

/// Whether `input` looks like pasted machine output rather than a question.
pub fn looks_like_error(input: &str) -> bool {
    let lines: Vec<&str> = input.lines().filter(|l| !l.trim().is_empty()).collect();
    let lower = input.to_lowercase();
    let mut signals = 0;
    if lower.contains("traceback (most recent call last)") || lower.contains("stack trace") || lower.contains("stacktrace") {
        signals += 2;
    }
    let frames = lines.iter().filter(|l| is_frame(l)).count();
    signals += frames.min(3);
    if lines.iter().any(|l| error_type(l).is_some()) {
        signals += 1;
    }
    let levelled = lines.iter().filter(|l| starts_with_log_level(l)).count();
    signals += levelled.min(2);
    if (lines.len() >= 2 || levelled > 0) && lines.iter().any(|l| has_marker(l)) {
        signals += 1;
    }
    if input.split_whitespace().any(|w| w.starts_with("0x") && w.len() >= 6) {
        signals += 1;
    }
    signals >= 2
}

fn has_marker(line: &str) -> bool {
    let l = line.to_lowercase();
    ERROR_MARKERS.iter().any(|m| l.contains(m))
}

fn starts_with_log_level(line: &str) -> bool {
    let t = line.trim_start().trim_start_matches(['[', '(']);
    ["E:", "W:", "ERROR", "WARN", "FATAL", "CRITICAL", "error:", "fatal:", "warning:", "Err:", "panic:"].iter().any(|p| t.starts_with(p))
}

/// A stack frame: `  File "x.py", line 3`, `at a.b.C(D.java:12)`, `#3 0x... in f`, `  --> src/x.rs:1:2`.
fn is_frame(line: &str) -> bool {
    let t = line.trim_start();
    (t.starts_with("File \"") && t.contains("line "))
        || (t.starts_with("at ") && t.contains('(') && t.contains(')'))
        || (t.starts_with('#') && t.contains(" in "))
        || t.starts_with("--> ")
}

/// The error type a line names, e.g. `ModuleNotFoundError` or `java.lang.NullPointerException`.
fn error_type(line: &str) -> Option<&str> {
    line.split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '_' || c == ':'))
        .map(|w| w.trim_end_matches(':'))
        .find(|w| {
            let last = w.rsplit(['.', ':']).next().unwrap_or(w);
            last.len() > 5 && (last.ends_with("Error") || last.ends_with("Exception")) && last.chars().next().is_some_and(char::is_uppercase)
        })
}

/// One piece of a line: kept text or a masked detail.
enum Piece<'a> {
    Keep(&'a str),
    Mask(&'static str),
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// Classifies one whitespace-separated word: kept, masked, or a path reduced to its file name.
fn mask_word(word: &str) -> Vec<Piece<'_>> {
    // Surrounding punctuation stays text, so "(/usr/lib/x.py)" keeps its brackets.
    let core_start = word.find(|c: char| c.is_alphanumeric() || matches!(c, '/' | '\\' | '~' | '.')).unwrap_or(word.len());
    let core_end = word.rfind(|c: char| c.is_alphanumeric() || c == '/').map_or(core_start, |i| i + 1).max(core_start);
    let (pre, core, post) = (&word[..core_start], &word[core_start..core_end], &word[core_end..]);
    let mut out = Vec::new();
    if !pre.is_empty() {
        out.push(Piece::Keep(pre));
    }
    let lower = core.to_ascii_lowercase();
    let digits = core.chars().filter(char::is_ascii_digit).count();
    if core.is_empty() {
    } else if let Some(hex) = lower.strip_prefix("0x").filter(|h| is_hex(h)) {
        let _ = hex;
        out.push(Piece::Mask("<addr>"));
    } else if core.contains('/') && core.matches('/').count() >= 2 || core.starts_with("~/") || (core.len() > 2 && core.as_bytes()[1] == b':' && core.contains('\\')) {
        // A path: the directories are machine-specific, the file name is not.
        let (path, suffix) = split_line_suffix(core);
        let name = path.rsplit(['/', '\\']).find(|s| !s.is_empty()).unwrap_or("");
        out.push(Piece::Mask("<path>/"));
        if !name.is_empty() {
            out.push(Piece::Keep(name));
        }
        if !suffix.is_empty() {
            out.push(Piece::Mask(":<n>"));
        }
    } else if is_version(core) {
        out.push(Piece::Mask("<version>"));
    } else if core.len() >= 8 && is_hex(&lower.replace('-', "")) && digits > 0 && core.chars().any(|c| c.is_ascii_alphabetic()) {
        out.push(Piece::Mask("<id>"));
    } else if digits == core.len() && digits >= 3 {
        out.push(Piece::Mask("<n>"));
    } else if is_ipv4(core) {
        out.push(Piece::Mask("<ip>"));
    } else if digits > 0 && (core.contains(':') && core.split(':').all(|p| p.chars().all(|c| c.is_ascii_digit())) || is_date(core)) {
        out.push(Piece::Mask("<time>"));
    } else {
        let (name, suffix) = split_line_suffix(core);
        out.push(Piece::Keep(name));
        if !suffix.is_empty() {
            out.push(Piece::Mask(":<n>"));
        }
    }
    if !post.is_empty() {
        out.push(Piece::Keep(post));
    }
    out
}

/// Splits `file.py:12` or `file.rs:12:5` into the name and the line suffix.
fn split_line_suffix(s: &str) -> (&str, &str) {
    let mut end = s.len();
    while let Some(i) = s[..end].rfind(':') {
        if i + 1 < end && s[i + 1..end].chars().all(|c| c.is_ascii_digit()) {
            end = i;
        } else {
            break;
        }
    }
    (&s[..end], &s[end..])
}

/// `1.2`, `3.10.4`, `2.0.0-rc1`, `v1.2.3`: numbers joined by dots.
fn is_version(s: &str) -> bool {
    let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
    let main = s.split(['-', '+']).next().unwrap_or(s);
    let parts: Vec<&str> = main.split('.').collect();
    parts.len() >= 2 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn is_ipv4(s: &str) -> bool {
    let s = s.split(':').next().unwrap_or(s);
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4 && parts.iter().all(|p| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit()))
}

fn is_date(s: &str) -> bool {
    let p: Vec<&str> = s.split(['-', 'T', ':', '.']).collect();
    p.len() >= 3 && p[0].len() == 4 && p.iter().all(|x| x.chars().all(|c| c.is_ascii_digit()))
}

/// Masks the machine-specific details of one line: (text for the encoder, its lexical terms).
pub fn mask_line(line: &str) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut terms = Vec::new();
    // "line 42" -> "line <n>"
    let mut after_line = false;
    for word in line.split_whitespace() {
        if !text.is_empty() {
            text.push(' ');
        }
        if after_line && word.trim_end_matches([',', ':', ')']).chars().all(|c| c.is_ascii_digit()) {
            text.push_str("<n>");
            after_line = false;
            continue;
        }
        after_line = word.eq_ignore_ascii_case("line");
        for piece in mask_word(word) {
            match piece {
                Piece::Keep(s) => {
                    text.push_str(s);
                    terms.extend(lexical::tokens(s));
                }
                Piece::Mask(m) => text.push_str(m),
            }
        }
    }
    (text, terms)
}

/// Turns a visitor's input into a retrieval query (see the module docs).
pub fn prepare(input: &str) -> Query {
    let input = input.trim();
    if !looks_like_error(input) {
        return Query { mode: Mode::Question, text: input.to_string(), terms: lexical::tokens(input) };
    }
    let lines: Vec<&str> = input.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    // The lines that say what went wrong; frames only say where.
    let mut key: Vec<&str> = lines.iter().copied().filter(|l| !is_frame(l) && (has_marker(l) || error_type(l).is_some() || starts_with_log_level(l))).collect();
    if key.is_empty() {
        key = lines.iter().copied().filter(|l| !is_frame(l)).collect();
    }
    // In a traceback the last line is the exception: keep it first.
    if let Some(last) = lines.iter().rev().find(|l| error_type(l).is_some()) {
        key.retain(|l| l != last);
        key.insert(0, last);
    }
    let mut text = Vec::new();
    let mut terms = Vec::new();
    for l in key {
        let (t, ts) = mask_line(l);
        if !text.contains(&t) {
            text.push(t);
            terms.extend(ts);
        }
        if text.len() == MAX_KEY_LINES {
            break;
        }
    }
    Query { mode: Mode::Error, text: text.join("\n"), terms }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PY: &str = "Traceback (most recent call last):\n  File \"/home/alice/proj/run.py\", line 12, in <module>\n    import qiskit\n  File \"/usr/lib/python3.8/site-packages/qiskit/__init__.py\", line 41, in <module>\n    from qiskit.providers import BaseBackend\nImportError: cannot import name 'BaseBackend' from 'qiskit.providers' (/usr/lib/python3.8/site-packages/qiskit/providers/__init__.py)";

    #[test]
    fn a_traceback_becomes_its_exception_line_with_details_masked() {
        let q = prepare(PY);
        assert_eq!(q.mode, Mode::Error);
        let first = q.text.lines().next().unwrap();
        assert!(first.starts_with("ImportError: cannot import name 'BaseBackend'"), "{}", q.text);
        assert!(!q.text.contains("alice") && !q.text.contains("/usr/lib"), "{}", q.text);
        assert!(q.text.contains("__init__.py"), "file names stay: {}", q.text);
        assert!(q.terms.contains(&"importerror".to_string()) && q.terms.contains(&"basebackend".to_string()), "{:?}", q.terms);
        assert!(!q.terms.iter().any(|t| t == "home" || t == "alice" || t == "12"), "{:?}", q.terms);
    }

    #[test]
    fn the_same_error_from_two_machines_normalises_the_same() {
        let a = "E: Failed to fetch http://10.0.0.5/ubuntu/dists/focal/main/binary-amd64/Packages  404  Not Found [IP: 10.0.0.5 80]\nE: Some index files failed to download. They have been ignored.";
        let b = "E: Failed to fetch http://192.168.1.20/ubuntu/dists/jammy/main/binary-amd64/Packages  404  Not Found [IP: 192.168.1.20 80]\nE: Some index files failed to download. They have been ignored.";
        let (qa, qb) = (prepare(a), prepare(b));
        assert_eq!(qa.mode, Mode::Error);
        assert_eq!(qa.terms.iter().filter(|t| *t != "focal").collect::<Vec<_>>(), qb.terms.iter().filter(|t| *t != "jammy").collect::<Vec<_>>());
        let c = "segfault at 0x7ffd1234abcd in libfoo.so.1.2.3\nError: process 48213 exited at 2024-03-01T10:22:33";
        let d = "segfault at 0x55550000ffff in libfoo.so.1.2.3\nError: process 99 exited at 2025-11-30T01:02:03";
        assert_eq!(prepare(c).text.replace("99", "<n>"), prepare(d).text.replace("99", "<n>"));
    }

    #[test]
    fn questions_stay_questions() {
        for q in ["How do I install Qiskit on Ubuntu 20.04?", "Why does Grover's algorithm need sqrt(N) steps?", "error correction codes for beginners"] {
            let p = prepare(q);
            assert_eq!(p.mode, Mode::Question, "{q}");
            assert_eq!(p.text, q);
        }
    }

    #[test]
    fn masking_keeps_words_and_punctuation() {
        let (t, terms) = mask_line("  File \"/opt/app/main.rs:42:7\" failed with code 0xdeadbeef (version 1.2.3)");
        assert_eq!(t, "File \"<path>/main.rs:<n>\" failed with code <addr> (version <version>)");
        assert_eq!(terms, vec!["file", "main", "rs", "failed", "with", "code", "version"]);
    }
}
