//! Key phrases of a topic: what it is about, in a few words, for explanations
//! and display.
//!
//! Candidates are word n-grams (1 to 3 words) of the title and the question
//! that neither start nor end with a stopword, scored by how often they occur
//! (title occurrences count [`TITLE_WEIGHT`] times) with a bonus for longer
//! phrases. The best [`CANDIDATES`] are embedded by the caller; [`choose`] then
//! keeps the [`KEYWORDS`] closest in meaning to the whole topic, diversified by
//! maximal marginal relevance so that near-synonyms do not crowd the list out.
//! Everything depends on the topic alone, so an incremental update never has
//! to recompute the keywords of a topic that did not change.

use std::collections::HashMap;

/// Key phrases kept per topic.
pub const KEYWORDS: usize = 5;
/// Candidates embedded per topic.
pub const CANDIDATES: usize = 8;
/// An occurrence in the title counts this many times.
pub const TITLE_WEIGHT: f32 = 3.0;
/// Relevance against redundancy in [`choose`] (1 = relevance only).
pub const MMR_LAMBDA: f32 = 0.6;

/// English function words that may not start or end a phrase.
const STOPWORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "answer", "any", "anyone", "are", "as", "at",
    "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing",
    "done", "down", "during", "each", "either", "else", "etc", "even", "ever", "every", "example", "few", "following", "for", "from",
    "further", "get", "gets", "getting", "got", "had", "has", "have", "having", "he", "her", "here", "hers", "him", "his", "how",
    "however", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "know", "let", "like", "make", "may", "me", "might", "more",
    "most", "much", "must", "my", "need", "no", "nor", "not", "now", "of", "off", "on", "once", "one", "only", "or", "other", "our", "out",
    "over", "own", "please", "possible", "question", "same", "say", "see", "seems", "she", "should", "so", "some", "something", "such",
    "than", "thank", "thanks", "that", "the", "their", "them", "then", "there", "these", "they", "thing", "things", "this", "those",
    "though", "through", "to", "too", "tried", "try", "under", "until", "up", "us", "use", "used", "using", "very", "want", "was", "way",
    "we", "well", "were", "what", "when", "where", "whether", "which", "while", "who", "whom", "why", "will", "with", "within", "without",
    "work", "works", "would", "yes", "yet", "you", "your",
];

/// Whether `w` (lowercase) is a function word too common to mean anything on its own.
pub fn is_stopword(w: &str) -> bool {
    STOPWORDS.binary_search(&w).is_ok()
}

/// Words of a phrase source: runs of letters, digits and `+#._-`, lowercased,
/// with trailing `.`/`-` trimmed; `None` marks a phrase break (punctuation).
fn phrase_words(text: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    let mut word = String::new();
    let end_word = |word: &mut String, out: &mut Vec<Option<String>>| {
        let w = word.trim_end_matches(['.', '-']).trim_start_matches(['.', '-']).to_lowercase();
        if !w.is_empty() {
            out.push(Some(w));
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric() || matches!(c, '+' | '#' | '_' | '.' | '-') {
            word.push(c);
        } else {
            end_word(&mut word, &mut out);
            if !c.is_whitespace() {
                out.push(None);
            }
        }
    }
    end_word(&mut word, &mut out);
    out
}

/// Whether `w` can be a one-word key phrase or the edge of a longer one.
fn contentful(w: &str) -> bool {
    !is_stopword(w) && w.chars().any(|c| c.is_alphabetic()) && w.chars().count() >= 2
}

/// The best [`CANDIDATES`] phrases of a topic, best first (ties alphabetical).
pub fn candidates(title: &str, body: &str) -> Vec<String> {
    let mut score: HashMap<String, f32> = HashMap::new();
    for (text, weight) in [(title, TITLE_WEIGHT), (body, 1.0)] {
        let words = phrase_words(text);
        for start in 0..words.len() {
            for n in 1..=3 {
                let Some(window) = words.get(start..start + n) else { break };
                if window.iter().any(Option::is_none) {
                    break;
                }
                let ws: Vec<&str> = window.iter().map(|w| w.as_deref().expect("checked")).collect();
                if !contentful(ws[0]) || !contentful(ws[n - 1]) || (n == 1 && ws[0].chars().count() < 3) {
                    continue;
                }
                let bonus = [1.0, 1.6, 1.9][n - 1];
                *score.entry(ws.join(" ")).or_insert(0.0) += weight * bonus;
            }
        }
    }
    let mut ranked: Vec<(String, f32)> = score.into_iter().filter(|(_, s)| *s >= 2.0).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.into_iter().take(CANDIDATES).map(|(p, _)| p).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Picks up to [`KEYWORDS`] of `candidates` (with their unit embeddings) by
/// maximal marginal relevance to `topic` (the topic's unit embedding). A
/// candidate sharing a content word with a phrase already chosen is skipped:
/// "turing machine" adds nothing after "turing machine simulation".
pub fn choose(candidates: &[String], vectors: &[Vec<f32>], topic: &[f32]) -> Vec<String> {
    let mut left: Vec<usize> = (0..candidates.len()).collect();
    let mut chosen: Vec<usize> = Vec::new();
    let content = |p: &str| -> Vec<String> { p.split(' ').filter(|w| !is_stopword(w)).map(str::to_string).collect() };
    while chosen.len() < KEYWORDS && !left.is_empty() {
        let used: Vec<String> = chosen.iter().flat_map(|&c| content(&candidates[c])).collect();
        left.retain(|&i| !content(&candidates[i]).iter().any(|w| used.contains(w)));
        if left.is_empty() {
            break;
        }
        let mmr = |i: usize| {
            let redundancy = chosen.iter().map(|&c| dot(&vectors[i], &vectors[c])).fold(0.0f32, f32::max);
            MMR_LAMBDA * dot(&vectors[i], topic) - (1.0 - MMR_LAMBDA) * redundancy
        };
        let best = (0..left.len()).max_by(|&a, &b| mmr(left[a]).total_cmp(&mmr(left[b])).then(left[b].cmp(&left[a]))).expect("not empty");
        chosen.push(left.remove(best));
    }
    chosen.into_iter().map(|i| candidates[i].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopwords_are_sorted_for_binary_search() {
        assert!(STOPWORDS.windows(2).all(|w| w[0] < w[1]), "keep STOPWORDS sorted and unique");
    }

    #[test]
    fn candidates_are_contentful_phrases_title_first() {
        let c = candidates(
            "How do I install Qiskit on Ubuntu?",
            "I tried to install Qiskit with pip on Ubuntu 20.04, but the Qiskit install fails. The error is about numpy.",
        );
        assert_eq!(c[0], "install qiskit", "{c:?}");
        assert!(c.contains(&"qiskit".to_string()), "{c:?}");
        assert!(c.contains(&"install qiskit".to_string()) && c.contains(&"ubuntu".to_string()), "{c:?}");
        assert!(c.iter().all(|p| !p.starts_with("the ") && !p.ends_with(" on") && p != "how"), "{c:?}");
        assert!(c.len() <= CANDIDATES);
    }

    #[test]
    fn phrases_do_not_cross_punctuation() {
        let c = candidates("Grover search, quantum walk", "");
        assert!(!c.iter().any(|p| p.contains("search quantum")), "{c:?}");
        assert!(phrase_words("c++ and node.js.").contains(&Some("node.js".to_string())));
    }

    #[test]
    fn choose_prefers_relevant_and_varied() {
        let cands: Vec<String> = ["alpha", "beta", "gamma"].iter().map(|s| s.to_string()).collect();
        // beta is the most relevant; alpha nearly repeats it; gamma differs.
        let v = vec![vec![1.0, 0.0], vec![0.995, 0.0998], vec![0.0, 1.0]];
        let got = choose(&cands, &v, &[0.8, 0.6]);
        assert_eq!(got, vec!["beta", "gamma", "alpha"], "the near-copy comes after the different phrase");
        let cands: Vec<String> = ["turing machine", "turing", "quantum walk"].iter().map(|s| s.to_string()).collect();
        let v = vec![vec![1.0, 0.0], vec![1.0, 0.0], vec![0.0, 1.0]];
        assert_eq!(choose(&cands, &v, &[1.0, 0.0]), vec!["turing machine", "quantum walk"], "no phrase repeats a chosen word");
    }
}
