//! Turns a request path into a safe relative path under the www root, or
//! refuses it. Pure string work, no file system: the caller still
//! canonicalizes the joined path and checks it stays inside the root, which
//! is what catches symlinks pointing outside.

use std::fmt;
use std::path::PathBuf;

use percent_encoding::percent_decode;

/// A request path that passed every check: plain segments, none of them
/// empty, `.`, `..`, hidden, or carrying a separator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafePath {
    segments: Vec<String>,
    /// The request path ended with `/` (a folder was asked for).
    pub trailing_slash: bool,
}

impl SafePath {
    /// The path relative to the www root (empty for `/`).
    pub fn relative(&self) -> PathBuf {
        self.segments.iter().collect()
    }

    pub fn segments(&self) -> &[String] {
        &self.segments
    }
}

/// Why a request path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not an origin-form path (`/...`).
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// The decoded bytes are not UTF-8 (this includes overlong forms such as `%c0%ae`).
    InvalidUtf8,
    /// A `%2f`/`%5c` (encoded slash) or a raw backslash.
    Separator,
    /// NUL or another control character.
    ControlChar,
    /// An empty segment (`//`) anywhere but the end.
    EmptySegment,
    /// A `.` or `..` segment, or any segment starting with a dot (hidden files).
    DotSegment,
    /// A percent escape still present after decoding once (double encoding).
    DoubleEncoded,
    /// A Windows drive letter (`C:`) or a colon, which some file systems treat as a stream name.
    Colon,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::NotAbsolute => "path does not start with /",
            Refusal::BadEscape => "malformed percent escape",
            Refusal::InvalidUtf8 => "not valid UTF-8 after decoding",
            Refusal::Separator => "encoded slash or backslash",
            Refusal::ControlChar => "NUL or control character",
            Refusal::EmptySegment => "empty path segment",
            Refusal::DotSegment => "dot segment or hidden file",
            Refusal::DoubleEncoded => "percent escape left after decoding (double encoding)",
            Refusal::Colon => "colon or drive letter",
        })
    }
}

/// Checks the path part of a request target (no query) and splits it into
/// decoded segments. Each segment is percent-decoded exactly once.
pub fn resolve(path: &str) -> Result<SafePath, Refusal> {
    let rest = path.strip_prefix('/').ok_or(Refusal::NotAbsolute)?;
    if rest.is_empty() {
        return Ok(SafePath {
            segments: Vec::new(),
            trailing_slash: true,
        });
    }
    let trailing_slash = rest.ends_with('/');
    let body = if trailing_slash {
        &rest[..rest.len() - 1]
    } else {
        rest
    };
    let mut segments = Vec::new();
    for raw in body.split('/') {
        segments.push(segment(raw)?);
    }
    Ok(SafePath {
        segments,
        trailing_slash,
    })
}

fn segment(raw: &str) -> Result<String, Refusal> {
    if raw.is_empty() {
        return Err(Refusal::EmptySegment);
    }
    check_escapes(raw.as_bytes())?;
    let bytes: Vec<u8> = percent_decode(raw.as_bytes()).collect();
    let text = String::from_utf8(bytes).map_err(|_| Refusal::InvalidUtf8)?;
    if text.chars().any(|c| c == '/' || c == '\\') {
        return Err(Refusal::Separator);
    }
    if text.chars().any(char::is_control) {
        return Err(Refusal::ControlChar);
    }
    if text.starts_with('.') {
        return Err(Refusal::DotSegment);
    }
    if text.contains(':') {
        return Err(Refusal::Colon);
    }
    if has_escape(text.as_bytes()) {
        return Err(Refusal::DoubleEncoded);
    }
    Ok(text)
}

/// Every `%` must start a two-hex-digit escape; `percent_decode` would
/// otherwise pass a stray `%` through silently.
fn check_escapes(b: &[u8]) -> Result<(), Refusal> {
    for (i, &c) in b.iter().enumerate() {
        if c == b'%'
            && !(i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit())
        {
            return Err(Refusal::BadEscape);
        }
    }
    Ok(())
}

fn has_escape(b: &[u8]) -> bool {
    b.windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> Vec<String> {
        resolve(p).unwrap_or_else(|e| panic!("{p}: {e}")).segments
    }

    #[test]
    fn plain_paths_split_into_segments() {
        assert!(ok("/").is_empty());
        assert_eq!(ok("/index.html"), ["index.html"]);
        assert_eq!(ok("/docs/"), ["docs"]);
        assert!(resolve("/docs/").unwrap().trailing_slash);
        assert!(!resolve("/docs").unwrap().trailing_slash);
        assert_eq!(ok("/img/logo.png"), ["img", "logo.png"]);
        assert_eq!(ok("/a%20b.txt"), ["a b.txt"]);
        assert_eq!(ok("/caf%C3%A9.txt"), ["café.txt"]);
        assert_eq!(ok("/file..txt"), ["file..txt"]);
        assert_eq!(resolve("/a/b/").unwrap().relative(), PathBuf::from("a/b"));
    }

    #[test]
    fn traversal_in_every_spelling_is_refused() {
        use Refusal::*;
        let cases = [
            ("/../secret.txt", DotSegment),
            ("/a/../../secret.txt", DotSegment),
            ("/%2e%2e/secret.txt", DotSegment),
            ("/%2E%2e%2fsecret.txt", Separator),
            ("/x%2f..%2fsecret.txt", Separator),
            ("/..%5csecret.txt", Separator),
            ("/x%5c..%5csecret.txt", Separator),
            ("/x\\..\\secret.txt", Separator),
            ("/%252e%252e/secret.txt", DoubleEncoded),
            ("/x%252f..", DoubleEncoded),
            ("/%c0%ae%c0%ae/secret.txt", InvalidUtf8),
            ("/%e0%80%ae/secret.txt", InvalidUtf8),
            ("/%ff", InvalidUtf8),
            ("/%00", ControlChar),
            ("/index.html%00.txt", ControlChar),
            ("//etc/passwd", EmptySegment),
            ("/a//b", EmptySegment),
            ("/.", DotSegment),
            ("/./index.html", DotSegment),
            ("/.git/config", DotSegment),
            ("/C:/secret.txt", Colon),
            ("/c%3a%5csecret.txt", Separator),
            ("etc/passwd", NotAbsolute),
            ("", NotAbsolute),
            ("/%", BadEscape),
            ("/%2", BadEscape),
            ("/%zz", BadEscape),
        ];
        for (path, want) in cases {
            assert_eq!(resolve(path), Err(want), "{path}");
        }
    }
}
