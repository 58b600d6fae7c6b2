//! The Stack Exchange importer against the dump itself, counted independently.

mod common;
use cairn::ingest::{stackexchange, LinkKind, Role};
use std::collections::{HashMap, HashSet};

/// Counts rows of a dump file by a plain text scan: the oracle for the importer.
fn rows(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(common::sample_dump().join(file)).unwrap();
    text.lines().filter(|l| l.trim_start().starts_with("<row")).map(str::to_string).collect()
}

#[test]
fn counts_match_the_dump() {
    let import = stackexchange::import(&common::sample_dump(), "/questions/{id}").unwrap();
    let posts = rows("Posts.xml");
    let questions: HashSet<&str> =
        posts.iter().filter(|l| common::attr(l, "PostTypeId") == Some("1")).map(|l| common::attr(l, "Id").unwrap()).collect();
    let answers: Vec<&String> = posts.iter().filter(|l| common::attr(l, "PostTypeId") == Some("2")).collect();
    let answer_ids: HashSet<&str> = answers.iter().map(|l| common::attr(l, "Id").unwrap()).collect();
    let comments = rows("Comments.xml");
    let attached_comments = comments
        .iter()
        .filter(|l| common::attr(l, "PostId").is_some_and(|p| questions.contains(p) || answer_ids.contains(p)))
        .count();

    assert_eq!(import.topics.len(), questions.len());
    assert_eq!(import.topics.len(), 612, "the sample's README says 612 questions");
    let imported_answers: usize = import.topics.iter().map(|t| t.answers.len()).sum();
    assert_eq!(imported_answers, answers.len());
    let imported_comments: usize = import.topics.iter().map(|t| t.comment_count()).sum();
    assert_eq!(imported_comments, attached_comments);
    assert_eq!(imported_comments, comments.len(), "every sample comment belongs to a question or answer");

    let links = rows("PostLinks.xml");
    let both_questions = links
        .iter()
        .filter(|l| questions.contains(common::attr(l, "PostId").unwrap()) && questions.contains(common::attr(l, "RelatedPostId").unwrap()))
        .count();
    let imported_links: usize = import.topics.iter().map(|t| t.links.len()).sum();
    assert_eq!(imported_links, both_questions);
    assert_eq!(import.skipped.len(), links.len() - both_questions, "links to or from non-questions are reported");
}

#[test]
fn topics_carry_the_thread_and_who_took_part() {
    let import = stackexchange::import(&common::sample_dump(), "/questions/{id}").unwrap();
    let by_id: HashMap<&str, _> = import.topics.iter().map(|t| (t.id.as_str(), t)).collect();
    let t = by_id["1"];
    assert_eq!(t.title, "Can a Turing machine simulate a quantum computer?");
    assert_eq!(t.url, "/questions/1");
    assert!(t.tags.contains(&"simulation".to_string()));
    assert!(t.body_text.starts_with("I know that a Turing machine"), "HTML is converted to text: {:?}", &t.body_text[..60]);
    let best = t.best_answer().unwrap();
    assert_eq!(best.id, "18", "the accepted answer (AcceptedAnswerId=18) is the best one");
    assert!(best.accepted && t.answers[0].id == "18", "accepted answer first");
    assert_eq!(t.participants.first().map(|p| p.role), Some(Role::Asked));
    assert!(t.participants.windows(2).all(|w| w[0].at <= w[1].at), "participation in time order");
    assert!(t.participants.iter().any(|p| p.role == Role::Answered));
    // A duplicate link from the dump survives the import.
    let dup_rows: Vec<String> = rows("PostLinks.xml").into_iter().filter(|l| common::attr(l, "LinkTypeId") == Some("3")).collect();
    let from = dup_rows.iter().find_map(|l| by_id.get(common::attr(l, "PostId").unwrap())).expect("a duplicate link between questions");
    assert!(from.links.iter().any(|l| l.kind == LinkKind::Duplicate));
}

#[test]
fn malformed_rows_are_reported_with_position_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let src = common::sample_dump();
    let posts = std::fs::read_to_string(src.join("Posts.xml")).unwrap();
    let mut lines: Vec<String> = posts.lines().map(str::to_string).collect();
    // Line 3 is the first row: break its XML; insert a row without an Id after it.
    lines[2] = lines[2].replacen("Id=\"1\"", "Id=\"1", 1);
    lines.insert(3, r#"  <row PostTypeId="1" Title="no id" CreationDate="2018-03-12T17:00:00.000" />"#.to_string());
    std::fs::write(dir.path().join("Posts.xml"), lines.join("\n")).unwrap();
    for f in ["Comments.xml", "PostLinks.xml", "Users.xml"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let import = stackexchange::import(dir.path(), "/q/{id}").unwrap();
    let broken = import.skipped.iter().find(|s| s.location == "Posts.xml line 3").expect("line 3 reported");
    assert!(broken.reason.contains("XML") || broken.reason.contains("attribute"), "{broken:?}");
    let no_id = import.skipped.iter().find(|s| s.location == "Posts.xml line 4").expect("line 4 reported");
    assert!(no_id.reason.contains("Id"), "{no_id:?}");
    assert_eq!(import.topics.len(), 611, "only the broken question is lost");
    assert!(import.topics.iter().all(|t| t.id != "1"));
    assert!(import.skipped.iter().any(|s| s.reason.contains("question 1,")), "its answers are reported too");
}
