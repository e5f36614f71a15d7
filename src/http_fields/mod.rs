//! HTTP field rules (RFC 9110) that the origin and the proxy both apply, so
//! the two services cannot disagree: list members split without breaking a
//! quoted string or a comment, entity-tags and their two comparisons, the
//! conditionals `If-None-Match`, `If-Modified-Since` and `If-Range`, and
//! `Max-Forwards`. Pure: the current time is a parameter.

use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{self, AsHeaderName, HeaderMap};

/// The members of a comma-separated field value (RFC 9110 §5.6.1), trimmed,
/// empty ones dropped. A comma inside a quoted string (with its `\`
/// escapes) does not split: `"a,b", "c"` is two members.
pub fn split_list(text: &str) -> Vec<&str> {
    split(text, false)
}

/// As [`split_list`], and a comma inside a comment (`( … )`, nested, RFC
/// 9110 §5.6.5) does not split either: for the fields that allow comments
/// (`Via`).
pub fn split_list_with_comments(text: &str) -> Vec<&str> {
    split(text, true)
}

fn split(text: &str, comments: bool) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped, mut depth) = (0, false, false, 0u32);
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted || depth > 0 => escaped = true,
            '"' if depth == 0 => quoted = !quoted,
            '(' if comments && !quoted => depth += 1,
            ')' if comments && !quoted && depth > 0 => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// The members of every line of the field `name`, in order. A line that is
/// not text is skipped: it holds no token these rules compare.
pub fn list_members<K: AsHeaderName>(headers: &HeaderMap, name: K) -> Vec<&str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(split_list)
        .collect()
}

/// An entity-tag (RFC 9110 §8.8.3): `"opaque"` or `W/"opaque"`. The opaque
/// part may hold commas, never a `"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityTag<'a> {
    pub weak: bool,
    /// Between the quotes.
    pub opaque: &'a str,
}

impl<'a> EntityTag<'a> {
    /// `None` for anything that is not exactly one entity-tag.
    pub fn parse(text: &'a str) -> Option<Self> {
        let t = text.trim();
        let (weak, quoted) = match t.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let opaque = quoted.strip_prefix('"')?.strip_suffix('"')?;
        // etagc = %x21 / %x23-7E / obs-text
        let valid = opaque
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80);
        valid.then_some(EntityTag { weak, opaque })
    }

    /// Strong comparison (§8.8.3.2): both strong and the same opaque-tag.
    pub fn strong_eq(&self, other: &EntityTag<'_>) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Weak comparison: the same opaque-tag, either may be weak.
    pub fn weak_eq(&self, other: &EntityTag<'_>) -> bool {
        self.opaque == other.opaque
    }
}

/// `If-None-Match` (all its lines) against the current representation's
/// `etag` (§13.1.2): whether a member matches it by weak comparison, `*`
/// matching any current representation; `None` without the field. A member
/// that is not a valid entity-tag matches nothing.
pub fn none_match(req: &HeaderMap, etag: Option<&str>) -> Option<bool> {
    if !req.contains_key(header::IF_NONE_MATCH) {
        return None;
    }
    let current = etag.and_then(EntityTag::parse);
    let matched = list_members(req, header::IF_NONE_MATCH)
        .into_iter()
        .any(|m| {
            m == "*"
                || current
                    .zip(EntityTag::parse(m))
                    .is_some_and(|(c, t)| c.weak_eq(&t))
        });
    Some(matched)
}

/// `If-Modified-Since` when it counts (§13.1.3): one line holding a valid
/// HTTP-date no later than `now` (a date in the future is invalid, as
/// Apache treats it). Otherwise the field is ignored: `None`.
pub fn modified_since(req: &HeaderMap, now: SystemTime) -> Option<SystemTime> {
    let mut lines = req.get_all(header::IF_MODIFIED_SINCE).iter();
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return None;
    };
    let since = httpdate::parse_http_date(line.to_str().ok()?.trim()).ok()?;
    (since <= now).then_some(since)
}

/// Whether a GET or HEAD for a representation with these validators is
/// answered `304 Not Modified` (§13.2.2): `If-None-Match` decides when sent
/// (and `If-Modified-Since` is then ignored), else `If-Modified-Since`
/// against `last_modified`, at HTTP dates' one-second resolution.
pub fn not_modified(
    req: &HeaderMap,
    etag: Option<&str>,
    last_modified: Option<SystemTime>,
    now: SystemTime,
) -> bool {
    if let Some(matched) = none_match(req, etag) {
        return matched;
    }
    match (modified_since(req, now), last_modified) {
        (Some(since), Some(modified)) => secs(modified) <= secs(since),
        _ => false,
    }
}

/// Whether `If-Range` lets a `Range` be honoured (§13.1.5): true without
/// the field; else an entity-tag that strongly matches `etag` (a weak one
/// never does), or an HTTP-date equal to `last_modified`.
pub fn if_range_holds(
    req: &HeaderMap,
    etag: Option<&str>,
    last_modified: Option<SystemTime>,
) -> bool {
    let Some(value) = req.get(header::IF_RANGE) else {
        return true;
    };
    let Ok(text) = value.to_str() else {
        return false;
    };
    let text = text.trim();
    // An entity-tag starts with a quote or `W/"`; a date never does.
    if text.starts_with('"') || text.starts_with("W/") {
        let current = etag.and_then(EntityTag::parse);
        return current
            .zip(EntityTag::parse(text))
            .is_some_and(|(c, t)| c.strong_eq(&t));
    }
    match (httpdate::parse_http_date(text), last_modified) {
        (Ok(date), Some(modified)) => secs(date) == secs(modified),
        _ => false,
    }
}

/// `Max-Forwards` (§7.6.2): how many more times the request may be
/// forwarded; `None` without the field or with an invalid one (which a
/// recipient ignores).
pub fn max_forwards(req: &HeaderMap) -> Option<u32> {
    let text = req.get(header::MAX_FORWARDS)?.to_str().ok()?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // More digits than a u32 holds is still "many".
    Some(text.parse().unwrap_or(u32::MAX))
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
