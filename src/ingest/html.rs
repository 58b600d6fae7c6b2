//! Forum HTML to plain text, for embedding and for snippets.
//!
//! Not a sanitiser: its output is text, to be shown with `textContent` or escaped.
//! Block elements become line breaks, `<pre>` keeps its whitespace, script and
//! style contents are dropped, character references are decoded.

/// Elements after which text continues on a new line.
const BLOCK: &[&str] = &[
    "p", "div", "br", "li", "ul", "ol", "pre", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "hr",
];
/// Elements whose content is not text.
const SKIP: &[&str] = &["script", "style", "template"];

/// Converts an HTML fragment to plain text.
pub fn to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    let mut pre_depth = 0usize;
    let mut skip_until: Option<String> = None;
    while let Some(lt) = rest.find('<') {
        if skip_until.is_none() {
            push_text(&mut out, &rest[..lt], pre_depth > 0);
        }
        let after = &rest[lt + 1..];
        let Some(gt) = after.find('>') else {
            // A stray '<' with no tag: it is text.
            if skip_until.is_none() {
                push_text(&mut out, &rest[lt..], pre_depth > 0);
            }
            rest = "";
            break;
        };
        let tag = &after[..gt];
        rest = &after[gt + 1..];
        if tag.starts_with('!') || tag.starts_with('?') {
            continue; // comment, doctype, processing instruction
        }
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if let Some(end) = &skip_until {
            if closing && &name == end {
                skip_until = None;
            }
            continue;
        }
        if !closing && SKIP.contains(&name.as_str()) && !tag.ends_with('/') {
            skip_until = Some(name);
            continue;
        }
        if name == "pre" {
            if closing {
                pre_depth = pre_depth.saturating_sub(1);
            } else {
                pre_depth += 1;
            }
        }
        if BLOCK.contains(&name.as_str()) {
            newline(&mut out);
        } else if name == "td" || name == "th" {
            out.push(' ');
        }
    }
    if skip_until.is_none() {
        push_text(&mut out, rest, pre_depth > 0);
    }
    // Trim each line's trailing space and collapse runs of blank lines.
    let mut clean = String::with_capacity(out.len());
    let mut blank = 0;
    for line in out.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank += 1;
            continue;
        }
        if !clean.is_empty() {
            clean.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        clean.push_str(line);
    }
    clean
}

fn newline(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

/// Appends decoded text; outside `<pre>`, runs of whitespace become one space.
fn push_text(out: &mut String, raw: &str, preformatted: bool) {
    let decoded = html_escape::decode_html_entities(raw);
    if preformatted {
        out.push_str(&decoded);
        return;
    }
    for c in decoded.chars() {
        if c.is_whitespace() {
            if !out.is_empty() && !out.ends_with(' ') && !out.ends_with('\n') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::to_text;

    #[test]
    fn blocks_become_lines_and_entities_decode() {
        let t = to_text("<p>Is <a href=\"x\">Qiskit</a> &amp; Cirq   fast?</p>\n<p>Second&nbsp;para</p>");
        assert_eq!(t, "Is Qiskit & Cirq fast?\nSecond para");
    }

    #[test]
    fn pre_keeps_whitespace_and_scripts_vanish() {
        let t = to_text("<pre><code>fn main() {\n    x &lt; 1\n}</code></pre><script>alert(1)</script>after");
        assert_eq!(t, "fn main() {\n    x < 1\n}\nafter");
    }

    #[test]
    fn stray_angle_bracket_is_text() {
        assert_eq!(to_text("a < b and c"), "a < b and c");
    }
}
