//! Reading the TOML into `raw::Scenario` while finding every syntax error,
//! unknown key and type error, not just the first (where the TOML reader and
//! serde stop): each problem's lines are blanked out, offsets kept, and the
//! text is read again. Unknown keys get a "did you mean"; a bare duration or
//! size (`interval = 100ms`) gets its quoted form.

use std::ops::Range;

use crate::scenario::diag::suggestion;
use crate::scenario::raw;

/// One problem: where, which key (may be empty), what.
pub(super) type Problem = (Option<Range<usize>>, String, String);

/// Most problems gathered from one file before giving up.
const MAX_PROBLEMS: usize = 64;

/// The file read as far as possible (`None` when something could not be
/// read around), and every problem met on the way.
pub(super) fn read(source: &str) -> (Option<raw::Scenario>, Vec<Problem>) {
    let mut text = source.to_string();
    let mut problems: Vec<Problem> = Vec::new();
    // Once a whole table went, the rest of the rules would only complain
    // about what it held: read on for more problems, but check no further.
    let mut lost_table = false;
    while problems.len() < MAX_PROBLEMS {
        let e = match toml::from_str::<raw::Scenario>(&text) {
            Ok(r) => return ((!lost_table).then_some(r), problems),
            Err(e) => e,
        };
        // A required key we blanked for an earlier problem: not a new one.
        if !problems.is_empty() && e.message().starts_with("missing field") {
            break;
        }
        let span = e.span();
        problems.push(describe(source, &e));
        match span.and_then(|sp| blank(&mut text, sp)) {
            Some(table) => lost_table |= table,
            None => break,
        }
    }
    (None, problems)
}

/// The problem behind a TOML or serde error, in the file's words.
fn describe(source: &str, e: &toml::de::Error) -> Problem {
    let span = e.span();
    let message = e.message().trim();
    let key = span
        .as_ref()
        .map(|sp| super::key_before(source, sp.start))
        .unwrap_or_default();
    if let Some(fixed) = span
        .as_ref()
        .and_then(|sp| unquoted_value(source, sp.start))
    {
        return (
            span,
            key,
            format!("durations and sizes are strings in TOML: write `{fixed}`"),
        );
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (word, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        let hint = suggestion(word, candidates.iter().copied());
        let known = if candidates.is_empty() {
            String::new()
        } else {
            format!(
                "; known keys here: {}",
                candidates
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return (span, key, format!("unknown key `{word}`{hint}{known}"));
    }
    let message = message
        .replace("expected i64", "expected a whole number")
        .replace("expected f64", "expected a number")
        .replace('\n', "; ");
    (span, key, message)
}

/// For a line `key = 100ms` (a number run into letters, unquoted), the line
/// as it should be: `key = "100ms"`.
fn unquoted_value(source: &str, offset: usize) -> Option<String> {
    let offset = offset.min(source.len());
    let start = source[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = source[offset..]
        .find('\n')
        .map_or(source.len(), |i| offset + i);
    let line = &source[start..end];
    let (key, value) = line.split_once('=')?;
    let value = value.split('#').next().unwrap_or("").trim();
    let looks_like_unit = value.starts_with(|c: char| c.is_ascii_digit())
        && value.contains(|c: char| c.is_ascii_alphabetic())
        && !value.contains(['"', '\'', ',', '[', '{', ' ']);
    looks_like_unit.then(|| format!("{} = \"{value}\"", key.trim()))
}

/// Replaces the lines holding `span` with spaces (newlines kept, so every
/// other offset stays valid). A table header takes its keys with it: then
/// `Some(true)`. `None` when there was nothing left to blank (the reader
/// would fail the same way).
fn blank(text: &mut String, span: Range<usize>) -> Option<bool> {
    let len = text.len();
    let from = span.start.min(len);
    let to = span.end.clamp(from, len);
    let start = text[..from].rfind('\n').map_or(0, |i| i + 1);
    let mut end = text[to..].find('\n').map_or(len, |i| to + i);
    let header = text[start..end].trim_start().starts_with('[');
    if header {
        // Up to the next header: its keys belong to the table just removed.
        let mut pos = end;
        while pos < len {
            let next = text[pos + 1..].find('\n').map_or(len, |i| pos + 1 + i);
            if text[pos + 1..next].trim_start().starts_with('[') {
                break;
            }
            pos = next;
        }
        end = pos;
    }
    let region = &text[start..end];
    if region.trim().is_empty() {
        return None;
    }
    let blanked: String = region
        .chars()
        .map(|c| if c == '\n' { '\n' } else { ' ' })
        .collect();
    // Multi-byte characters become one space each: pad to keep offsets.
    let pad = region.len() - blanked.len();
    let blanked = blanked + &" ".repeat(pad);
    text.replace_range(start..end, &blanked);
    Some(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanking_keeps_offsets_and_takes_a_header_with_its_keys() {
        let mut t = "a = 1\n[x]\nb = 2\n[y]\nc = 3\n".to_string();
        let before = t.len();
        assert_eq!(blank(&mut t, 6..9), Some(true));
        assert_eq!(t.len(), before);
        assert_eq!(t.lines().nth(3), Some("[y]"));
        assert!(t.lines().nth(2).unwrap().trim().is_empty());
        let mut t = "k = \"é\"\n".to_string();
        assert_eq!(blank(&mut t, 4..8), Some(false));
        assert_eq!(t.len(), "k = \"é\"\n".len());
        assert_eq!(blank(&mut t, 0..1), None, "nothing left to blank");
    }

    #[test]
    fn a_bare_duration_gets_its_quoted_form() {
        let src = "x = 1\ninterval = 100ms # fast\n";
        assert_eq!(
            unquoted_value(src, 14).as_deref(),
            Some("interval = \"100ms\"")
        );
        assert_eq!(unquoted_value("count = 100\n", 8), None);
        assert_eq!(unquoted_value("name = \"a\"\n", 7), None);
    }
}
