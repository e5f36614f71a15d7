//! The origin's request-path check (percent-decoding, dot segments,
//! separators) on any text: what it accepts is a plain relative path that
//! stays beneath the www folder, whatever the encoding tricks.

use std::path::{Component, Path};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(raw) = std::str::from_utf8(data) else {
            return;
        };
        let Ok(safe) = netrun::origin::path::resolve(raw) else {
            return;
        };
        let rel = safe.relative();
        assert!(rel.is_relative(), "{raw:?} resolved to {rel:?}");
        for c in rel.components() {
            assert!(
                matches!(c, Component::Normal(_)),
                "{raw:?} resolved to {rel:?} with {c:?}"
            );
        }
        for s in safe.segments() {
            assert!(
                !s.is_empty() && !s.starts_with('.'),
                "{raw:?}: segment {s:?}"
            );
            assert!(
                !s.contains(['/', '\\', ':', '\0']),
                "{raw:?}: segment {s:?}"
            );
        }
        let root = Path::new("/srv/www");
        assert!(
            root.join(&rel).starts_with(root),
            "{raw:?} escapes the root"
        );
    });
}
